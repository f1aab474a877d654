"""How far the image block's resize moves a real model's answers: each real int8 classifier's predictions
on its own photos, run on LiteRT, with the block's former resize (OpenCV's area / linear) and with the
impulse's kernels through libvips (lanczos3, Studio's default, and nearest), per resize mode; and the
accuracy of each. Reads ../shared/real and the local cache (bench/real_cache.py); prints a table.

    .venv/bin/python bench/studio_parity.py
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import cv2
import numpy as np

sys.path[:0] = [str(Path(__file__).resolve().parents[1])]
from bench.real_cache import CACHE  # noqa: E402
from gradcam.engine import preprocess  # noqa: E402
from gradcam.engine.preprocess import ImageSpec, fit, scale, to_color_depth  # noqa: E402
from gradcam.engine.tflite import TfliteModel  # noqa: E402
from gradcam.engine.tflite_graph import read  # noqa: E402

REAL = Path(__file__).resolve().parents[2] / "shared" / "real"
MODELS = {
    "MobileNet 96 int8": REAL / "classifier-periquito96-int8.tflite",
    "MobileNet 160 int8": CACHE / "raspi-img-class-int8.tflite",
}
PHOTOS = {"periquito": CACHE / "periquito", "Nicla": CACHE / "nicla"}
CLASSES = ["background", "periquito", "robot"]


def opencv_fit(image: np.ndarray, spec: ImageSpec) -> np.ndarray:
    """The block's former resize: OpenCV's INTER_AREA shrinking, INTER_LINEAR growing, centre crop."""

    def resize(part, width, height):
        shrinking = width * height < part.shape[0] * part.shape[1]
        return cv2.resize(part, (width, height), interpolation=cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR)

    original = preprocess.resize.resize
    preprocess.resize.resize = lambda part, width, height, _method: resize(part, width, height)
    try:
        return fit(image, spec)[0]
    finally:
        preprocess.resize.resize = original


def photos(folder: Path) -> tuple[list[np.ndarray], list[str]]:
    files = json.loads((folder / "info.labels").read_text())["files"]
    images = [cv2.cvtColor(cv2.imread(str(folder / f["path"])), cv2.COLOR_BGR2RGB) for f in files]
    return images, [f["label"]["label"] for f in files]


def main() -> None:
    print(
        "| model | photos | resize mode | answers changed: OpenCV -> lanczos3 | nearest -> lanczos3 "
        "| accuracy OpenCV | lanczos3 | nearest |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for name, path in MODELS.items():
        if not path.is_file():
            print(f"| {name} | (absent: {path}) |")
            continue
        graph = read(path)
        model = TfliteModel.of(graph)
        height, width = graph.tensors[graph.input].shape[1:3]
        for set_name, folder in PHOTOS.items():
            if not folder.is_dir():
                continue
            images, labels = photos(folder)
            for mode in ("squash", "fit-short"):
                answers = {}
                for method in ("opencv", "lanczos3", "nearest"):
                    spec = ImageSpec(width, height, False, mode, "0..1", "lanczos3" if method == "opencv" else method)
                    resized = [opencv_fit(im, spec) if method == "opencv" else fit(im, spec)[0] for im in images]
                    inputs = np.stack([scale(to_color_depth(r, spec), spec) for r in resized]).astype(np.float32)
                    answers[method] = np.argmax(model.predict(inputs), axis=1)
                truth = np.array([CLASSES.index(label) for label in labels])
                n = len(images)
                print(
                    f"| {name} | {n} {set_name} | {mode} | {(answers['opencv'] != answers['lanczos3']).sum()} of {n} "
                    f"| {(answers['nearest'] != answers['lanczos3']).sum()} of {n} | "
                    + " | ".join(f"{(answers[m] == truth).sum()}" for m in ("opencv", "lanczos3", "nearest"))
                    + " |",
                    flush=True,
                )


if __name__ == "__main__":
    main()
