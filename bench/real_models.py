"""The real-model evaluation set: Edge Impulse models with data of their own, each explained by the
default Grad-CAM maps and by what `--method auto` chooses, and every map measured against the model's
own evidence (occlusion on the model that runs: gradcam.engine.occlusion).

Per image model: the share of the default maps whose peak holds at least half of the largest fall
(gradcam.engine.agreement.evidence_at_peak), beside a map that always points at the image's centre and
a random point (the share of the reference's cells at half its largest fall or more); the share of the
default maps peaking in the outer eighth of the image; auto's choice and its agreement; and, as a
check independent of the reference, the mean faithfulness of the default maps and of auto's.

Files come from ../shared/real/ and from the cache bench/real_cache.py fills (GRADCAM_REAL_CACHE);
a model whose files are absent is listed as such. `python bench/real_models.py` writes
bench/results/real_models.md (docs/trust.md quotes it).
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.real_cache import CACHE
from gradcam.engine.agreement import AGREES, evidence_at_peak
from gradcam.engine.calibration import calibrate, spread
from gradcam.engine.formats import load_model
from gradcam.engine.maps import peak
from gradcam.engine.tasks import PREDICTED
from gradcam.explainer import Explainer

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "real"
RESULTS = ROOT / "bench" / "results" / "real_models.md"
BORDER = 1 / 8  # a peak in the outer eighth of the image's side is "on the border"


@dataclass(frozen=True)
class ImageCase:
    """A real image classifier and photos of its own (an export folder), as the impulse resizes them."""

    name: str
    model: Path
    photos: Path
    classes: tuple[str, ...]
    resize_mode: str = "squash"


PERIQUITO = ("background", "periquito", "robot")
IMAGES = [
    ImageCase(
        "MobileNet 96x96 int8 (periquito)",
        SHARED / "classifier-periquito96-int8.tflite",
        CACHE / "periquito",
        PERIQUITO,
    ),
    ImageCase(
        "MobileNet 160x160 int8 (periquito)", CACHE / "raspi-img-class-int8.tflite", CACHE / "periquito", PERIQUITO
    ),
    ImageCase(
        "MobileNet 96x96 int8, Nicla Vision photos",
        SHARED / "classifier-periquito96-int8.tflite",
        CACHE / "nicla",
        PERIQUITO,
    ),
    ImageCase(
        "MobileNet 160x160 int8, Nicla Vision photos", CACHE / "raspi-img-class-int8.tflite", CACHE / "nicla", PERIQUITO
    ),
]


def photos(folder: Path) -> tuple[list[np.ndarray], list[str]]:
    files = json.loads((folder / "info.labels").read_text())["files"]
    images = [cv2.cvtColor(cv2.imread(str(folder / f["path"])), cv2.COLOR_BGR2RGB) for f in files]
    return images, [f["label"]["label"] for f in files]


def on_border(cam: np.ndarray) -> bool:
    centre = peak(cam)
    if centre is None:
        return False
    fx, fy = (centre[0] + 0.5) / cam.shape[1], (centre[1] + 0.5) / cam.shape[0]
    return min(fx, fy, 1 - fx, 1 - fy) < BORDER


def share(maps: np.ndarray, reference: np.ndarray) -> float:
    return float(np.mean([(evidence_at_peak(m, r) or 0.0) >= AGREES for m, r in zip(maps, reference, strict=True)]))


def image_row(case: ImageCase) -> dict:
    model = load_model(case.model)
    images, _labels = photos(case.photos)
    explainer = Explainer(model, list(case.classes), resize_mode=case.resize_mode, method="gradcam")
    x = np.stack([explainer.prepare(image)[0] for image in images])
    logits = explainer.adapter.logits(x)
    predicted = explainer.task.explained_classes(logits, np.full(len(x), PREDICTED))
    started = time.monotonic()
    reference = explainer.evidence.maps(x, list(predicted), np.arange(len(x)), logits)
    seconds = (time.monotonic() - started) / len(x)
    default = explainer.maps(x, np.full(len(x), PREDICTED, np.int32))
    choice = calibrate(explainer, model, x[spread(len(x))])
    chosen = Explainer(
        model, list(case.classes), resize_mode=case.resize_mode, method=choice.method, layer=choice.layer
    )
    shown = chosen.maps(x, np.full(len(x), PREDICTED, np.int32))
    cams = np.stack([m.cam for m in default])
    informative = [r for r in reference if r.max() > 0]
    h, w = reference.shape[1:]
    return {
        "model": case.name,
        "photos": len(x),
        "default": share(cams, reference),
        "centre": float(np.mean([r[h // 2, w // 2] >= AGREES * r.max() for r in informative])),
        "random": float(np.mean([(r >= AGREES * r.max()).mean() for r in informative])),
        "border": float(np.mean([on_border(c) for c in cams])),
        "auto": f"{choice.chosen.label}",
        "auto agreement": share(np.stack([m.cam for m in shown]), reference),
        "faithfulness default": float(np.mean([m.faithfulness for m in default])),
        "faithfulness auto": float(np.mean([m.faithfulness for m in shown])),
        "reference ms": 1000 * seconds,
    }


COLUMNS = [
    ("model", "{}"),
    ("photos", "{}"),
    ("default", "{:.2f}"),
    ("centre", "{:.2f}"),
    ("random", "{:.2f}"),
    ("border", "{:.2f}"),
    ("auto", "{}"),
    ("auto agreement", "{:.2f}"),
    ("faithfulness default", "{:.2f}"),
    ("faithfulness auto", "{:.2f}"),
    ("reference ms", "{:.0f}"),
]


def table(rows: list[dict]) -> str:
    head = "| " + " | ".join(name for name, _ in COLUMNS) + " |"
    lines = [head, "|" + "---|" * len(COLUMNS)]
    for row in rows:
        lines.append("| " + " | ".join(fmt.format(row[name]) for name, fmt in COLUMNS) + " |")
    return "\n".join(lines)


def main() -> None:
    rows, absent = [], []
    for case in IMAGES:
        if not (case.model.is_file() and (case.photos / "info.labels").is_file()):
            absent.append(case.name)
            continue
        rows.append(image_row(case))
        print(rows[-1], flush=True)
    text = table(rows) + ("\n\nAbsent here: " + ", ".join(absent) if absent else "") + "\n"
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
