"""``python -m voxweight`` runs the command line."""

import sys

from voxweight.cli import main

if __name__ == "__main__":
    sys.exit(main())
