"""map_agreement: Spearman's rank correlation of two maps, checked against a reference written
from the definition (each cell's rank counted by comparisons, ties sharing their mean rank)."""

import numpy as np
import pytest

from gradcam.engine.agreement import map_agreement


def _reference(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman's rho by the book: rank = cells below + (cells equal + 1) / 2, then Pearson's r."""
    a, b = a.ravel().tolist(), b.ravel().tolist()

    def ranks(values):
        return [sum(v < x for v in values) + (sum(v == x for v in values) + 1) / 2 for x in values]

    ra, rb = ranks(a), ranks(b)
    ma, mb = sum(ra) / len(ra), sum(rb) / len(rb)
    cov = sum((x - ma) * (y - mb) for x, y in zip(ra, rb, strict=True))
    return cov / (sum((x - ma) ** 2 for x in ra) * sum((y - mb) ** 2 for y in rb)) ** 0.5


@pytest.mark.parametrize("seed", range(4))
def test_agreement_is_spearman_s_rho_with_tied_cells(seed):
    rng = np.random.default_rng(seed)
    a = rng.random((12, 12))
    b = np.maximum(a + rng.normal(0, 0.3, a.shape), 0)  # a ReLU's zeros: many ties
    a[a < 0.4] = 0
    assert map_agreement(a, b) == pytest.approx(_reference(a, b), abs=1e-12)


def test_agreement_ignores_scale_and_sees_an_opposite_or_unrelated_map():
    rng = np.random.default_rng(0)
    a = rng.random((6, 6))
    assert map_agreement(a, 3 * a**2) == pytest.approx(1.0)
    assert map_agreement(a, -a) == pytest.approx(-1.0)
    assert abs(map_agreement(a, rng.random((6, 6)))) < 0.4


def test_a_map_without_order_agrees_with_nothing():
    a = np.random.default_rng(1).random((6, 6))
    assert map_agreement(a, np.zeros((6, 6))) is None
    assert map_agreement(np.full((6, 6), 0.5), a) is None


def test_a_map_of_another_resolution_is_compared_at_the_reference_s_cells():
    a = np.zeros((6, 6))
    a[1, 4] = 1.0
    a[2, 4] = 0.5
    fine = np.kron(a, np.ones((2, 2)))  # the same map at 12x12
    assert map_agreement(a, fine) == pytest.approx(1.0)
