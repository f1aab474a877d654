"""make bench: how fast is the block, and where does the time go? Everything measured in one run.

Generates its own inputs (no downloads): an Edge Impulse-style export of N 320x240 JPEGs and two
models: the trained MobileNetV2 alpha 0.35 96x96 test fixture with Edge Impulse's head, nested in
a Sequential as Edge Impulse nests it (Keras 2 .h5), and Edge Impulse's default small conv model
with a flat input (random weights). The CAM pass is measured with the default layers
(on MobileNetV2: three layers fused, 24x24) and with the last conv alone. FOMO object detection
is measured with the trained test fixture on scenes of 1 to 3 objects. The job is measured with
its defaults (faithfulness on, the int8 TFLite model beside) and with --faithfulness 0, on the
export labelled as a trained model gets it (10% wrong: each mistake's true class is explained
too). Then the scale row (bench/scale.py) and the audio row (bench/audio.py: keyword windows as with an
API key, against a bare load + forward loop) and the motion row (bench/motion.py: models without
convolutions, windows per second) and the evidence rows (bench/evidence.py: the checks against the model's
own evidence and auto's calibration, in whole jobs). Prints a table, ratios first, and writes it to
bench/results/latest.md.

    .venv/bin/python bench/run.py [--n 500] [--big 5000]
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
import tf_keras  # noqa: E402
from audio import audio_lines  # noqa: E402
from common import CLASSES, make_export, peak_rss  # noqa: E402
from evidence import evidence_lines  # noqa: E402
from fomo import fomo_line  # noqa: E402
from loops import as_trained, bare_loop, decode, end_to_end, rate, stage_times  # noqa: E402
from motion import motion_lines  # noqa: E402
from scale import scale_lines  # noqa: E402

from gradcam.edge.dataset import open_dataset  # noqa: E402
from gradcam.engine.cam import make_cam  # noqa: E402
from gradcam.engine.formats import adapter_for, load_model  # noqa: E402
from gradcam.engine.model import ModelAdapter  # noqa: E402
from gradcam.engine.tflite import TfliteModel  # noqa: E402
from gradcam.explainer import Explainer  # noqa: E402
from tests.fixtures import make_models  # noqa: E402

# -- inputs -------------------------------------------------------------------------------------


def trained_mobilenet(path: Path) -> Path:
    """The trained MobileNetV2 0.35 96x96 test fixture (Edge Impulse's head): confident, as real
    transfer-learning models are."""
    shutil.copy(make_models.OUT / "mobilenetv2_96.h5", path)
    return path


def small_conv_model(path: Path) -> Path:
    """Edge Impulse's default image model: flat input, two conv blocks, dense softmax."""
    tf_keras.utils.set_random_seed(0)
    L = tf_keras.layers
    model = tf_keras.Sequential(
        [
            L.InputLayer(input_shape=(96 * 96 * 3,)),
            L.Reshape((96, 96, 3)),
            L.Conv2D(32, 3, padding="same", activation="relu"),
            L.MaxPooling2D(2, padding="same"),
            L.Conv2D(16, 3, padding="same", activation="relu"),
            L.MaxPooling2D(2, padding="same"),
            L.Flatten(),
            L.Dropout(0.25),
            L.Dense(len(CLASSES), activation="softmax"),
        ]
    )
    model.save(path)
    return path


# -- measurements -------------------------------------------------------------------------------


def core(model_path: Path, batch: int, seconds: float) -> tuple[float, float, float]:
    """(CAM images/s with the default layers, with the last conv alone, forward-only images/s) on
    the same model and batch."""
    model = load_model(model_path)
    x = np.random.default_rng(0).random((batch, *ModelAdapter(model).image_shape)).astype(np.float32)
    forward = tf.function(lambda t: model(t, training=False))
    forward_rate = rate(
        lambda: forward(tf.constant(x.reshape(batch, *model.inputs[0].shape[1:]))).numpy(), batch, seconds
    )
    cams = [make_cam(ModelAdapter(model, layer)) for layer in ("auto", "last-conv")]
    return (*(rate(lambda cam=cam: cam(x), batch, seconds) for cam in cams), forward_rate)


def tflite_rate(model_path: Path, batch: int, seconds: float) -> float:
    """images/s of the model as int8 TFLite (calibrated on random inputs, written beside the model
    for the job), batched as the job runs it."""
    model = load_model(model_path)
    shape = ModelAdapter(model).image_shape
    rng = np.random.default_rng(0)
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = lambda: (
        [rng.random((1, *model.inputs[0].shape[1:]), np.float32)] for _ in range(8)
    )
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.inference_input_type = converter.inference_output_type = tf.int8
    path = model_path.with_suffix(".tflite")
    path.write_bytes(converter.convert())
    device = TfliteModel(path, int(np.prod(shape)), ModelAdapter(model).num_outputs)
    x = rng.random((batch, *shape), np.float32)
    return rate(lambda: device.predict(x), batch, seconds)


def tflite_maps(model_path: Path, export: Path, out: Path, batch: int, seconds: float) -> tuple[float, float]:
    """(the int8 twin's CAM pass against the Keras CAM pass, in images/s; the default job, with both
    models' maps, against the job with the Keras maps alone), each measured in this one run."""
    int8 = model_path.with_suffix(".tflite")
    x = np.random.default_rng(0).random((batch, *ModelAdapter(load_model(model_path)).image_shape), np.float32)
    passes = [make_cam(adapter_for(load_model(path))) for path in (model_path, int8)]
    keras_cam, twin_cam = (rate(lambda cam=cam: cam(x), batch, seconds) for cam in passes)
    both, _ = end_to_end(model_path, export, out / "both", batch, tflite=int8)
    alone, _ = end_to_end(model_path, export, out / "keras", batch, tflite=int8, explain="keras")
    return keras_cam / twin_cam, alone / both


def upstream_style(model_path: Path, export: Path, count: int) -> float:
    """The original block's way: a gradient model built and its function traced again for every image."""
    model = load_model(model_path)
    explainer = Explainer(model, CLASSES, resize_mode="fit-short")
    with open_dataset(export) as dataset:
        images = [decode(dataset.read(s), explainer) for s in dataset.samples[:count]]
    start = time.perf_counter()
    for x in images:
        cam = make_cam(ModelAdapter(model))  # rebuilds the tapped model and a new tf.function
        cam(x[None])
    return count / (time.perf_counter() - start)


# -- the table ----------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=500, help="images for the end-to-end runs")
    parser.add_argument("--big", type=int, default=5000, help="images for the memory run")
    parser.add_argument("--photos", type=int, default=64, help="4000x3000 JPEGs for the memory run")
    parser.add_argument("--scale", type=int, nargs="+", default=[5000, 50000], help="samples for the scale row")
    parser.add_argument("--windows", type=int, default=1000, help="keyword windows for the audio row")
    parser.add_argument("--motion-windows", type=int, default=2000, help="windows for the motion row")
    parser.add_argument("--evidence-images", type=int, default=1000, help="images for the evidence rows")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=5.0, help="minimum seconds per core measurement")
    parser.add_argument("--upstream", type=int, default=10, help="images for the per-image baseline")
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="gradcam-bench-"))
    models = {
        "MobileNetV2 0.35 96x96 (nested, trained)": trained_mobilenet(tmp / "mobilenet.h5"),
        "EI default conv, flat input": small_conv_model(tmp / "conv.h5"),
    }
    export = make_export(tmp / "export.zip", args.n)
    big = make_export(tmp / "big.zip", args.big, seed=1)
    photos = make_export(tmp / "photos.zip", args.photos, seed=2, size=(4000, 3000))

    rows, details, mistakes = [], [], []
    for name, path in models.items():
        cam_rate, last_conv_rate, forward_rate = core(path, args.batch, args.seconds)
        int8_rate = tflite_rate(path, args.batch, args.seconds)
        labelled = as_trained(export, path, tmp / f"{path.stem}-labelled.zip")
        int8 = path.with_suffix(".tflite")
        job_rate, summary = end_to_end(path, labelled, tmp / "out", args.batch, tflite=int8)
        plain_rate, plain = end_to_end(path, labelled, tmp / "out-plain", args.batch, faithfulness=False, tflite=int8)
        floor = bare_loop(path, export, args.batch)
        upstream = upstream_style(path, export, args.upstream)
        resolution = "x".join(map(str, Explainer(load_model(path), CLASSES).resolution))
        rows.append(
            (
                name,
                resolution,
                cam_rate / forward_rate,
                last_conv_rate / forward_rate,
                int8_rate / forward_rate,
                job_rate / floor,
                plain_rate / floor,
                job_rate / upstream,
            )
        )
        details.append(
            f"| {name} | {cam_rate:.0f} | {last_conv_rate:.0f} | {forward_rate:.0f} | {int8_rate:.0f} "
            f"| {job_rate:.0f} | {plain_rate:.0f} | {floor:.0f} "
            f"| {upstream:.2f} | {stage_times(summary)} | {stage_times(plain)} |"
        )
        mistakes.append(summary.info.tally.incorrect)
    fomo = fomo_line(args.n, args.batch, tmp)
    mobilenet = models["MobileNetV2 0.35 96x96 (nested, trained)"]
    labelled = tmp / f"{mobilenet.stem}-labelled.zip"
    twin_pass, both_maps = tflite_maps(mobilenet, labelled, tmp / "tflite-maps", args.batch, args.seconds)
    small_rss, _ = peak_rss(mobilenet, export, tmp / "rss-small")
    big_rss, _ = peak_rss(mobilenet, big, tmp / "rss-big")
    photos_rss, photos_seconds = peak_rss(mobilenet, photos, tmp / "rss-photos")
    full_rss, full_seconds = peak_rss(mobilenet, photos, tmp / "rss-photos-full", "--max-overlay-size", "0")
    scale = scale_lines(mobilenet, tmp, tuple(args.scale))
    sounds = audio_lines(args.windows, args.batch)
    motions = motion_lines(args.motion_windows, args.batch)
    checks = evidence_lines(args.evidence_images, tmp)

    lines = [
        f"Measured {time.strftime('%Y-%m-%d')} on {platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}, TensorFlow {tf.__version__}; batch {args.batch}, "
        f"{args.n} JPEGs of 320x240.",
        "",
        "| model | default map | CAM default / forward-only | CAM last conv / forward-only "
        "| TFLite int8 / forward-only | job (default) / decode+preprocess+forward (target >= 0.5) "
        "| job with --faithfulness 0 / decode+preprocess+forward | job / per-image upstream style |",
        "|---|---|---|---|---|---|---|---|",
        *[
            f"| {n} | {r} | {a:.2f} | {b:.2f} | {t:.2f} | {c:.2f} | {f:.2f} | {d:.0f}x |"
            for n, r, a, b, t, c, f, d in rows
        ],
        "",
        f"The job runs on the export labelled as a trained model would get it: {' and '.join(map(str, mistakes))} "
        f"of the {args.n} images wrong; each mistake's true class is explained too, in the same CAM pass.",
        "",
        f"Peak memory of the whole job (MobileNetV2): {small_rss:.0f} MiB for {args.n} images, "
        f"{big_rss:.0f} MiB for {args.big} images: ratio {big_rss / small_rss:.2f} (target <= 1.2).",
        "",
        f"Peak memory for {args.photos} photos of 4000x3000 (MobileNetV2): {photos_rss:.0f} MiB "
        f"({photos_rss * 2**20 / 1e9:.2f} GB, target <= 1.5 GB), {photos_rss / small_rss:.2f}x the 320x240 run; "
        f"{full_rss:.0f} MiB with --max-overlay-size 0 (full-size decode and overlays). Wall time with start-up: "
        f"{photos_seconds:.0f}s, {full_seconds / photos_seconds:.1f}x that with --max-overlay-size 0.",
        "",
        f"The int8 model's own maps (MobileNetV2; its twin, gradcam/engine/twin.py): the twin's CAM pass costs "
        f"{twin_pass:.2f}x the Keras CAM pass per image; the default job, with both models' maps, costs "
        f"{both_maps:.2f}x the job with the Keras maps alone (--explain keras; goal <= 1.6).",
        "",
        fomo,
        "",
        "| model | CAM default img/s | CAM last conv img/s | forward img/s | TFLite int8 img/s | job img/s "
        "| job --faithfulness 0 img/s | decode+preprocess+forward img/s | upstream img/s "
        "| job stage times (summed over threads) | the same with --faithfulness 0 |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
        *details,
        "",
        *scale,
        "",
        *sounds,
        "",
        *motions,
        "",
        *checks,
    ]
    table = "\n".join(lines)
    print(table)
    results = ROOT / "bench" / "results"
    results.mkdir(exist_ok=True)
    (results / "latest.md").write_text(table + "\n")


if __name__ == "__main__":
    main()
