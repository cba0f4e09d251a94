"""``python -m pawatch``: the same as the ``pawatch`` command."""

from pawatch.cli import main

main()
