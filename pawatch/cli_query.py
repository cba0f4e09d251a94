"""Query commands (changes, history, show, diff, export, reparse): registered on `cli`."""
