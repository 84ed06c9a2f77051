"""``python -m cadmetrics.dashboards DIRECTORY``: write the shipped dashboards' JSON files."""

import sys
from pathlib import Path

from cadmetrics.dashboards import DASHBOARDS
from cadmetrics.dashboards.render import write

write(Path(sys.argv[1]), DASHBOARDS)
