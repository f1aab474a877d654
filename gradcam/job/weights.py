"""What each class weighs, summed over the run: per feature group of a flat DSP block (gradcam.edge.sensors),
the mean share of the positive attribution, per explained class and, for mistakes, per true class
with the attribution of that class. Pure NumPy, running sums: memory stays flat however many windows.

A group weighs what its features' signed attributions add up to (a feature may weigh against the
class); a window's share per group is the group's positive sum over all groups' positive sums. On
the motion fixture family (docs/motion.md), the axis that tells the classes apart holds 0.97-0.99 of it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from gradcam.edge.sensors import SensorLayout


def group_shares(weights: np.ndarray, layout: SensorLayout) -> tuple[float, ...] | None:
    """One window's signed attributions -> each group's share of the positive total (None: nothing
    weighs for the class)."""
    index = layout.group_index
    sums = np.bincount(index[index >= 0], weights=weights[index >= 0], minlength=len(layout.groups))
    positive = np.maximum(sums, 0)
    total = positive.sum()
    return tuple(float(v) for v in positive / total) if total > 0 else None


@dataclass(frozen=True)
class GroupWeights:
    """One window's shares per group: of the explained class's attribution, and for a mistake of its
    true class's (None: not made, or nothing weighs for it)."""

    explained: tuple[float, ...] | None
    contrast: tuple[float, ...] | None = None


@dataclass(frozen=True)
class ClassWeights:
    """A class's mean share per group, over its windows."""

    name: str
    windows: int
    shares: tuple[float, ...]


@dataclass(frozen=True)
class Weights:
    """The run's class summaries for a model explained at its input features."""

    groups: tuple[str, ...]
    classes: list[ClassWeights]
    mistakes: list[ClassWeights]  # by true class, with that class's attribution
    note: str | None = None  # what was assumed where the features could not be named


class WeightSums:
    """Running sums of the windows' group shares, per class."""

    def __init__(self, layout: SensorLayout):
        self.groups, self.note = layout.groups, layout.note
        self._sums: dict[str, dict[str, list]] = {"classes": {}, "mistakes": {}}

    def add(self, explained: str, weights: GroupWeights | None, truth: str | None) -> None:
        """One window: the class its attribution explains, its shares, and for a mistake its true class."""
        if weights is None:
            return
        for kind, name, shares in (("classes", explained, weights.explained), ("mistakes", truth, weights.contrast)):
            if shares is not None and name is not None:
                count, total = self._sums[kind].get(name, (0, np.zeros(len(self.groups))))
                self._sums[kind][name] = (count + 1, total + np.asarray(shares))

    def result(self) -> Weights | None:
        if not self._sums["classes"]:
            return None
        means = {
            kind: [
                ClassWeights(name, n, tuple(float(v) for v in total / n)) for name, (n, total) in sorted(sums.items())
            ]
            for kind, sums in self._sums.items()
        }
        return Weights(self.groups, means["classes"], means["mistakes"], self.note)
