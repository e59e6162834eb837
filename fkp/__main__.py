"""``python -m fkp`` runs the command line."""

import sys

from fkp.cli import main

sys.exit(main())
