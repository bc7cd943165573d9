"""``python -m recbole_faerec.tune --tune SPACE [flags of run_recbole_faerec.py]``."""

import sys

from recbole_faerec.tune.cli import main

if __name__ == "__main__":
    sys.exit(main())
