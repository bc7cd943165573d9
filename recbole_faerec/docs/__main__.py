"""``python -m recbole_faerec.docs [--check]``."""

import sys

from recbole_faerec.docs import main

if __name__ == "__main__":
    sys.exit(main())
