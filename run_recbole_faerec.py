"""Train and evaluate FAERec around a RecBole backbone.

python run_recbole_faerec.py --model=SASRec --dataset=amazon-beauty
python run_recbole_faerec.py --model=SASRec --dataset=amazon-beauty --base
"""

import sys

from recbole_faerec.cli import main

if __name__ == "__main__":
    sys.exit(main())
