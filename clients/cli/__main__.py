"""``python -m clients.cli COMMAND ...``: ``ssald`` without the installed script (e.g. under torchrun)."""

import sys

from clients.cli import main

sys.exit(main())
