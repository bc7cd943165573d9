"""The content prior of full-sort scoring, against hand-computed values."""

import pytest
import torch
import torch.nn.functional as F

from recbole_faerec.model.content import ContentPrior, row_std


def _prior(vectors: list[list[float]], weight: float) -> ContentPrior:
    prior = ContentPrior(torch.randn(len(vectors), 4), dim=2, weight=weight)
    prior.item_vectors = torch.tensor(vectors)
    return prior


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


def test_item_vectors_are_the_cosines_of_the_centred_llm_rows():
    torch.manual_seed(0)
    table = torch.randn(7, 3)
    prior = ContentPrior(table, dim=3, weight=1.0)  # all components: a rotation of the rows
    centred = F.normalize(table[1:] - table[1:].mean(dim=0), dim=-1)
    vectors = prior.item_vectors
    assert torch.equal(vectors[0], torch.zeros(3))
    torch.testing.assert_close(vectors[1:].norm(dim=-1), torch.ones(6))
    torch.testing.assert_close(vectors[1:] @ vectors[1:].T, centred @ centred.T)


def test_more_components_than_the_table_has_add_no_random_columns():
    torch.manual_seed(1)
    table = torch.randn(5, 3)
    prior = ContentPrior(table, dim=8, weight=1.0)  # a hidden size wider than the LLM vectors
    centred = F.normalize(table[1:] - table[1:].mean(dim=0), dim=-1)
    assert prior.item_vectors.shape == (5, 3)
    torch.testing.assert_close(
        prior.item_vectors[1:] @ prior.item_vectors[1:].T, centred @ centred.T
    )


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
