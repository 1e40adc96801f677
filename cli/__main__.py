"""``python -m cli``: the ``herald`` command."""

import sys

from cli import main

sys.exit(main())
