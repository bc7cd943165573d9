"""Version shims: what RecBole 1.2.1 sets for the whole process is undone where it hurts."""

from __future__ import annotations

import subprocess
import sys
import warnings
from pathlib import Path


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


def test_a_dataset_load_shows_no_pandas_fillna_warning_and_other_warnings_still_show(
    sample_data_path, run_dir
):
    from recbole_faerec.compat import CHAINED_ASSIGNMENT_WARNING
    from recbole_faerec.config import build_config
    from recbole_faerec.pipeline import load_dataset

    config = build_config(
        "SASRec",
        "amazon-beauty-sample",
        config_dict={"data_path": str(sample_data_path), "text_prior": False},
        base=True,
    )
    with warnings.catch_warnings(record=True) as caught:
        load_dataset(config)
        here = "recbole.data.dataset.dataset"
        warnings.warn_explicit("another message", FutureWarning, "dataset.py", 1, module=here)
        warnings.warn_explicit(
            CHAINED_ASSIGNMENT_WARNING, UserWarning, "dataset.py", 2, module=here
        )
        elsewhere = "recbole.data.dataset.sequential_dataset"
        warnings.warn_explicit(
            CHAINED_ASSIGNMENT_WARNING, FutureWarning, "s.py", 3, module=elsewhere
        )
    fillna = [w for w in caught if str(w.message).startswith("A value is trying to be set")]
    assert [(w.category, w.lineno) for w in fillna] == [(UserWarning, 2), (FutureWarning, 3)]
    assert (FutureWarning, "another message") in [(w.category, str(w.message)) for w in caught]


def test_pip_is_told_that_the_package_needs_python_3_11():
    from configparser import ConfigParser

    from packaging.specifiers import SpecifierSet

    setup = ConfigParser()
    setup.read(Path(__file__).resolve().parents[1] / "setup.cfg")
    requires = SpecifierSet(setup["options"]["python_requires"])
    assert "3.11.0" in requires and "3.11.14" in requires
    assert "3.10.12" not in requires and "3.12.0" not in requires and "3.13.1" not in requires
