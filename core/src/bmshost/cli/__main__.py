"""``python -m bmshost.cli``."""

from bmshost.cli import main

raise SystemExit(main())
