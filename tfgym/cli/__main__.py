"""``python -m tfgym.cli``: the same as the ``tfgym`` command."""

import sys

from tfgym.cli import main

sys.exit(main())
