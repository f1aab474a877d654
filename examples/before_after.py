"""docs/images.md's before/after picture: the last conv alone against the default, on Edge Impulse's
MobileNetV2 0.35 96x96 (the trained test fixture), for a few of the bundled example's test images.

    .venv/bin/python examples/before_after.py     # writes docs/before-after.jpg
"""

from __future__ import annotations

import sys
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from gradcam.engine.formats import load_model  # noqa: E402
from gradcam.engine.overlay import CAPTION_HEIGHT  # noqa: E402
from gradcam.explainer import Explainer  # noqa: E402
from tests.helpers import SHAPE_CLASSES, shapes_test_set  # noqa: E402

MODEL = ROOT / "tests" / "fixtures" / "mobilenetv2_96.h5"
SAMPLES = (0, 1, 2, 5)  # one row each


def _caption(picture: np.ndarray, text: str) -> np.ndarray:
    strip = np.full((CAPTION_HEIGHT, picture.shape[1], 3), 255, np.uint8)
    cv2.putText(strip, text, (6, CAPTION_HEIGHT - 9), cv2.FONT_HERSHEY_SIMPLEX, 0.55, (0, 0, 0), 1, cv2.LINE_AA)
    return np.concatenate([strip, picture], axis=0)


def main() -> None:
    images, _, boxes = shapes_test_set()
    model = load_model(MODEL)
    columns = []
    for layer in ("last-conv", "auto"):
        explainer = Explainer(model, SHAPE_CLASSES, resize_mode="fit-short", layer=layer)
        height, width = explainer.resolution
        results = explainer.explain([images[i] for i in SAMPLES])
        tiles = []
        for result, i in zip(results, SAMPLES, strict=True):
            tile = result.overlay(0.5)  # the object's box in white, the peak as a black cross
            x0, y0, x1, y1 = boxes[i]
            cv2.rectangle(tile, (x0, y0), (x1 - 1, y1 - 1), (255, 255, 255), 1)
            if result.peak:
                cv2.drawMarker(tile, result.peak, (0, 0, 0), cv2.MARKER_CROSS, 12, 2)
            tiles.append(cv2.resize(tile, None, fx=2, fy=2, interpolation=cv2.INTER_NEAREST))
        name = "--layer last-conv" if layer == "last-conv" else "default, --layer auto"
        columns.append(_caption(np.concatenate(tiles, axis=0), f"{name}: {height}x{width} map"))
    gap = np.full((columns[0].shape[0], 8, 3), 255, np.uint8)
    picture = np.concatenate([columns[0], gap, columns[1]], axis=1)
    out = ROOT / "docs" / "before-after.jpg"
    cv2.imwrite(str(out), cv2.cvtColor(picture, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 88])
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
