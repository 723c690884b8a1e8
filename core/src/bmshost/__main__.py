"""``python -m bmshost``."""

from bmshost.cli import main

raise SystemExit(main())
