"""What the explainer gives back: one sample's maps as a batch leaves them (`SampleMaps`), and one
image's explanation on the image itself (`Explanation`, the public API's result)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from gradcam.engine.overlay import blend, contrast_panel, panel
from gradcam.engine.tasks import Answer


@dataclass
class Explanation:
    """What the model said about one image and where it looked."""

    prediction: int | float  # class index, or the value for regression
    label: str  # the predicted class name (regression: the value as text)
    confidence: float  # probability of the prediction (regression: nan)
    scores: np.ndarray  # probabilities per class (regression: the raw output)
    cam: np.ndarray  # normalised map at the finest explained layer's resolution (h, w)
    heatmap: np.ndarray  # the map on the original image, 0..1 (H0, W0)
    image: np.ndarray  # the original as displayed (RGB uint8)
    region: tuple[int, int, int, int]  # (x0, y0, x1, y1) of the original that the model saw
    peak: tuple[int, int] | None  # (x, y) original pixel at the centre of the map's hottest region; None: blank
    explained: str = ""  # the class whose score the map explains (regression: "value")
    faithfulness: float | None = None  # -1..1, see gradcam.engine.faithfulness; None: not measured
    evidence: float | None = None  # 0..1, agreement with the model's own evidence (gradcam.engine.agreement)
    contrast: Explanation | None = None  # a mistake's map of its true class (labels given); else None

    def overlay(self, alpha: float = 0.4) -> np.ndarray:
        return blend(self.image, self.heatmap, alpha, self.region)

    def panel(self, alpha: float, caption: str) -> np.ndarray:
        """Original, heatmap and blend; for a mistake, the blends of the explained and the true class."""
        if self.contrast is None:
            return panel(self.image, self.heatmap, alpha, caption, self.region)
        maps = [
            (self.heatmap, f"map: {self.explained}"),
            (self.contrast.heatmap, f"map: {self.contrast.explained} (true)"),
        ]
        return contrast_panel(self.image, maps, alpha, caption, self.region)

    @property
    def answer(self) -> Answer:
        return Answer(self.prediction, self.label, self.confidence, self.scores)

    def __repr__(self) -> str:
        """What a person printing a result wants: the answer, the map's size, peak and trust."""
        height, width = self.cam.shape
        parts = [f"label={self.label!r}", f"confidence={self.confidence:.3f}", f"map={height}x{width}"]
        parts.append(f"peak={self.peak}")
        if self.faithfulness is not None:
            parts.append(f"faithfulness={self.faithfulness:.2f}")
        if self.contrast is not None:
            parts.append(f"contrast={self.contrast.explained!r}")
        return f"Explanation({', '.join(parts)})"

    @property
    def blank(self) -> bool:
        """True when nothing in the image raised the explained score: the map is all zero."""
        return not self.cam.max() > 0


@dataclass(frozen=True)
class SampleMaps:
    """One sample's share of a batch: its normalised map and outputs, the class the map explains,
    its faithfulness, and for a mistake its contrast map (of its true class) and that class."""

    cam: np.ndarray
    probabilities: np.ndarray
    explained: str
    faithfulness: float | None = None
    contrast: np.ndarray | None = None
    contrast_class: str | None = None
    contrast_faithfulness: float | None = None
    evidence: float | None = (
        None  # agreement with the model's own evidence (gradcam.engine.agreement); None: not measured
    )
    contrast_evidence: float | None = None
