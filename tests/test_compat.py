"""Version shims: what RecBole 1.2.1 sets for the whole process is undone where it hurts."""

from __future__ import annotations

import subprocess
import sys


def test_recboles_anomaly_detection_is_off_after_loading_its_models():
    code = (
        "import recbole_faerec, torch\n"
        "from recbole_faerec.model.registry import get_model\n"
        "get_model('SINE'); get_model('SASRec')\n"
        "print(torch.is_anomaly_enabled())\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_recbole_alone_turns_anomaly_detection_on():
    """The reason for the shim: importing RecBole's sequential models enables it."""
    code = "import recbole.model.sequential_recommender, torch\nprint(torch.is_anomaly_enabled())\n"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "True"


def test_recboles_numpy_aliases_exist_without_building_a_config():
    """RecBole's NDCG calls ``np.float``: a process that only loads a saved Config needs it."""
    code = "import numpy, recbole_faerec; print(numpy.float is numpy.float64)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "True"
