"""The checks against the model's own evidence and `auto`'s calibration, timed in whole jobs: the default
job (`--method auto`, `--evidence budget`) against the job without either (`--method gradcam --evidence
off`), and against the reference on every sample (`--evidence all`), on the bundled example, on the
bundled model with `images` of its kind, and on the trained MobileNetV2 0.35 96x96 fixture; the
calibration's share of a job of `images` images.

    .venv/bin/python bench/evidence.py [--images 1000]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import zipfile
from pathlib import Path

import cv2
import numpy as np

sys.path[:0] = [str(Path(__file__).resolve().parent), str(Path(__file__).resolve().parents[1])]
from common import make_export  # noqa: E402
from loops import as_trained, end_to_end  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
BUNDLED = ROOT / "examples" / "shapes"
PLAIN = {"method": "gradcam", "evidence": "off"}


def bundled_classes() -> list[str]:
    with zipfile.ZipFile(BUNDLED / "export.zip") as archive:
        files = json.loads(archive.read("info.labels"))["files"]
    return sorted({f["label"]["label"] for f in files})


def bundled_export(path: Path, n: int) -> Path:
    """n images of the bundled example's kind: its test images under the eight flips and rotations
    (each a shape of the same class), in turn."""
    with zipfile.ZipFile(BUNDLED / "export.zip") as source:
        files = [f for f in json.loads(source.read("info.labels"))["files"] if f["category"] == "testing"]
        images = [cv2.imdecode(np.frombuffer(source.read(f["path"]), np.uint8), cv2.IMREAD_COLOR) for f in files]
    written = []
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as archive:
        for i in range(n):
            turn, f = divmod(i, len(files))
            image = np.rot90(images[i % len(files)], turn % 4)
            image = image[:, ::-1] if (turn // 4) % 2 else image
            name = f"testing/{i:05d}.png.abcdefgh.ingestion-1.png"
            archive.writestr(name, cv2.imencode(".png", np.ascontiguousarray(image))[1].tobytes())
            written.append({"path": name, "category": "testing", "label": files[f]["label"]})
        archive.writestr("info.labels", json.dumps({"version": 1, "files": written}))
    return path


def job_seconds(model: Path, export: Path, out: Path, classes: list[str], resize_mode: str, **options):
    """(seconds, summary) of the whole job on `export`."""
    rate, summary = end_to_end(model, export, out, 32, classes=classes, resize_mode=resize_mode, **options)
    return samples(summary) / rate, summary


def samples(summary) -> int:
    tally = summary.info.tally
    return tally.correct + tally.incorrect + tally.unlabeled + tally.skipped


def evidence_lines(images: int, tmp: Path) -> list[str]:
    from run import trained_mobilenet

    mobilenet = trained_mobilenet(tmp / "mobilenet.h5")
    cases = [
        ("bundled example", BUNDLED / "model.h5", BUNDLED / "export.zip", bundled_classes(), "fit-short"),
        (
            "bundled model, its images turned",
            BUNDLED / "model.h5",
            bundled_export(tmp / "turned.zip", images),
            bundled_classes(),
            "fit-short",
        ),
        (
            "MobileNetV2 0.35 96x96 (trained)",
            mobilenet,
            as_trained(make_export(tmp / "export.zip", images), mobilenet, tmp / "labelled.zip"),
            ["a", "b", "c"],
            "fit-short",
        ),
    ]
    lines = [
        "| model | samples | default job s | maps checked | calibration s (share of the job) | chosen "
        "| plain job s (--method gradcam --evidence off) | default / plain | --evidence all s | all / plain |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, model, export, classes, resize in cases:
        default, summary = job_seconds(model, export, tmp / "default", classes, resize)
        plain, _ = job_seconds(model, export, tmp / "plain", classes, resize, **PLAIN)
        every, _ = job_seconds(model, export, tmp / "all", classes, resize, evidence="all")
        info = summary.info
        checked = info.totals.evidence.total.maps if info.totals.evidence else 0
        choice = info.choice
        calibration = f"{choice.seconds:.1f} ({choice.seconds / default:.0%})" if choice else "–"
        chosen = choice.chosen.label if choice else info.method
        lines.append(
            f"| {name} | {samples(summary)} | {default:.1f} | {checked} | {calibration} | {chosen} | {plain:.1f} "
            f"| {default / plain:.2f} | {every:.1f} | {every / plain:.2f} |"
        )
        print(lines[-1], flush=True)
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=1000)
    args = parser.parse_args()
    print("\n".join(evidence_lines(args.images, Path(tempfile.mkdtemp(prefix="gradcam-evidence-")))))


if __name__ == "__main__":
    main()
