"""``python -m knoxpy``: the command line (see ``knoxpy --help`` and docs/cli.md)."""
import sys

from .cli import main

sys.exit(main())
