"""Model lookup by name: the plugin's own models first, then RecBole's, and the methods.

A *method* is what a run wraps around its backbone (:data:`METHODS`): ``bare`` (the backbone
alone), ``llminit`` and ``llmesr`` (the LLM-enhanced baselines of the FAERec paper) or ``faerec``
(the paper's model). A bare (``--method=bare``, or ``--base``) run is named after its backbone,
``config['model'] == config['backbone']`` (e.g. ``SASRec``), because RecBole names a run's log
folder and file and its checkpoints after ``config['model']``; :func:`model_class` maps such a
config to :class:`BareBackbone`, not to RecBole's class of that name.
"""

from __future__ import annotations

import importlib

from recbole.model.abstract_recommender import SequentialRecommender
from recbole.utils import get_model as recbole_get_model

_PLUGIN_MODELS = {
    "FAERec": "recbole_faerec.model.faerec",
    "BareBackbone": "recbole_faerec.model.bare",
    "LLMInit": "recbole_faerec.model.llminit",
    "LLMESR": "recbole_faerec.model.llmesr",
    "FMLPRec": "recbole_faerec.model.sequential_recommender.fmlprec",
    "LRURec": "recbole_faerec.model.sequential_recommender.lrurec",
    "gMLP": "recbole_faerec.model.sequential_recommender.gmlp",
}


#: Method name -> the plugin model class that implements it.
METHODS = {"bare": "BareBackbone", "llminit": "LLMInit", "llmesr": "LLMESR", "faerec": "FAERec"}
#: How reports and logs name each method's row (the bare backbone goes by its own name).
METHOD_LABELS = {"llminit": "LLMInit", "llmesr": "LLM-ESR", "faerec": "FAERec"}
DEFAULT_METHOD = "faerec"


def resolve_method(method: str | None = None, base: bool = False) -> str:
    """The method a run names: ``method``, or ``bare`` for ``base``, else FAERec; a ValueError
    naming the choices for anything else."""
    if base and method not in (None, "bare"):
        raise ValueError(f"method: --base trains the bare backbone; it contradicts {method!r}.")
    chosen = "bare" if base else (method or DEFAULT_METHOD)
    if chosen not in METHODS:
        raise ValueError(
            f"method: {chosen!r} is not a method; fix: --method= one of {', '.join(METHODS)}."
        )
    return chosen


def method_title(method: str, backbone: str) -> str:
    """A run's title: ``SASRec`` (bare), ``LLM-ESR(SASRec)``, ``FAERec(SASRec)``..."""
    return backbone if method == "bare" else f"{METHOD_LABELS[method]}({backbone})"


def get_model(name: str) -> type:
    """Class of model ``name``, a plugin model or any RecBole model."""
    if name in _PLUGIN_MODELS:
        return getattr(importlib.import_module(_PLUGIN_MODELS[name]), name)
    return recbole_get_model(name)


def model_class(config) -> type:
    """Class that builds the model of ``config``: the bare backbone for a bare run (named after
    its backbone), else the model ``config['model']`` names."""
    name = config["model"]
    return get_model("BareBackbone" if name == config["backbone"] else name)


def get_sequential_model(name: str) -> type[SequentialRecommender]:
    """Class of the sequential model ``name``; a clear error for anything else."""
    try:
        cls = get_model(name)
    except (ValueError, ImportError) as exc:
        # RecBole's lookup imports its optional exlib models (lightgbm, xgboost) for unknown names.
        raise ValueError(
            f"backbone: unknown model '{name}'. Choose a RecBole sequential model (e.g. SASRec, "
            f"GRU4Rec, NARM) or one of FMLPRec, LRURec, gMLP; "
            f"`python run_recbole_faerec.py --list-backbones` lists them."
        ) from exc
    if not issubclass(cls, SequentialRecommender):
        raise ValueError(
            f"backbone: '{name}' is a {getattr(cls, 'type', 'non-sequential')} model; FAERec "
            "wraps sequential recommenders only (`--list-backbones` lists them)."
        )
    return cls
