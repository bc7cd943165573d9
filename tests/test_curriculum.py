"""The cosine curriculum at the quarter points of its period."""

import pytest

from recbole_faerec.model.curriculum import alignment_weight


@pytest.mark.parametrize(
    ("epoch", "expected"),
    [(0, 1.0), (7.5, 0.95), (15, 0.9), (22.5, 0.95), (30, 1.0), (60, 1.0)],
)
def test_weight_at_quarter_points(epoch, expected):
    assert alignment_weight(epoch, w_min=0.9, w_max=1.0, period=30) == pytest.approx(expected)


def test_weight_with_other_bounds():
    assert alignment_weight(5, w_min=0.2, w_max=0.6, period=20) == pytest.approx(0.4)
    assert alignment_weight(10, w_min=0.2, w_max=0.6, period=20) == pytest.approx(0.2)
