"""Which sequential models FAERec wraps, with which losses and training modes, and why not others.

FAERec needs a backbone that embeds its input item sequence with ``self.item_embedding`` and
scores items with ``self.item_embedding.weight`` / ``self.item_embedding(ids)``: it replaces that
one module. A model is *supported* when it is listed here and was verified end to end
(``tests/test_backbones_matrix.py``). ``BCE`` needs ``forward(item_seq, item_seq_len)``
returning the sequence representation; ``all_positions`` additionally needs that output to be
causal per position before the final ``gather_indexes`` (see :mod:`recbole_faerec.model.bare`).
"""

from __future__ import annotations

import inspect

SUPPORTED = (
    "SASRec",
    "GRU4Rec",
    "NARM",
    "STAMP",
    "Caser",
    "NextItNet",
    "LightSANs",
    "SRGNN",
    "GCSAN",
    "CORE",
    "FEARec",
    "SINE",
    "BERT4Rec",
    "FMLPRec",
    "LRURec",
    "gMLP",
)

#: Backbones whose forward produces a causal per-position output before ``gather_indexes``.
ALL_POSITIONS = ("SASRec", "GRU4Rec", "FMLPRec", "LRURec", "gMLP")

#: Backbones whose output for a left-aligned sequence does not depend on the padding after it:
#: each batch is cut to its longest sequence (RecBole pads to ``MAX_ITEM_LIST_LENGTH``). FMLP-Rec's
#: causal kernel and LRURec's recurrence only look back, so they qualify too. The others hold
#: parameters applied across the whole maximum length (gMLP's spatial gate, Caser's and LightSANs'
#: length-wide layers) or read the padding (BERT4Rec's appended mask token).
TRIMMABLE = ("SASRec", "GRU4Rec", "NARM", "STAMP", "FMLPRec", "LRURec")

UNSUPPORTED = {
    "DIN": "a context-aware click-through model over feature fields, not an item-sequence model",
    "DIEN": "a context-aware click-through model over feature fields, not an item-sequence model",
    "FPMC": "it has no single item table (separate item-item and item-user factor tables)",
    "TransRec": "it scores with user translation vectors and per-item biases beside the items",
    "FOSSIL": "a user-aware model that mixes user factors into scoring beside the item table",
    "HGN": "a user-aware model with a second item table for scoring (item_embedding is input-only)",
    "HRM": "a user-aware model (hierarchical user and item pooling), not an item-sequence model",
    "SHAN": "a user-aware model (long/short-term user attention), not an item-sequence model",
    "NPE": "a user-aware model with a second item table for scoring",
    "RepeatNet": "repeat-aware: it scores through its own repeat/explore decoders, not the table",
    "FDSA": "feature-based: it needs item feature fields besides the item table",
    "SASRecF": "feature-based: it needs item feature fields besides the item table",
    "GRU4RecF": "feature-based: it needs item feature fields besides the item table",
    "GRU4RecKG": "knowledge-graph based: it needs pretrained entity embeddings",
    "KSR": "knowledge-graph based: it needs pretrained entity embeddings",
    "S3Rec": "a self-supervised pretraining model with its own pretraining stage and item table",
    "GRU4RecCPR": "its softmax-CPR output layer scores through its own projections, not the table",
    "SASRecCPR": "its softmax-CPR output layer scores through its own projections, not the table",
}


def loss_types(cls: type) -> tuple[str, ...]:
    """Losses a backbone class supports under the plugin: BCE needs forward(seq, seq_len)."""
    params = list(inspect.signature(cls.forward).parameters)[1:]
    if params == ["item_seq", "item_seq_len"]:
        return ("CE", "BPR", "BCE")
    return ("CE", "BPR")


def train_modes(name: str) -> tuple[str, ...]:
    """Training modes a backbone supports."""
    return ("prefix", "all_positions") if name in ALL_POSITIONS else ("prefix",)


def check_backbone(name: str, cls: type, loss_type: str, train_mode: str) -> None:
    """Raise a clear error when FAERec cannot wrap ``name`` with these settings."""
    if name in UNSUPPORTED:
        raise ValueError(f"backbone: FAERec cannot wrap '{name}': {UNSUPPORTED[name]}.")
    if name not in SUPPORTED:
        raise ValueError(
            f"backbone: '{name}' is not a verified FAERec backbone; supported: "
            f"{', '.join(SUPPORTED)} (`--list-backbones`)."
        )
    if loss_type not in ("CE", "BPR", "BCE"):
        raise ValueError(
            f"loss_type: {loss_type!r} is not a loss of the plugin; fix: choose CE, BPR or BCE."
        )
    if loss_type not in loss_types(cls):
        raise ValueError(
            f"loss_type: '{name}' supports {', '.join(loss_types(cls))} under the plugin; the BCE "
            "loss needs forward(item_seq, item_seq_len)."
        )
    if train_mode not in train_modes(name):
        raise ValueError(
            f"train_mode: '{name}' supports `train_mode: prefix` only; `all_positions` needs "
            f"causal per-position outputs ({', '.join(ALL_POSITIONS)})."
        )


def format_backbone_list() -> str:
    """The table printed by ``--list-backbones``."""
    from recbole_faerec.model.registry import get_model

    lines = [f"{'backbone':<12} {'losses':<14} train modes", "-" * 50]
    for name in SUPPORTED:
        losses = ",".join(loss_types(get_model(name)))
        lines.append(f"{name:<12} {losses:<14} {', '.join(train_modes(name))}")
    lines.append("")
    lines.append("Not wrappable:")
    lines += [f"  {name}: {reason}" for name, reason in UNSUPPORTED.items()]
    return "\n".join(lines)
