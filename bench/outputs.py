"""Run the job on the bundled example in each of its kinds and write what it produced, for comparing
two versions of the code: `python bench/outputs.py DIR`, then `diff -r BEFORE AFTER`.

Per configuration, DIR/<name>/ gets results.csv, results.json, objects.csv (object detection) and
index.html as the job wrote them, and pictures.txt: every zip entry with the SHA-256 of its bytes.
The configurations cover classification (blend; panel with faithfulness and an int8 TFLite model),
regression and binary models with a TFLite model beside them, and FOMO object detection.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import sys
import tempfile
import zipfile
from pathlib import Path

import numpy as np
import tensorflow as tf

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gradcam.cli import main
from tests import helpers
from tests.helpers import SHAPES, jpeg, write_export

TEXT_FILES = ("results.csv", "results.json", "objects.csv", "index.html")
SHAPES_JOB = ["--model", SHAPES / "model.h5", "--dataset", SHAPES / "export.zip", "--resize-mode", "fit-short"]


def _tflite(model, calibration: np.ndarray) -> bytes:
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = lambda: ([x[None]] for x in calibration)
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.inference_input_type = converter.inference_output_type = tf.int8
    return converter.convert()


def _single_output(folder: Path, activation: str | None) -> list:
    """A small seeded model with one output, its int8 TFLite twin and an export labelled for it."""
    model = helpers.single_output_cnn(activation, k=helpers.tf_keras, seed=6)  # seed 6: maps that are not blank
    name = activation or "regression"
    model.save(folder / f"{name}.h5")
    (folder / f"{name}.tflite").write_bytes(_tflite(model, helpers.random_images(20, (32, 32, 3), seed=5)))
    rng = np.random.default_rng(7)
    labels = ["yes", "no"] if activation else ["0.25", "0.5", "1.5"]
    samples = [
        (
            f"testing/s{i}.jpg.x.ingestion-1.jpg",
            labels[i % len(labels)],
            jpeg(rng.integers(0, 256, (40, 48, 3), np.uint8)),
        )
        for i in range(24)
    ]
    export = write_export(folder / f"{name}.zip", samples)
    classes = ["--classes", "no,yes"] if activation else []
    return ["--model", folder / f"{name}.h5", "--dataset", export, "--tflite", folder / f"{name}.tflite", *classes]


def _fomo(folder: Path) -> list:
    """The FOMO test fixture on 24 seeded scenes, two of them without boxes."""
    from tests.test_detection import FIXTURE, _export, scenes

    images, boxes = scenes(24, seed=3)
    return ["--model", FIXTURE, "--dataset", _export(folder / "fomo.zip", images, boxes, unlabeled=(1, 5))]


def _shapes_int8(folder: Path) -> Path:
    from gradcam import Explainer, load_model
    from tests.test_tflite import _inputs

    model = load_model(SHAPES / "model.h5")
    _, training = _inputs(Explainer(model, helpers.SHAPE_CLASSES, resize_mode="fit-short"), "training")
    path = folder / "shapes.tflite"
    path.write_bytes(_tflite(model, training[:100]))
    return path


def configurations(folder: Path) -> dict[str, list]:
    return {
        "shapes-blend": SHAPES_JOB,
        "shapes-panel": [*SHAPES_JOB, "--layout", "panel", "--faithfulness", "--tflite", _shapes_int8(folder)],
        "regression": _single_output(folder, None),
        "binary": [*_single_output(folder, "sigmoid"), "--faithfulness"],
        "fomo": _fomo(folder),
    }


def _write(zip_path: Path, target: Path) -> None:
    target.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(zip_path) as archive:
        lines = []
        for name in sorted(archive.namelist()):
            data = archive.read(name)
            lines.append(f"{hashlib.sha256(data).hexdigest()}  {name}")
            if name in TEXT_FILES:
                (target / name).write_bytes(data)
    (target / "pictures.txt").write_text("\n".join(lines) + "\n")


def run(out: Path) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        for name, argv in configurations(folder).items():
            job_out = folder / name
            with contextlib.redirect_stdout(io.StringIO()):
                code = main([*map(str, argv), "--out", str(job_out)])
            if code:
                raise SystemExit(f"{name}: the job exited {code}")
            _write(job_out / "deploy.zip", out / name)
            print(f"{name}: written to {out / name}")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        raise SystemExit("usage: python bench/outputs.py DIR")
    run(Path(sys.argv[1]))
