"""make bench's motion row: windows per second for models without convolutions, the job against its own
attribution pass alone.

The job runs offline on windows of features (--features, --labels, --dsp-config), every window
explained (Integrated Gradients, faithfulness on), its lanes and bar chart drawn and encoded,
deploy.zip written. The pass alone runs the same explainer's attributions and faithfulness on the same
windows, batched; and with gradient x input (one step on the path) for what the 16 steps cost. Both
after the model is loaded and traced, in one run, on the motion fixtures (spectral analysis, 63
features; raw, 375), and on the real IMU project's model (1,808 features) where ../shared/real holds it.

    .venv/bin/python bench/motion.py [--windows 2000]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
import zipfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from gradcam.edge.features import open_features  # noqa: E402
from gradcam.edge.sensors import read_config  # noqa: E402
from gradcam.engine.formats import load_model  # noqa: E402
from gradcam.engine.tasks import PREDICTED  # noqa: E402
from gradcam.explainer import Explainer  # noqa: E402
from gradcam.job.run import Job  # noqa: E402
from gradcam.settings import Settings  # noqa: E402
from tests import motion  # noqa: E402
from tests.fixtures.make_motion_family import FOLDER  # noqa: E402

REAL = ROOT.parent / "shared" / "real"


def _models(windows: int, folder: Path) -> list[tuple[str, Path, np.ndarray, dict]]:
    """(name, model, features, DSP config) for each measured model."""
    data = motion.windows(windows, 11)
    spectral = dict(motion.SPECTRAL_OPTIONS, type="spectral-analysis", axes=motion.AXES, frequency=motion.FREQUENCY)
    spectral |= {"window_size_ms": 2000, "implementation_version": 4}
    found = [
        (
            "spectral analysis, 63",
            FOLDER / "wide-spectral-analysis-distractor.h5",
            motion.features(data, "spectral-analysis"),
            spectral,
        ),
        (
            "raw, 375",
            FOLDER / "wide-raw-distractor.h5",
            motion.features(data, "raw"),
            {"type": "raw", "axes": motion.AXES, "frequency": motion.FREQUENCY},
        ),
    ]
    if REAL.is_dir():
        with zipfile.ZipFile(REAL / "imu-trained.h5.zip") as archive:
            archive.extract("model.h5", folder)
        values, _, _ = motion.cbor_samples(REAL / "imu-testing-cbor.zip")
        rows = motion.syntiant(values[np.arange(windows) % len(values)], 9)
        meta = json.loads((REAL / "imu-metadata.json").read_text())
        found.append(("real IMU (Syntiant), 1,808", folder / "model.h5", rows, meta))
    return found


def _explainer(model: Path, x: np.ndarray, method: str = "auto") -> Explainer:
    explainer = Explainer(load_model(model), method=method, baseline=np.median(x, axis=0))
    explainer.maps(x[:32].reshape(32, -1, 1, 1), np.full(32, PREDICTED, np.int32), np.zeros(32, np.int32))
    return explainer


def pass_rate(model: Path, x: np.ndarray, batch: int, method: str = "auto") -> float:
    """Windows/s: attributions and faithfulness, true classes given, batched (traced first)."""
    explainer = _explainer(model, x, method)
    inputs = x.reshape(len(x), -1, 1, 1)
    start = time.perf_counter()
    for i in range(0, len(inputs), batch):
        chunk = inputs[i : i + batch]
        explainer.maps(chunk, np.full(len(chunk), PREDICTED, np.int32), np.zeros(len(chunk), np.int32))
    return len(inputs) / (time.perf_counter() - start)


def job_rate(model: Path, x: np.ndarray, config: dict, work: Path, batch: int, **options) -> float:
    """Windows/s: the job on the features files to deploy.zip, the model loaded and traced first."""
    explainer = _explainer(model, x)
    predicted = explainer.adapter.predict(x.reshape(len(x), -1, 1, 1)).argmax(axis=1)
    labels = np.stack([predicted + 1, np.arange(len(x)), np.zeros(len(x)), np.full(len(x), 2000)], 1)
    np.save(work / "X.npy", x)
    np.save(work / "y.npy", labels.astype(np.int32))  # as the model answers: every window right
    (work / "dsp.json").write_text(json.dumps(config))
    classes = explainer.classes
    settings = Settings(out=work / "out", batch_size=batch, features=[work / "X.npy"], **options).with_defaults()
    start = time.perf_counter()
    sensor = lambda count: read_config(work / "dsp.json", None, None, count)  # noqa: E731
    with open_features([work / "X.npy"], work / "y.npy", classes, sensor=sensor) as windows:
        Job(explainer, settings).run(windows)
    return len(x) / (time.perf_counter() - start)


def motion_lines(windows: int = 2000, batch: int = 32) -> list[str]:
    """The motion row of make bench, as Markdown lines."""
    lines = [
        f"Motion and sensors (models without convolutions; {windows} windows, offline features, Integrated "
        "Gradients with 16 steps, faithfulness on):",
        "",
        "| model, features | job windows/s (pictures) | --overlays mistakes (no pictures here) | attribution + "
        "faithfulness pass alone | job / that | gradient x input pass alone |",
        "|---|---|---|---|---|---|",
    ]
    with tempfile.TemporaryDirectory(prefix="gradcam-motion-") as tmp:
        for i, (name, model, x, config) in enumerate(_models(windows, Path(tmp))):
            rates = []
            for j, options in enumerate([{}, {"overlays": "mistakes"}]):
                work = Path(tmp) / f"{i}-{j}"
                work.mkdir()
                rates.append(job_rate(model, x, config, work, batch, **options))
            alone, first_order = pass_rate(model, x, batch), pass_rate(model, x, batch, "gradient-x-input")
            cells = f"{rates[0]:.0f} | {rates[1]:.0f} | {alone:.0f} | {rates[0] / alone:.2f} | {first_order:.0f}"
            lines.append(f"| {name} | {cells} |")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--windows", type=int, default=2000)
    parser.add_argument("--batch", type=int, default=32)
    args = parser.parse_args()
    print("\n".join(motion_lines(args.windows, args.batch)))


if __name__ == "__main__":
    main()
