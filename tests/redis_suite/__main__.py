"""``python -m tests.redis_suite``: see tests/redis_suite/cli.py (``--help``)."""

from __future__ import annotations

import sys

from tests.redis_suite.cli import main

sys.exit(main())
