"""The block against pytorch-grad-cam doing the same work, side by side in one run.

One small CNN (three 3x3 conv stages at 96x96, average pool, dense softmax) is built in tf_keras
and its weights copied into the same network in PyTorch (bench/peer_gradcam.py), so both explain
one function: the outputs and maps are compared before anything is timed. On an export of N
96x96 JPEGs, labelled as a trained model would get them (10% wrong), each side runs as a whole
process, start-up included, best of `--repeats`:
- maps and pictures: the job with --faithfulness 0 against the peer's batched GradCAM,
  show_cam_on_image and cv2.imwrite (the job also writes results, report and deploy.zip, and
  explains each mistake's true class);
- with faithfulness, on the first `--subset` images: the default job against the peer with its own
  per-image metric, ROADCombined.

The peer runs in .venv-peer (bench/peer-requirements.txt: torch CPU, grad-cam), made on the first
run from the package registry; it is not a dependency of the project. Prints a table and writes it
to bench/results/peers.md.

    .venv/bin/python bench/peers.py [--n 2000] [--subset 200]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import cv2  # noqa: E402
import numpy as np  # noqa: E402
import tf_keras  # noqa: E402
from common import CLASSES, make_export  # noqa: E402
from loops import as_trained  # noqa: E402

from gradcam.explainer import Explainer  # noqa: E402

PEER = ROOT / ".venv-peer"
REQUIREMENTS = ROOT / "bench" / "peer-requirements.txt"
SIDE = 96


def peer_python() -> Path:
    """The peer's interpreter, its virtual environment made first if it is not there yet."""
    python = PEER / "bin" / "python"
    stamp = PEER / ".installed"
    if not stamp.exists() or stamp.read_text() != REQUIREMENTS.read_text():
        print("setting up the peer's virtual environment (.venv-peer: torch, grad-cam), once", flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(PEER)], check=True)
        subprocess.run([python, "-m", "pip", "install", "--quiet", "-r", REQUIREMENTS], check=True)
        stamp.write_text(REQUIREMENTS.read_text())
    return python


def small_cnn(folder: Path) -> tuple[Path, Path]:
    """The Keras model (.h5, for the job) and its weights (.npz, for the peer)."""
    tf_keras.utils.set_random_seed(0)
    L = tf_keras.layers
    model = tf_keras.Sequential(
        [
            L.InputLayer(input_shape=(SIDE, SIDE, 3)),
            L.Conv2D(16, 3, padding="same", activation="relu", name="conv0"),
            L.MaxPooling2D(2),
            L.Conv2D(32, 3, padding="same", activation="relu", name="conv1"),
            L.MaxPooling2D(2),
            L.Conv2D(64, 3, padding="same", activation="relu", name="conv2"),
            L.GlobalAveragePooling2D(),
            L.Dense(len(CLASSES), activation="softmax", name="dense"),
        ]
    )
    model.save(folder / "model.h5")
    weights = {}
    for layer in model.get_layer("conv0"), model.get_layer("conv1"), model.get_layer("conv2"), model.get_layer("dense"):
        weights[f"{layer.name}_kernel"], weights[f"{layer.name}_bias"] = layer.get_weights()
    np.savez(folder / "weights.npz", **weights)
    return folder / "model.h5", folder / "weights.npz"


def timed(command: list) -> float:
    """Wall seconds of a whole process, start-up included."""
    start = time.perf_counter()
    done = subprocess.run([str(c) for c in command], cwd=ROOT, capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(f"{' '.join(map(str, command))}: exit {done.returncode}\n{done.stderr[-2000:]}")
    return time.perf_counter() - start


def same_function(model: Path, export: Path, kept: Path) -> tuple[float, float]:
    """(the largest difference between the two models' softmax outputs, the mean correlation of
    their Grad-CAM maps of the last conv) on the images the peer kept."""
    peer = np.load(kept)
    count = len(peer["maps"])
    options = {"layer": "last-conv", "method": "gradcam", "normalization": "simple", "faithfulness": False}
    explainer = Explainer(tf_keras.models.load_model(model), CLASSES, **options)
    with zipfile.ZipFile(export) as archive:
        files = [f["path"] for f in json.loads(archive.read("info.labels"))["files"]][:count]
        images = [cv2.imdecode(np.frombuffer(archive.read(f), np.uint8), cv2.IMREAD_COLOR)[..., ::-1] for f in files]
    results = explainer.explain([np.ascontiguousarray(image) for image in images])
    outputs = np.abs(np.stack([r.scores for r in results]) - peer["outputs"]).max()
    correlations = [np.corrcoef(r.heatmap.ravel(), m.ravel())[0, 1] for r, m in zip(results, peer["maps"], strict=True)]
    return float(outputs), float(np.nanmean(correlations))


def subset(export: Path, path: Path, count: int) -> Path:
    """The export's first `count` images, with their labels."""
    with zipfile.ZipFile(export) as source, zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as archive:
        info = json.loads(source.read("info.labels"))
        info["files"] = info["files"][:count]
        for f in info["files"]:
            archive.writestr(f["path"], source.read(f["path"]))
        archive.writestr("info.labels", json.dumps(info))
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=2000, help="images for maps and pictures")
    parser.add_argument("--subset", type=int, default=200, help="images for the faithfulness row")
    parser.add_argument("--repeats", type=int, default=3, help="runs of each side; the fastest counts")
    args = parser.parse_args()

    python = peer_python()
    tmp = Path(tempfile.mkdtemp(prefix="gradcam-peers-"))
    model, weights = small_cnn(tmp)
    export = as_trained(make_export(tmp / "raw.zip", args.n, size=(SIDE, SIDE)), model, tmp / "export.zip")
    small = subset(export, tmp / "subset.zip", args.subset)

    def both(out: str, flags: tuple[str, ...]) -> list:
        return ["--classes", ",".join(CLASSES), "--out", tmp / out, *flags]

    def job(dataset: Path, out: str, *flags: str) -> list:
        return [sys.executable, "main.py", "--model", model, "--dataset", dataset, *both(out, flags)]

    def peer(dataset: Path, out: str, *flags: str) -> list:
        return [python, "bench/peer_gradcam.py", "--weights", weights, "--export", dataset, *both(out, flags)]

    subprocess.run([str(c) for c in peer(small, "check", "--keep", "32")], cwd=ROOT, check=True)
    outputs, correlation = same_function(model, small, tmp / "check" / "kept.npz")
    runs = {
        "maps": (job(export, "job", "--faithfulness", "0"), peer(export, "peer")),
        "faithfulness": (job(small, "job-trust"), peer(small, "peer-road", "--road")),
    }
    seconds = {}
    for name, (ours, theirs) in runs.items():
        times = [(timed(ours), timed(theirs)) for _ in range(args.repeats)]
        seconds[name] = tuple(min(column) for column in zip(*times, strict=True))

    (job_maps, peer_maps), (job_trust, peer_trust) = seconds["maps"], seconds["faithfulness"]
    lines = [
        f"Measured {time.strftime('%Y-%m-%d')} on {platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}; peer: {peer_version(python)}. Whole processes, start-up included, "
        f"best of {args.repeats}. The same small CNN (weights copied): softmax outputs within {outputs:.1e}, "
        f"maps of the last conv correlated {correlation:.3f} on average.",
        "",
        "| work | images | gradcam-block | pytorch-grad-cam | speed against the peer |",
        "|---|---|---|---|---|",
        f"| maps and pictures (`--faithfulness 0`; peer: GradCAM, show_cam_on_image, imwrite) | {args.n} "
        f"| {job_maps:.1f} s | {peer_maps:.1f} s | **{peer_maps / job_maps:.1f}x** (target >= 1.5) |",
        f"| with faithfulness (default job; peer: + ROADCombined) | {args.subset} "
        f"| {job_trust:.1f} s | {peer_trust:.1f} s | **{peer_trust / job_trust:.1f}x** (target >= 4) |",
    ]
    table = "\n".join(lines)
    print(table)
    results = ROOT / "bench" / "results"
    results.mkdir(exist_ok=True)
    (results / "peers.md").write_text(table + "\n")


def peer_version(python: Path) -> str:
    code = "import importlib.metadata as m; print(f\"grad-cam {m.version('grad-cam')}, torch {m.version('torch')}\")"
    return subprocess.run([python, "-c", code], check=True, capture_output=True, text=True).stdout.strip()


if __name__ == "__main__":
    main()
