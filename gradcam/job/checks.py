"""Which samples' maps are checked against the model's own evidence (gradcam.engine.occlusion), batch
by batch. Pure code: the stages time their work and ask.

A check hides each part of the input in turn: one forward pass per part, where a gradient map costs
about one. `budget` (the default) checks every sample while the checks cost no more than the rest of
the model's work, so that they at most double the job; past that, an evenly spread share of the
samples, as large as that time allows. `all` checks every sample whatever it costs; `off` none.

auto's calibration takes the evidence of a sample of the job's own samples before the loop: those
references are the job's first checks. Each is made again at no cost when its sample comes (the
evidence is kept, gradcam.engine.occlusion.Memo), and the budget counts them as paid for (`prepaid`),
so that the calibration and the checks together stay within it.
"""

from __future__ import annotations

import numpy as np

from gradcam.choices import EVIDENCE_CHECKS
from gradcam.errors import check_choice


class EvidenceChecks:
    """The samples to check in each batch, and how many were offered and checked."""

    def __init__(self, mode: str = "budget", prepaid: int = 0):
        """prepaid: checks already paid for (auto's calibration's references), owed from the budget."""
        check_choice("evidence checks", mode, EVIDENCE_CHECKS)
        self.mode, self._owed = mode, float(prepaid)
        self.offered = self.checked = 0  # samples, and checks, after the first batch
        self.batches = self.total = 0  # batches seen, and every check made
        self._checking = self._rest = 0.0  # seconds
        self._quota = 0.0  # samples that may be checked, carried from batch to batch

    @property
    def share(self) -> float:
        """The share of samples the checks can afford: all of them in `all`, none in `off`; in
        `budget`, the rest's time per sample over a check's."""
        if self.mode != "budget":
            return float(self.mode == "all")
        return min(1.0, (self._rest / self.offered) / (self._checking / self.checked))

    def choose(self, count: int, free: np.ndarray | None = None) -> np.ndarray:
        """Which of a batch's `count` samples to check (bool): those whose check is `free` (bool, already
        taken), and of the others an evenly spread share; in `budget`, one of each batch until a check
        has been timed after the first batch (whose times hold the passes' tracing, not their cost)."""
        if self.mode == "off":
            return np.zeros(count, bool)
        free = np.zeros(count, bool) if free is None else free
        if self.mode == "budget" and not self.checked:
            self._quota = 1.0
        else:
            gained = count * self.share
            repaid = min(self._owed, gained)
            self._owed -= repaid
            self._quota += gained - repaid
        others = np.flatnonzero(~free)
        take = min(len(others), int(self._quota + 1e-9))
        self._quota -= take
        chosen = free.copy()
        if take:
            chosen[others[np.round(np.linspace(0, len(others) - 1, take)).astype(int)]] = True
        return chosen

    def spent(self, count: int, checked: int, checking: float, rest: float, free: int = 0) -> None:
        """A batch of `count` samples took `rest` seconds of model work and `checking` seconds to
        check `checked` of them, and `free` more whose evidence was taken (the first batch's only counted)."""
        self.batches += 1
        self.total += checked + free
        if self.batches > 1:
            self.offered += count
            self.checked += checked
            self._checking += checking
            self._rest += rest
