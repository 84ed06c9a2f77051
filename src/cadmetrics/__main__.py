"""``python -m cadmetrics``: the same as the ``cadmetrics`` command."""

import sys

from cadmetrics.cli import main

sys.exit(main())
