"""``python -m kvtwist.cli``: the ``kvtwist`` console script."""

import sys

from kvtwist.cli.main import main

sys.exit(main())
