"""The measurements behind map_agreement's threshold (gradcam/engine/agreement.py): how far the
maps of an int8 model agree with its float Keras model's, sample by sample, when the int8 model
is calibrated as Studio calibrates it (on images of the training distribution) and when it is
calibrated on a few unrepresentative images (dark noise), which breaks its quantization.

Each case: a trained test model of Edge Impulse's architectures, converted to int8 twice, its
maps and the int8 twin's (each explaining its own answer) on the model's 120 test images.

    .venv/bin/python bench/agreement_threshold.py
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from gradcam.engine.agreement import map_agreement  # noqa: E402
from gradcam.engine.formats import load_model  # noqa: E402
from gradcam.explainer import Explainer  # noqa: E402
from tests import helpers  # noqa: E402

FIXTURES = ROOT / "tests" / "fixtures"
CASES = {
    "bundled example (small CNN)": (helpers.SHAPES / "model.h5", {"grey": True}),
    "mobilenetv2_96": (FIXTURES / "mobilenetv2_96.h5", {}),
    "mobilenetv1_96_gray": (FIXTURES / "mobilenetv1_96_gray.h5", {"luminance": True}),
    "mobilenetv2_160": (FIXTURES / "mobilenetv2_160.h5", {}),
}
CANDIDATES = (0.3, 0.4, 0.5, 0.6, 0.7)


def agreements(model_path: Path, options: dict, bad: bool) -> tuple[np.ndarray, float]:
    """Per test image, the agreement of the int8 map with the float map; and the share of images
    where the two models give the same answer."""
    model = load_model(model_path)
    keras = Explainer(model, helpers.SHAPE_CLASSES, resize_mode="fit-short", faithfulness=False)
    images, _labels, _boxes = helpers.shapes_test_set(**options)
    inputs = np.stack([keras.prepare(image)[0] for image in images])
    dark_noise = np.random.default_rng(0).random((4, *inputs.shape[1:]), np.float32) * 0.1
    calibration = dark_noise if bad else inputs[:60]
    graph = helpers.converted(model, calibration)
    int8 = Explainer(graph, helpers.SHAPE_CLASSES, resize_mode="fit-short", faithfulness=False)
    a, b = keras.run(inputs), int8.run(inputs)
    found = [map_agreement(x, y) for x, y in zip(a.maps, b.maps, strict=True)]
    same = float(np.mean(a.probabilities.argmax(1) == b.probabilities.argmax(1)))
    return np.array([-1.0 if v is None else v for v in found]), same


def main() -> None:
    below = " | ".join(f"< {t}" for t in CANDIDATES)
    print(f"| model | calibration | same answer | p5 | p10 | median | {below} |")
    print("|---|---|---|---|---|---|" + "---|" * len(CANDIDATES))
    for name, (path, options) in CASES.items():
        for bad in (False, True):
            found, same = agreements(path, options, bad)
            p5, p10, p50 = np.percentile(found, [5, 10, 50])
            shares = " | ".join(f"{np.mean(found < t):.0%}" for t in CANDIDATES)
            calibration = "4 dark noise images" if bad else "60 test-distribution images"
            print(f"| {name} | {calibration} | {same:.0%} | {p5:.2f} | {p10:.2f} | {p50:.2f} | {shares} |", flush=True)


if __name__ == "__main__":
    main()
