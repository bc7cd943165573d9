"""The text prior of full-sort scoring, against hand-computed values."""

import logging

import pytest
import torch
import torch.nn.functional as F

from recbole_faerec.model import precision
from recbole_faerec.text_prior.fit import choose_weight
from recbole_faerec.text_prior.prior import (
    TextPrior,
    prior_width,
    row_std,
    whitened_text_vectors,
)


def _prior(vectors, weight: float, dtype: torch.dtype = torch.float32) -> TextPrior:
    vectors = torch.as_tensor(vectors, dtype=torch.float32)
    prior = TextPrior(vectors.size(0), vectors.size(1), dtype)
    prior.item_vectors.copy_(vectors)
    prior.weight.fill_(weight)
    return prior


def _whitened_prior(table: torch.Tensor, shrinkage: float, weight: float = 1.0, dtype=None):
    width = prior_width(table.size(0), table.size(1), 512)
    vectors = whitened_text_vectors(table, width, shrinkage)
    return _prior(vectors, weight, dtype or torch.float32)


def test_a_new_prior_has_weight_zero_and_leaves_the_scores_alone():
    prior = TextPrior(4, 2)
    scores = torch.tensor([[5.0, 1.0, 2.0, 3.0]])
    assert not prior.active
    assert torch.equal(prior(scores.clone(), torch.tensor([[1, 0]])), scores)
    assert torch.equal(prior.transition, torch.eye(2))


def test_everything_the_prior_scores_with_is_saved_with_the_model():
    prior = _prior([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0]], weight=3.0)
    prior.transition.copy_(torch.tensor([[0.0, 1.0], [1.0, 0.0]]))
    loaded = TextPrior(3, 2)
    loaded.load_state_dict(prior.state_dict())
    assert set(prior.state_dict()) == {"item_vectors", "transition", "weight", "bfloat16_product"}
    scores, seq = torch.tensor([[0.0, 1.0, 3.0]]), torch.tensor([[1]])
    assert torch.equal(loaded(scores.clone(), seq), prior(scores.clone(), seq))


def test_scores_gain_weight_times_their_spread_times_the_cosine():
    prior = _prior([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0], [0.6, 0.8]], weight=2.0)
    scores = torch.tensor([[5.0, 1.0, 2.0, 3.0]])  # items 1-3 spread with std 1
    out = prior(scores.clone(), torch.tensor([[1, 0]]))  # c_u = item 1 = (1, 0)
    torch.testing.assert_close(out, torch.tensor([[5.0, 3.0, 2.0, 3.0 + 2.0 * 0.6]]))


def test_the_user_vector_is_the_normalised_sum_of_the_sequence():
    prior = _prior([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0], [0.6, 0.8]], weight=1.0)
    seq = torch.tensor([[1, 2, 0], [3, 0, 0]])
    r = 2**-0.5
    torch.testing.assert_close(prior.user_vectors(seq), torch.tensor([[r, r], [0.6, 0.8]]))
    expected = torch.tensor([[0.0, r, r, r * 1.4], [0.0, 0.6, 0.8, 1.0]])
    torch.testing.assert_close(prior.similarity(seq), expected)


# Centred rows (+-2, +-1): principal axes x and y, unbiased variances 16/3 and 4/3, mean 10/3.
AXES_TABLE = torch.tensor([[9.0, 9.0], [2.0, 1.0], [-2.0, -1.0], [2.0, -1.0], [-2.0, 1.0]]) + 5.0


def _cosines(prior: TextPrior) -> torch.Tensor:
    vectors = prior.item_vectors
    return vectors[1:] @ vectors[1:].T


def test_whitening_divides_each_component_by_its_shrunk_deviation():
    prior = _whitened_prior(AXES_TABLE, shrinkage=1.0)
    assert torch.equal(prior.item_vectors[0], torch.zeros(2))
    torch.testing.assert_close(prior.item_vectors[1:].norm(dim=-1), torch.ones(4))
    # x / sqrt(16/3 + 10/3), y / sqrt(4/3 + 10/3): cos((2, 1), (2, -1)) = (6/13 - 3/14) /
    # (6/13 + 3/14) = 15/41, where the plain cosine is 3/5.
    assert _cosines(prior)[0, 2].item() == pytest.approx(15 / 41, abs=1e-6)
    assert _cosines(prior)[0, 1].item() == pytest.approx(-1.0, abs=1e-6)


def test_little_shrinkage_whitens_and_much_keeps_the_plain_cosines():
    whitened = _whitened_prior(AXES_TABLE, shrinkage=1e-6)
    assert _cosines(whitened)[0, 2].item() == pytest.approx(0.0, abs=1e-5)
    torch.manual_seed(0)
    table = torch.randn(7, 3)
    plain = _whitened_prior(table, shrinkage=1e6)
    centred = F.normalize(table[1:] - table[1:].mean(dim=0), dim=-1)
    torch.testing.assert_close(_cosines(plain), centred @ centred.T, atol=1e-4, rtol=0)


def test_a_direction_without_variance_is_not_blown_up():
    line = torch.arange(5.0).unsqueeze(1) * torch.tensor([[1.0, 2.0, 2.0]]) + 0.5
    prior = _whitened_prior(line, shrinkage=0.01)  # rank 1: two empty directions
    assert prior.item_vectors.shape == (5, 3)
    side = torch.tensor([-1.0, -1.0, 1.0, 1.0])  # items 1-4 lie either side of their mean
    torch.testing.assert_close(_cosines(prior), side.outer(side), atol=1e-4, rtol=0)


def test_shrinkage_must_be_positive():
    with pytest.raises(ValueError, match="text_prior_shrinkage: 0.0 is invalid"):
        whitened_text_vectors(AXES_TABLE, 2, shrinkage=0.0)


def test_the_added_term_scales_with_the_scores():
    prior = _prior([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0]], weight=3.0)
    seq = torch.tensor([[2]])
    scores = torch.tensor([[0.0, 4.0, 8.0]])
    base = prior(scores.clone(), seq) - scores
    assert base[0, 2].item() == pytest.approx(3.0 * scores[0, 1:].std().item())
    torch.testing.assert_close(prior(scores * 10, seq) - scores * 10, base * 10)


def test_scores_are_updated_in_place():
    prior = _prior([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0]], weight=1.0)
    scores = torch.tensor([[0.0, 1.0, 3.0]])
    assert prior(scores, torch.tensor([[1]])) is scores
    torch.testing.assert_close(scores, torch.tensor([[0.0, 1.0 + 2**0.5, 3.0]]))


@pytest.mark.parametrize("shift", [0.0, 1000.0])
def test_row_std_is_the_unbiased_standard_deviation(shift):
    torch.manual_seed(0)
    x = torch.randn(5, 3000) * 25 + shift
    torch.testing.assert_close(row_std(x), x.std(dim=1, keepdim=True), rtol=2e-3, atol=0)


def test_a_bfloat16_product_stays_close_to_float32_and_keeps_float32_scores():
    torch.manual_seed(2)
    table = torch.randn(300, 16)
    exact = _whitened_prior(table, shrinkage=0.01, weight=5.0)
    low = _whitened_prior(table, shrinkage=0.01, weight=5.0, dtype=torch.bfloat16)
    scores = torch.randn(8, 300)
    seq = torch.randint(1, 300, (8, 6))
    expected, out = exact(scores.clone(), seq), low(scores.clone(), seq)
    assert out.dtype == torch.float32
    spread = 5.0 * row_std(scores[:, 1:])  # what a cosine of 1 adds
    assert ((out - expected).abs() / spread).max() < 2e-2
    assert not torch.equal(out, expected)


def test_a_low_precision_product_added_in_blocks_equals_one_block(monkeypatch):
    torch.manual_seed(3)
    prior = _whitened_prior(torch.randn(300, 16), 0.01, weight=5.0, dtype=torch.bfloat16)
    scores, seq = torch.randn(9, 300), torch.randint(1, 300, (9, 6))
    whole = prior(scores.clone(), seq)
    monkeypatch.setattr(precision, "CHUNK_ENTRIES", 600)  # blocks of 2 users, the last of 1
    torch.testing.assert_close(prior(scores.clone(), seq), whole, rtol=0, atol=0)


@pytest.mark.parametrize(("bigger", "chosen"), [(True, 8.0), (False, 4.0)])
def test_the_weight_is_chosen_in_the_direction_of_valid_metric_bigger(bigger, chosen):
    prior = TextPrior(3, 2)
    validation = {0.0: 0.5, 4.0: 0.2, 8.0: 0.9, 12.0: 0.9}  # 12 ties 8: the smaller wins

    scores = choose_weight(prior, [0, 4, 8, 12], lambda: validation[float(prior.weight)], bigger)
    assert scores == validation
    assert float(prior.weight) == chosen


def _saved_bfloat16_state():
    torch.manual_seed(4)
    saved = _whitened_prior(torch.randn(300, 16), 0.01, weight=5.0, dtype=torch.bfloat16)
    saved.transition.copy_(torch.linalg.qr(torch.randn(16, 16))[0])
    return saved


def test_a_loaded_prior_scores_in_the_precision_it_was_saved_with(caplog):
    saved = _saved_bfloat16_state()
    scores, seq = torch.randn(8, 300), torch.randint(1, 300, (8, 6))
    loaded = TextPrior(300, 16, torch.float32)  # where step_precision resolves to float32
    with caplog.at_level(logging.INFO):
        loaded.load_state_dict(saved.state_dict())
    assert loaded.dtype == torch.bfloat16
    assert torch.equal(loaded(scores.clone(), seq), saved(scores.clone(), seq))
    as_float32 = TextPrior(300, 16, torch.float32)
    as_float32.load_state_dict({**saved.state_dict(), "bfloat16_product": torch.tensor(False)})
    assert not torch.equal(as_float32(scores.clone(), seq), saved(scores.clone(), seq))
    lines = [r.getMessage() for r in caplog.records if "Text prior" in r.getMessage()]
    assert lines == [
        "Text prior: scores in bfloat16, as the run that saved it did (step_precision gives "
        "float32 here)."
    ]


def test_a_bfloat16_prior_on_a_device_without_bfloat16_says_so_in_one_line(monkeypatch, caplog):
    monkeypatch.setattr(precision, "computes_bfloat16", lambda device: False)
    loaded = TextPrior(300, 16, torch.float32)
    with caplog.at_level(logging.INFO):
        loaded.load_state_dict(_saved_bfloat16_state().state_dict())
    assert loaded.dtype == torch.float32
    lines = [r for r in caplog.records if "Text prior" in r.getMessage()]
    assert len(lines) == 1 and lines[0].levelno == logging.WARNING
    assert "checkpoint scores in bfloat16, which cpu cannot compute" in lines[0].getMessage()


def test_a_checkpoint_saved_before_the_precision_keeps_the_built_one():
    saved = _saved_bfloat16_state().state_dict()
    del saved["bfloat16_product"]
    for dtype in (torch.float32, torch.bfloat16):
        loaded = TextPrior(300, 16, dtype)
        loaded.load_state_dict(saved)
        assert loaded.dtype == dtype
