"""``python -m tascmt`` entry point."""

import sys

from tascmt.cli import main

sys.exit(main())
