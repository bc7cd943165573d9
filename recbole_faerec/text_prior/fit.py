"""Building and fitting the text prior of a model (:mod:`.prior`).

A model built with ``text_prior: True`` carries an unfitted :class:`~.prior.TextPrior` (weight 0,
so training and early stopping see the model's own scores). After training, the pipeline fits it
on the training split (:func:`fit_text_prior`: the whitened item vectors and the text transition)
and chooses its weight among ``text_prior_weights`` on the validation split
(:func:`choose_weight`, the best score in the direction of ``valid_metric_bigger``), 0 included
(the config check requires it), so that on validation the prior never scores worse than the model
alone. Everything it fitted is a buffer of the model, saved with the checkpoint.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from logging import getLogger

import torch

from recbole_faerec.model.precision import step_dtype
from recbole_faerec.text_prior.prior import TextPrior, prior_width, whitened_text_vectors
from recbole_faerec.text_prior.transition import TrainingPairs, fit_text_transition


def build_text_prior(config, dataset) -> TextPrior | None:
    """The unfitted prior of a model of ``config`` on ``dataset`` (which holds the LLM table), or
    None with ``text_prior: False``."""
    if not config["text_prior"]:
        return None
    num_items, llm_dim = dataset.llm_embeddings.shape
    width = prior_width(num_items, llm_dim, config["text_prior_dim"])
    return TextPrior(num_items, width, step_dtype(config["step_precision"], config["device"]))


def fit_text_prior(model, config, train_dataset) -> None:
    """Fit ``model.text_prior``'s item vectors and transition on the training split; its weight
    stays as it is."""
    prior: TextPrior = model.text_prior
    device = prior.item_vectors.device
    llm_table = torch.as_tensor(train_dataset.llm_embeddings, dtype=torch.float32)
    vectors = whitened_text_vectors(
        llm_table, prior.item_vectors.size(1), config["text_prior_shrinkage"]
    )
    prior.item_vectors.copy_(vectors)
    rows = train_dataset.inter_feat
    pairs = TrainingPairs(
        rows[model.ITEM_SEQ].to(device),
        rows[model.ITEM_SEQ_LEN].to(device),
        rows[model.POS_ITEM_ID].to(device),
        every_position=model.all_positions,
    )
    popularity = torch.as_tensor(train_dataset.train_item_popularity, dtype=torch.float32)
    transition = fit_text_transition(
        prior.item_vectors,
        pairs,
        popularity.to(device),
        config["text_prior_transition_epochs"],
        config["text_prior_transition_popularity"],
        seed=config["seed"],
        dtype=prior.dtype,
        show_progress=config["show_progress"],
    )
    prior.transition.copy_(transition)


def choose_weight(
    prior: TextPrior,
    weights: Sequence[float],
    validate: Callable[[], float],
    bigger: bool = True,
) -> dict[float, float]:
    """Set the prior's weight to the one of ``weights`` whose ``validate()`` score is best (the
    highest, or with ``bigger=False``, as for RecBole's ``valid_metric_bigger: False``, the
    lowest; the smallest weight on a tie) and return every weight's score."""
    scores = {}
    for weight in weights:
        prior.weight.fill_(float(weight))
        scores[float(weight)] = validate()
    sign = 1.0 if bigger else -1.0
    best = max(scores, key=lambda w: (sign * scores[w], -w))
    prior.weight.fill_(best)
    getLogger().info(
        f"Text prior: weight {best:g} chosen on validation ("
        + ", ".join(f"{w:g}: {s:.4f}" for w, s in scores.items())
        + ")"
    )
    return scores
