"""Which maps are checked against the model's own evidence (gradcam.job.checks), and the one trust
verdict drawn from the checks (gradcam.engine.trust): pure code, no TensorFlow."""

import numpy as np
import pytest

from gradcam.engine.trust import trusted
from gradcam.errors import GradcamError
from gradcam.job.checks import EvidenceChecks


def test_the_budget_times_one_check_then_affords_what_the_rest_of_the_job_takes():
    checks = EvidenceChecks("budget")
    for _ in range(2):  # the first batch's times hold the tracing: one check more is timed
        assert checks.choose(32).sum() == 1, "one sample, to time a check"
        checks.spent(32, 1, checking=2.4, rest=3.8)  # the first batch: traced (not counted)
    assert checks.share == pytest.approx((3.8 / 32) / 2.4)
    checks = EvidenceChecks("budget")
    checks.spent(32, 1, checking=5.0, rest=5.0)  # traced, not counted
    checks.choose(32)
    checks.spent(32, 1, checking=0.4, rest=0.8)  # a check costs 0.4 s; the rest 0.025 s a sample
    assert checks.share == pytest.approx(0.025 / 0.4)
    chosen = [checks.choose(32) for _ in range(8)]
    for picked in chosen:
        checks.spent(32, int(picked.sum()), checking=0.4 * picked.sum(), rest=0.8)
    total = sum(int(p.sum()) for p in chosen)
    assert total == 16, "1/16 of 256 samples: the checks take as long as the rest"
    assert checks.offered == 32 * 9 and checks.checked == 17 and checks.total == 18


def test_cheap_checks_cover_every_sample_evenly_spread():
    checks = EvidenceChecks("budget")
    checks.spent(10, 1, checking=1.0, rest=1.0)  # the first batch
    checks.choose(10)
    checks.spent(10, 1, checking=0.01, rest=1.0)
    assert checks.share == 1.0
    assert checks.choose(10).all()
    half = EvidenceChecks("budget")
    half.spent(8, 1, checking=1.0, rest=1.0)  # the first batch
    half.choose(8)
    half.spent(8, 1, checking=0.5, rest=2.0)  # the rest: 0.25 a sample, a check 0.5
    picked = half.choose(8)
    assert np.flatnonzero(picked).tolist() == [0, 2, 5, 7], "4 of 8, spread over the batch"


def test_the_calibrations_references_are_checked_free_and_paid_from_the_budget():
    checks = EvidenceChecks("budget", prepaid=6)
    checks.spent(8, 1, checking=1.0, rest=1.0)  # the first batch
    checks.choose(8)
    checks.spent(8, 1, checking=0.5, rest=2.0)  # 4 checks a batch are affordable
    free = np.zeros(8, bool)
    free[[1, 6]] = True
    picked = checks.choose(8, free)
    assert picked[[1, 6]].all() and picked.sum() == 2, "the two taken are checked; 6 owed, 4 repaid"
    picked = checks.choose(8, free)
    assert picked[[1, 6]].all() and picked.sum() == 4, "2 more owed: 2 others are checked, spread"
    checks.spent(8, 2, checking=1.0, rest=2.0, free=2)
    assert checks.total == 2 + 4 and checks.checked == 3, "free checks count as made, not as timed"
    assert not EvidenceChecks("off").choose(4, np.ones(4, bool)).any(), "off checks nothing, free or not"


def test_all_and_off_do_what_they_say():
    every, none = EvidenceChecks("all"), EvidenceChecks("off")
    for _ in range(3):
        assert every.choose(5).all() and not none.choose(5).any()
        every.spent(5, 5, checking=10.0, rest=0.1)
        none.spent(5, 0, checking=0.0, rest=0.1)
    with pytest.raises(GradcamError, match=r"evidence checks 'some': expected one of budget, all, off"):
        EvidenceChecks("some")


def test_a_map_is_to_trust_when_every_check_made_on_it_passes():
    assert trusted(None, None) is None
    assert trusted(0.6, None) is True and trusted(None, 0.5) is True
    assert trusted(0.4, None) is False and trusted(None, 0.49) is False
    assert trusted(0.7, 0.9) is True
    assert trusted(0.7, 0.2) is False, "faithful, but its peak is where the model does not look"
    assert trusted(0.3, 0.9) is False
