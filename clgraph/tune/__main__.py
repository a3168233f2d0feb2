"""``python -m clgraph.tune``: tune the common shape classes of a device ahead of time."""

import sys

import clgraph  # noqa: F401  (imports the kernel families, which register with the tuner)
from clgraph.tune import main

sys.exit(main())
