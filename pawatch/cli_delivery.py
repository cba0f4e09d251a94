"""Delivery commands (reports, email): registered on the main `cli` group."""
