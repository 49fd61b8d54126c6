"""Allow ``python -m inboxwatch``."""

import sys

from inboxwatch.cli import main

sys.exit(main())
