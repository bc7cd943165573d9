"""The text prior's transition: its training pairs and its softmax fit."""

import math

import pytest
import torch
import torch.nn.functional as F

from recbole_faerec.text_prior import transition as tr
from recbole_faerec.text_prior.prior import TextPrior
from recbole_faerec.text_prior.transition import TrainingPairs, fit_text_transition

# Row 0 is padding; items 1-3 are the axes.
AXES = torch.tensor([[0.0, 0.0, 0.0], [1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])


def test_one_row_per_user_holds_the_pairs_of_its_prefix_rows():
    per_user = TrainingPairs(
        torch.tensor([[1, 2, 3], [3, 0, 0]]), torch.tensor([3, 1]), torch.tensor([1, 2]), True
    )
    assert len(per_user) == 4
    prefixes, following = per_user.pairs(AXES)
    assert following.tolist() == [2, 3, 1, 2]
    r2, r3 = 2**-0.5, 3**-0.5
    expected = torch.tensor([[1.0, 0, 0], [r2, r2, 0], [r3, r3, r3], [0, 0, 1.0]])
    torch.testing.assert_close(prefixes, expected)
    per_prefix = TrainingPairs(
        torch.tensor([[1, 0, 0], [1, 2, 0], [1, 2, 3], [3, 0, 0]]),
        torch.tensor([1, 2, 3, 1]),
        torch.tensor([2, 3, 1, 2]),
    )
    assert len(per_prefix) == 4
    for got, want in zip(per_prefix.pairs(AXES), (expected, following), strict=True):
        torch.testing.assert_close(got, want)


def test_prefix_sums_restart_at_every_segment():
    rows = torch.tensor([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0], [7.0, 8.0], [9.0, 10.0]])
    sums = tr.prefix_sums(rows, torch.tensor([2, 1, 2]))
    expected = [[1.0, 2.0], [4.0, 6.0], [5.0, 6.0], [7.0, 8.0], [16.0, 18.0]]
    assert sums.tolist() == expected


def test_an_epoch_visits_every_pair_once_in_batches_of_whole_rows(monkeypatch):
    monkeypatch.setattr(tr, "MIN_PAIRS_PER_STEP", 4)
    seq = torch.tensor([[1, 2, 0], [2, 3, 1], [3, 0, 0], [1, 3, 0]])
    pairs = TrainingPairs(seq, torch.tensor([2, 3, 1, 2]), torch.tensor([3, 2, 2, 1]), True)
    batches = list(pairs.batches(AXES, torch.Generator().manual_seed(0)))
    assert len(batches) == pairs.steps() == 2  # 8 pairs in 4 rows: 2 rows per step
    seen = sorted(x for _, following in batches for x in following.tolist())
    assert seen == sorted(pairs.pairs(AXES)[1].tolist())


@pytest.mark.parametrize(
    ("pairs", "per_step", "learning_rate"),
    [
        (200_000, 4096, 0.004),
        (32 * 2048 + 31, 2048, 0.004 * 0.5**0.5),
        (40, 1024, 0.002),
    ],
)
def test_smaller_training_splits_take_smaller_steps_at_a_smaller_rate(
    pairs, per_step, learning_rate
):
    rows = TrainingPairs(
        torch.ones(pairs, 1, dtype=torch.long), torch.ones(pairs), torch.ones(pairs)
    )
    assert rows.pairs_per_step() == per_step
    assert rows.learning_rate() == pytest.approx(learning_rate)
    assert rows.steps() == -(-pairs // per_step)


def _one_pair(first: int, then: int) -> TrainingPairs:
    return TrainingPairs(torch.tensor([[first]]), torch.tensor([1]), torch.tensor([then]))


def test_the_first_adam_step_moves_the_user_towards_the_next_item():
    # c = e1, W = I: q = e1 scores item 1 at 1/T and item 2 at 0. The softmax loss of "item 2
    # follows" has dL/dq = (p1 e1 + (p2 - 1) e2) / T; normalising q removes the e1 part, so only
    # W[0, 1] gets a gradient, negative; Adam's first step is lr x the sign: W[0, 1] = +lr.
    pair = _one_pair(1, 2)
    fitted = fit_text_transition(AXES[:3, :2], pair, torch.zeros(3), 1, 0.0, seed=0)
    expected = torch.tensor([[1.0, pair.learning_rate()], [0.0, 1.0]])
    torch.testing.assert_close(fitted, expected)


def test_no_epochs_keep_the_identity():
    fitted = fit_text_transition(AXES, _one_pair(1, 2), torch.zeros(4), 0, 1.0, seed=0)
    assert torch.equal(fitted, torch.eye(3))


def test_the_popularity_adjustment_credits_what_popularity_does_not_explain():
    # After item 1 come item 2 three times and item 3 once; item 2 is that much more popular.
    seq = torch.tensor([[1], [1], [1], [1]])
    pairs = TrainingPairs(seq, torch.ones(4, dtype=torch.long), torch.tensor([2, 2, 2, 3]))
    popularity = torch.tensor([0.0, 0.0, 3.0, 1.0])

    def lean_to_item_3(weight: float) -> float:
        fitted = fit_text_transition(AXES, pairs, popularity, 300, weight, seed=0)
        user = F.normalize(AXES[1] @ fitted, dim=0)
        return (user @ AXES[3] - user @ AXES[2]).item()

    assert lean_to_item_3(0.0) < -0.05  # the counts alone say "item 2"
    assert lean_to_item_3(2.0) > 0  # popularity explains item 2's count: item 3 gains


def test_the_fit_is_seeded_and_leaves_the_global_generator_alone():
    torch.manual_seed(7)
    pairs = TrainingPairs(
        torch.randint(1, 4, (6, 3)), torch.full((6,), 3), torch.randint(1, 4, (6,)), True
    )
    state = torch.random.get_rng_state()
    first = fit_text_transition(AXES, pairs, torch.ones(4), 3, 0.5, seed=11)
    assert torch.equal(torch.random.get_rng_state(), state)
    assert torch.equal(fit_text_transition(AXES, pairs, torch.ones(4), 3, 0.5, seed=11), first)
    assert not torch.equal(fit_text_transition(AXES, pairs, torch.ones(4), 3, 0.5, seed=12), first)


def test_the_prior_maps_the_user_vector_through_its_transition():
    prior = TextPrior(4, 3)
    prior.item_vectors.copy_(AXES)
    prior.transition.copy_(torch.tensor([[0.0, 1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]]))
    # c_u = e1 becomes e1 W = e2: the user of item 1 now scores item 2 at 1
    torch.testing.assert_close(
        prior.similarity(torch.tensor([[1]])), torch.tensor([[0.0, 0.0, 1.0, 0.0]])
    )


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_the_fit_runs_in_the_step_precision(dtype):
    pairs = _one_pair(1, 2)
    fitted = fit_text_transition(AXES, pairs, torch.zeros(4), 2, 0.0, seed=0, dtype=dtype)
    assert fitted.dtype == torch.float32 and fitted[0, 1] > 0


def test_a_sampled_step_scores_the_next_item_and_the_drawn_items_shifted_to_the_catalog():
    # 3 items, 2 drawn per step: each drawn logit gains log(3 / 2); a drawn item equal to the
    # pair's next item is left out (-inf), and the next item is column 0.
    users = torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    following = torch.tensor([2, 3])
    adjustment = torch.tensor([float("-inf"), 0.1, 0.2, 0.3])
    logits, target = tr.softmax_logits(
        users, following, AXES, adjustment, 2, torch.Generator().manual_seed(3), torch.float32
    )
    drawn = torch.randint(1, 4, (2,), generator=torch.Generator().manual_seed(3))
    assert target.tolist() == [0, 0] and logits.shape == (2, 3)
    t, shift = tr.TEMPERATURE, math.log(3 / 2)
    torch.testing.assert_close(logits[:, 0], torch.tensor([0.2, 0.3]))  # cos 0: adjustment only
    for row in range(2):
        for column, item in enumerate(drawn.tolist(), start=1):
            cosine = float(users[row] @ AXES[item])
            expected = cosine / t + float(adjustment[item]) + shift
            if item == following[row]:
                expected = float("-inf")
            assert logits[row, column].item() == pytest.approx(expected)


def test_small_catalogs_take_the_full_softmax():
    users = torch.tensor([[1.0, 0.0, 0.0]])
    adjustment = torch.tensor([float("-inf"), 0.0, 0.0, 0.0])
    logits, target = tr.softmax_logits(
        users, torch.tensor([2]), AXES, adjustment, None, torch.Generator(), torch.float32
    )
    assert target.tolist() == [2]
    torch.testing.assert_close(logits[0, 1:], torch.tensor([1.0 / tr.TEMPERATURE, 0.0, 0.0]))


def test_the_sampled_fit_learns_which_text_follows(monkeypatch):
    # 3 items, 1 drawn per step: the sampled fit still turns item 1's vector towards item 2.
    monkeypatch.setattr(tr, "CANDIDATES", 1)
    seq = torch.tensor([[1], [1], [1], [1]])
    pairs = TrainingPairs(seq, torch.ones(4, dtype=torch.long), torch.tensor([2, 2, 2, 2]))
    fitted = fit_text_transition(AXES, pairs, torch.zeros(4), 100, 0.0, seed=0)
    user = F.normalize(AXES[1] @ fitted, dim=0)
    assert (user @ AXES[2]).item() > (user @ AXES[3]).item() + 0.05
