"""The text prior: a scoring layer beyond the paper, on top of any model's full-sort scores."""

from recbole_faerec.text_prior.fit import build_text_prior, choose_weight, fit_text_prior
from recbole_faerec.text_prior.prior import TextPrior

__all__ = ["TextPrior", "build_text_prior", "choose_weight", "fit_text_prior"]
