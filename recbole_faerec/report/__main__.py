"""``python -m recbole_faerec.report --dataset D --model M[,M2...] [--ablations]``."""

import sys

from recbole_faerec.report.cli import main

if __name__ == "__main__":
    sys.exit(main())
