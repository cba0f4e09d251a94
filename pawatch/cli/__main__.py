"""``python -m pawatch.cli``."""

from pawatch.cli import main

main()
