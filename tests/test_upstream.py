"""The upstream pull request (``upstream/``): applied to a copy of RecBole, run by RecBole alone,
and in agreement with the plugin's FAERec."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import recbole
import torch
from conftest import SAMPLE
from recbole.config import Config
from recbole.data import create_dataset as recbole_create_dataset
from recbole.data import data_preparation as recbole_data_preparation

from dataset_prep.itememb import write_itememb
from recbole_faerec.config import build_config
from recbole_faerec.pipeline import build_model, prepare_data

ROOT = Path(__file__).resolve().parents[1]
UPSTREAM = ROOT / "upstream"
ML100K_TEMPLATE = (
    "[The movie has the following attributes: [name is {movie_title}]"
    "[; release year is {release_year}].] [The movie has following genres: [{class}].]"
)
ITEMEMB_KEYS = {
    "additional_feat_suffix": ["itememb"],
    "alias_of_item_id": ["iid"],
    "preload_weight": {"iid": "item_emb"},
    "train_neg_sample_args": None,
}
# What RecBole's own tests/model/ holds around the entry (RecBole's wheel ships no tests): a
# quick_test over a shared yaml, and the sequential test class followed by another class.
TEST_MODULE = '''import os
import unittest

from recbole.quick_start import objective_function

current_path = os.path.dirname(os.path.realpath(__file__))
config_file_list = [os.path.join(current_path, "test_model.yaml")]


def quick_test(config_dict):
    objective_function(config_dict=config_dict, config_file_list=config_file_list, saved=False)


class TestSequentialRecommender(unittest.TestCase):
    """Sequential models."""


class TestKnowledgeRecommender(unittest.TestCase):
    """Knowledge-aware models."""
'''
RUN_SCRIPT = """
import json, sys
import recbole, recbole.model.sequential_recommender
from recbole.quick_start import run_recbole
result = run_recbole(model="FAERec", dataset="ml-100k", config_dict=json.loads(sys.argv[1]))
print(json.dumps({"recbole": recbole.__file__, "plugin": "recbole_faerec" in sys.modules,
                  "test": {k: float(v) for k, v in result["test_result"].items()}}))
"""


def _fresh_env(tree: Path) -> dict[str, str]:
    """A process that imports the patched RecBole, never the plugin. RecBole 1.2.1 saves its
    Config inside checkpoints, which torch >= 2.6 refuses to load unless told to."""
    env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    return {
        **env,
        "PYTHONPATH": str(tree),
        "TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD": "1",
        "OMP_NUM_THREADS": "1",
    }


@pytest.fixture(scope="module")
def patched_recbole(tmp_path_factory) -> tuple[Path, str]:
    """A copy of the installed RecBole with the pull request applied, and the printed stat."""
    tree = tmp_path_factory.mktemp("RecBole")
    shutil.copytree(
        Path(recbole.__file__).parent,
        tree / "recbole",
        ignore=shutil.ignore_patterns("__pycache__"),
    )
    (tree / "tests" / "model").mkdir(parents=True)
    (tree / "tests" / "model" / "test_model_auto.py").write_text(TEST_MODULE, encoding="utf-8")
    (tree / "tests" / "model" / "test_model.yaml").write_text(
        "dataset: ml-100k\nepochs: 1\nstate: ERROR\n", encoding="utf-8"
    )
    done = subprocess.run(
        [sys.executable, str(UPSTREAM / "apply.py"), str(tree)],
        capture_output=True,
        text=True,
        check=True,
    )
    return tree, done.stdout


def test_applying_the_pull_request_adds_its_files_once(patched_recbole):
    tree, stat = patched_recbole
    for name in (
        "recbole/model/sequential_recommender/faerec.py",
        "recbole/properties/model/FAERec.yaml",
        "docs/source/user_guide/model/sequential/faerec.rst",
        "recbole/model/sequential_recommender/__init__.py",
        "tests/model/test_model_auto.py",
    ):
        assert name in stat
    test_module = (tree / "tests/model/test_model_auto.py").read_text(encoding="utf-8")
    entry = test_module.index("def test_faerec(")
    assert test_module.index("class TestSequentialRecommender") < entry
    assert entry < test_module.index("class TestKnowledgeRecommender")
    again = subprocess.run(
        [sys.executable, str(UPSTREAM / "apply.py"), str(tree)],
        capture_output=True,
        text=True,
        check=True,
    )
    assert again.stdout == stat
    init = (tree / "recbole/model/sequential_recommender/__init__.py").read_text(encoding="utf-8")
    assert init.count("import FAERec") == 1


@pytest.mark.slow
def test_recbole_alone_trains_faerec_on_ml_100k(patched_recbole, tmp_path):
    tree, _ = patched_recbole
    data_path = tree / "recbole" / "dataset_example"
    command = [sys.executable, "-m", "dataset_prep.embed", f"--data-path={data_path}"]
    command += ["--dataset=ml-100k", f"--template={ML100K_TEMPLATE}", "--format=itememb"]
    command += ["--no-progress"]
    cache = os.environ.get("FAEREC_TEST_EMBEDDING_CACHE")
    if cache:
        command.append(f"--cache-dir={cache}")
    built = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=True)
    itememb = data_path / "ml-100k" / "ml-100k.itememb"
    assert built.stdout.strip().splitlines()[-1] == str(itememb)
    header, first = itememb.read_text(encoding="utf-8").splitlines()[:2]
    assert header == "iid:token\titem_emb:float_seq" and len(first.split("\t")[1].split()) == 384

    settings = {
        **ITEMEMB_KEYS,
        "load_col": {"inter": ["user_id", "item_id", "timestamp"], "itememb": ["iid", "item_emb"]},
        "MAX_ITEM_LIST_LENGTH": 10,
        "hidden_size": 32,
        "inner_size": 64,
        "epochs": 1,
        "state": "ERROR",
        "show_progress": False,
    }
    run = subprocess.run(
        [sys.executable, "-c", RUN_SCRIPT, json.dumps(settings)],
        cwd=tmp_path,
        env=_fresh_env(tree),
        capture_output=True,
        text=True,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    outcome = json.loads(run.stdout.strip().splitlines()[-1])
    assert outcome["recbole"].startswith(str(tree)) and outcome["plugin"] is False
    assert 0.0 < outcome["test"]["hit@10"] <= 1.0

    quick = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-k", "test_faerec"]
        + ["tests/model/test_model_auto.py"],
        cwd=tree,
        env=_fresh_env(tree),
        capture_output=True,
        text=True,
    )
    assert quick.returncode == 0, quick.stdout[-3000:] + quick.stderr[-2000:]
    assert "1 passed" in quick.stdout


def _load_upstream_model():
    path = UPSTREAM / "recbole/model/sequential_recommender/faerec.py"
    spec = importlib.util.spec_from_file_location("upstream_faerec", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.FAERec


STATE_NAMES = {
    "backbone.item_embedding.id_embedding.": "id_embedding.",
    "backbone.item_embedding.projection.": "projection.",
    "backbone.item_embedding.gate.w1.": "gate_w1.",
    "backbone.item_embedding.gate.w2.": "gate_w2.",
    "backbone.": "",
}


def _upstream_name(name: str) -> str:
    for prefix, replacement in STATE_NAMES.items():
        if name.startswith(prefix):
            return replacement + name[len(prefix) :]
    return name


@pytest.mark.parametrize("loss_type", ["CE", "BPR"])
def test_the_upstream_model_and_the_plugin_agree(
    sample_data_path, fast_config, tmp_path, loss_type
):
    sampler = {"distribution": "uniform", "sample_num": 1} if loss_type == "BPR" else None
    shared = {
        "MAX_ITEM_LIST_LENGTH": 10,
        "hidden_size": 32,
        "inner_size": 64,
        "n_layers": 1,
        "n_heads": 2,
        "hidden_dropout_prob": 0.0,
        "attn_dropout_prob": 0.0,
        "projection_dropout": 0.0,
        "loss_type": loss_type,
        "train_neg_sample_args": sampler,
        "seed": 7,
    }
    plugin_settings = {
        **fast_config,
        **shared,
        "train_mode": "prefix",
        "positions_from_end": False,
        "align_max_items": None,
        "align_max_negatives": None,
        "text_prior": False,  # the paper's scores; the upstream model has no text prior
        "step_precision": "float32",  # the upstream model computes in float32
    }
    config = build_config("SASRec", SAMPLE, config_dict=plugin_settings)
    plugin_data, train, _, test = prepare_data(config)
    plugin = build_model(config, train)

    folder = tmp_path / SAMPLE
    folder.mkdir()
    shutil.copy(sample_data_path / SAMPLE / f"{SAMPLE}.inter", folder)
    tokens = plugin_data.field2id_token["item_id"]
    np.savez(tmp_path / "t.npz", items=tokens[1:], embeddings=plugin_data.llm_embeddings[1:])
    write_itememb(tmp_path / "t.npz", folder / f"{SAMPLE}.itememb")
    upstream_config = Config(
        model=_load_upstream_model(),
        dataset=SAMPLE,
        config_file_list=[str(UPSTREAM / "recbole/properties/model/FAERec.yaml")],
        config_dict={
            **ITEMEMB_KEYS,
            **shared,
            "data_path": str(tmp_path),
            "load_col": {
                "inter": ["user_id", "item_id", "timestamp"],
                "itememb": ["iid", "item_emb"],
            },
            "eval_args": config["eval_args"],
        },
    )
    upstream_data = recbole_create_dataset(upstream_config)
    assert list(upstream_data.field2id_token["item_id"]) == list(tokens)
    upstream_train = recbole_data_preparation(upstream_config, upstream_data)[0]
    upstream = _load_upstream_model()(upstream_config, upstream_train._dataset)

    assert torch.equal(upstream.llm_table, plugin.fusion.llm_table)
    assert torch.equal(upstream.item_popularity, plugin.item_popularity)
    state = upstream.state_dict()
    copied = {_upstream_name(k): v for k, v in plugin.state_dict().items()}
    copied = {k: v for k, v in copied.items() if k in state and k not in ("llm_table",)}
    assert {k for k, _ in upstream.named_parameters()} <= set(copied)
    upstream.load_state_dict({**state, **copied})
    plugin.set_epoch(3)

    batch = next(iter(train))
    plugin.train()
    upstream.train()
    upstream.epoch.fill_(3)
    upstream_losses = [float(part) for part in upstream.alignment_losses(batch)]
    upstream_loss = float(upstream.calculate_loss(batch))
    plugin_losses = [float(part) for part in plugin.alignment_losses(plugin.batch_items(batch))]
    assert upstream_losses == pytest.approx(plugin_losses, rel=1e-5)
    assert upstream_loss == pytest.approx(float(sum(plugin.calculate_loss(batch))), rel=1e-5)

    plugin.eval()
    upstream.eval()
    with torch.no_grad():
        fused, _ = upstream.item_tables()
        assert torch.allclose(
            fused, plugin.fusion(torch.arange(plugin.fusion.num_items)), atol=1e-6
        )
        interaction = next(iter(test))[0]
        upstream_scores = upstream.full_sort_predict(interaction)
        plugin_scores = plugin.full_sort_predict(interaction).view_as(upstream_scores)
        assert torch.allclose(upstream_scores, plugin_scores, atol=1e-5)
