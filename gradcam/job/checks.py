"""Which samples' maps are checked against the model's own evidence (gradcam.engine.occlusion), batch
by batch. Pure code: the stages time their work and ask.

A check hides each part of the input in turn: one forward pass per part, where a gradient map costs
about one. `budget` (the default) checks every sample while the checks cost no more than the rest of
the model's work, so that they at most double the job; past that, an evenly spread share of the
samples, as large as that time allows. `all` checks every sample whatever it costs; `off` none.
"""

from __future__ import annotations

import numpy as np

from gradcam.choices import EVIDENCE_CHECKS
from gradcam.errors import GradcamError


class EvidenceChecks:
    """The samples to check in each batch, and how many were offered and checked."""

    def __init__(self, mode: str = "budget"):
        if mode not in EVIDENCE_CHECKS:
            raise GradcamError(f"evidence checks {mode!r}: expected one of {', '.join(EVIDENCE_CHECKS)}")
        self.mode = mode
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

    def choose(self, count: int) -> np.ndarray:
        """Which of a batch's `count` samples to check (bool, evenly spread); in `budget`, one sample of
        each batch until a check has been timed after the first batch (whose times hold the passes'
        tracing, not their cost)."""
        if self.mode == "budget" and not self.checked:
            self._quota = 1.0
        else:
            self._quota += count * self.share
        take = min(count, int(self._quota + 1e-9))
        self._quota -= take
        chosen = np.zeros(count, bool)
        if take:
            chosen[np.round(np.linspace(0, count - 1, take)).astype(int)] = True
        return chosen

    def spent(self, count: int, checked: int, checking: float, rest: float) -> None:
        """A batch of `count` samples took `rest` seconds of model work and `checking` seconds to
        check `checked` of them (the first batch's only counted)."""
        self.batches += 1
        self.total += checked
        if self.batches > 1:
            self.offered += count
            self.checked += checked
            self._checking += checking
            self._rest += rest
