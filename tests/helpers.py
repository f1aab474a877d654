"""Test helpers: small models of the shapes Edge Impulse trains, export zips, a reference Grad-CAM."""

from __future__ import annotations

import contextlib
import functools
import io
import json
import logging
import os
import subprocess
import sys
import tempfile
import weakref
import zipfile
from pathlib import Path

import cv2
import keras
import numpy as np
import tensorflow as tf
import tf_keras

from gradcam.engine import tflite_graph

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "examples"))
import make_shapes  # noqa: E402

from tests import studio_emulator as emu  # noqa: E402

SHAPES = ROOT / "examples" / "shapes"
SHAPE_CLASSES = ["circle", "square", "triangle"]
OUTPUT_ORDER = ["triangle", "square", "circle"]  # a model output order that is deliberately not alphabetical


def plain_cnn(k=keras, classes: int = 4, seed: int = 1):
    k.utils.set_random_seed(seed)
    return k.Sequential(
        [
            k.Input((32, 32, 3)),
            k.layers.Conv2D(8, 3, activation="relu"),
            k.layers.MaxPooling2D(2),
            k.layers.Conv2D(16, 3, activation="relu", name="last_conv"),
            k.layers.Flatten(),
            k.layers.Dense(classes, activation="softmax"),
        ]
    )


def nested_mobilenet(k=tf_keras, classes: int = 3, seed: int = 2):
    """Edge Impulse's transfer-learning shape: MobileNetV2 0.35 nested in a Sequential."""
    k.utils.set_random_seed(seed)
    base = k.applications.MobileNetV2(input_shape=(96, 96, 3), alpha=0.35, include_top=False, weights=None)
    first = k.layers.InputLayer(input_shape=(96, 96, 3)) if k is tf_keras else k.Input((96, 96, 3))
    return k.Sequential(
        [
            first,
            base,
            k.layers.Dense(16, activation="relu"),
            k.layers.Dropout(0.1),
            k.layers.Flatten(),
            k.layers.Dense(classes, activation="softmax"),
        ]
    )


def flat_input_cnn(k=keras, classes: int = 3, seed: int = 3, shape=(24, 24, 1)):
    """Edge Impulse's default image model: a flat feature vector reshaped to an image."""
    k.utils.set_random_seed(seed)
    return k.Sequential(
        [
            k.Input((int(np.prod(shape)),)),
            k.layers.Reshape(shape),
            k.layers.Conv2D(8, 3, activation="relu"),
            k.layers.MaxPooling2D(2),
            k.layers.Conv2D(8, 3, activation="relu", name="last_conv"),
            k.layers.Flatten(),
            k.layers.Dropout(0.25),
            k.layers.Dense(classes, activation="softmax"),
        ]
    )


def single_output_cnn(activation: str | None, k=keras, seed: int = 4):
    """One output unit: sigmoid = binary classifier, None = visual regression."""
    k.utils.set_random_seed(seed)
    return k.Sequential(
        [
            k.Input((32, 32, 3)),
            k.layers.Conv2D(8, 3, activation="relu"),
            k.layers.Conv2D(8, 3, strides=2, activation="relu", name="last_conv"),
            k.layers.GlobalAveragePooling2D(),
            k.layers.Dense(1, activation=activation),
        ]
    )


def random_images(n: int, shape, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).random((n, *shape)).astype(np.float32)


# --- The reference: one image at a time, in the style of the Keras Grad-CAM example. ---


_CLONES: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def logits_clone(model):
    """A copy of the model whose last layer has no activation (the Keras example's trick); made once
    per model (the tests never change a model's weights after explaining it)."""
    if model not in _CLONES:
        _CLONES[model] = _clone_without_activation(model)
    return _CLONES[model]


def _clone_without_activation(model):
    k = tf_keras if isinstance(model, tf_keras.Model) else keras
    clone = k.models.clone_model(model)
    clone.set_weights(model.get_weights())
    clone.layers[-1].activation = k.activations.linear
    return clone


def _chain(layers, x):
    for layer in layers:
        x = layer(x, training=False)
    return x


def _activations_and_logits(clone, paths: list[list[str]], x):
    """(target layers' outputs, logits) of a Sequential model. Target layers are top-level, or all
    inside one nested model (Edge Impulse's transfer learning), cut with the Keras example's
    grad_model: a Model that outputs the target layers and the nested model's output."""
    k = tf_keras if isinstance(clone, tf_keras.Model) else keras
    if all(len(p) == 1 for p in paths):
        outputs = {}
        for layer in clone.layers:
            x = outputs[layer.name] = layer(x, training=False)
        return [outputs[p[0]] for p in paths], x
    (outer,) = {p[0] for p in paths}
    base = clone.get_layer(outer)
    grad_model = k.Model(base.inputs, [*(base.get_layer(p[1]).output for p in paths), *base.outputs])
    index = clone.layers.index(base)
    *activations, features = grad_model(_chain(clone.layers[:index], x), training=False)
    return activations, _chain(clone.layers[index + 1 :], features)


def _weights(method: str, a: np.ndarray, g: np.ndarray) -> np.ndarray:
    if method == "gradcam":
        return g.mean(axis=(0, 1))
    if method == "sum_abs":
        return np.abs(g).sum(axis=(0, 1))
    if method == "layercam":
        return np.maximum(g, 0)
    if method == "hirescam":  # the gradient times the activation, position by position
        return g
    g2, g3 = g**2, g**3  # gradcam++
    denominator = 2 * g2 + a.sum(axis=(0, 1)) * g3
    alpha = g2 / np.where(denominator != 0, denominator, 1)
    return (alpha * np.maximum(g, 0)).sum(axis=(0, 1))


def fused_reference(activations, grads, method: str) -> np.ndarray:
    """One image's map from its target layers' activations and gradients (deepest first), as
    documented: the deepest with `method`, the others with LayerCAM, each divided by its maximum,
    upsampled bilinearly to the finest and multiplied. Then / max."""
    maps = []
    for depth, (a, g) in enumerate(zip(activations, grads, strict=True)):
        a, g = np.asarray(a, np.float64), np.asarray(g, np.float64)
        if a.ndim == 2:  # a 1-D layer (frames, channels): a map of frames x 1
            a, g = a[:, None], g[:, None]
        weights = _weights(method if depth == 0 else "layercam", a, g)
        maps.append(np.maximum((a * weights).sum(axis=-1), 0))
    if len(maps) > 1:
        size = max(m.shape for m in maps)
        scaled = [m / m.max() if m.max() > 0 else m for m in maps]
        maps = [np.prod([cv2.resize(m, size[::-1], interpolation=cv2.INTER_LINEAR) for m in scaled], axis=0)]
    cam = maps[0]
    return cam / cam.max() if cam.max() > 0 else cam


def reference_cam(model, paths: list[list[str]], image: np.ndarray, target: int | None, method: str, task: str):
    """One image: gradients of the target score w.r.t. the target layers (deepest first), weights,
    ReLU; several layers fused as documented: the deepest with `method`, the others with LayerCAM,
    each divided by its maximum, upsampled bilinearly to the finest and multiplied. Then / max."""
    clone = logits_clone(model)
    x = tf.constant(image[None])
    with tf.GradientTape() as tape:
        tape.watch(x)
        activations, logits = _activations_and_logits(clone, paths, x)
        z = logits[0]
        if task == "regression":
            y = z[0]
        elif task == "binary":
            positive = (z[0] >= 0) if target is None else target == 1
            y = z[0] if positive else -z[0]
        else:
            y = z[int(tf.argmax(z)) if target is None else target]
    grads = tape.gradient(y, activations)
    return fused_reference([a[0].numpy() for a in activations], [g[0].numpy() for g in grads], method)


# --- Datasets in Edge Impulse's export format. ---


def jpeg(image: np.ndarray) -> bytes:
    return cv2.imencode(".jpg", cv2.cvtColor(image, cv2.COLOR_RGB2BGR))[1].tobytes()


def write_export(
    path: Path, samples: list[tuple[str, str | None, bytes]], extra: dict[str, bytes] | None = None
) -> Path:
    """samples: (path inside the zip, label or None for unlabeled, file bytes)."""
    files = []
    with zipfile.ZipFile(path, "w") as archive:
        for name, label, data in samples:
            archive.writestr(name, data)
            kind = {"type": "label", "label": label} if label is not None else {"type": "unlabeled"}
            files.append({"path": name, "category": name.split("/")[0], "label": kind})
        archive.writestr("info.labels", json.dumps({"version": 1, "files": files}))
        for name, data in (extra or {}).items():
            archive.writestr(name, data)
    return path


def boxed_export(path: Path, images: list[np.ndarray], labels: list[str], boxes: list[tuple]) -> Path:
    """A testing export of RGB images, each with its label and its object's box (x0, y0, x1, y1)."""
    files = []
    with zipfile.ZipFile(path, "w") as archive:
        for i, (image, label, (x0, y0, x1, y1)) in enumerate(zip(images, labels, boxes, strict=True)):
            name = f"testing/{i:04d}.jpg"
            archive.writestr(name, jpeg(image))
            box = {"label": label, "x": x0, "y": y0, "width": x1 - x0, "height": y1 - y0}
            files.append(
                {
                    "path": name,
                    "category": "testing",
                    "label": {"type": "label", "label": label},
                    "boundingBoxes": [box],
                }
            )
        archive.writestr("info.labels", json.dumps({"version": 1, "files": files}))
    return path


# --- Checks shared by the end-to-end tests. ---


def lanczos3(values: np.ndarray, size: int) -> np.ndarray:
    """An independent Lanczos-3 resampling of `values` along axis 0 to `size` (the kernel widened by a
    reduction, pixel centres aligned, edges held), in float64: libvips's within a level when shrinking."""
    count = values.shape[0]
    factor = count / size
    support = max(factor, 1.0)
    rows = []
    for i in range(size):
        centre = (i + 0.5) * factor - 0.5
        taps = np.arange(int(np.floor(centre - 3 * support)), int(np.ceil(centre + 3 * support)) + 1)
        x = np.abs(taps - centre) / support
        weights = np.where(x < 3, np.sinc(x) * np.sinc(x / 3), 0.0)
        rows.append(np.tensordot(weights / weights.sum(), values[np.clip(taps, 0, count - 1)].astype(float), axes=1))
    return np.stack(rows)


def independent_resize(image: np.ndarray, width: int, height: int, method: str = "lanczos3") -> np.ndarray:
    """A uint8 image resized by hand: Lanczos-3 (`lanczos3`), or the pixel under each centre (`nearest`)."""
    if method == "nearest":
        rows = np.floor((np.arange(height) + 0.5) * image.shape[0] / height).astype(int)
        columns = np.floor((np.arange(width) + 0.5) * image.shape[1] / width).astype(int)
        return image[rows][:, columns]
    resized = lanczos3(lanczos3(image, height).transpose(1, 0, 2), width).transpose(1, 0, 2)
    return np.clip(np.rint(resized), 0, 255).astype(np.uint8)


def independent_predictions(samples, method: str = "lanczos3", anchor: str = "middle-center"):
    """Edge Impulse's fit-short (at the crop anchor, with the resize method) + 0..1 written out by
    hand, then model.predict."""
    model = tf_keras.models.load_model(SHAPES / "model.h5", compile=False)
    left = {"left": 0, "center": 20, "right": 40}[anchor.split("-")[1]]  # 160x120 -> a 120x120 square
    batch = []
    for _, _, data in samples:
        image = cv2.cvtColor(cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
        square = image[:, left : left + 120]
        batch.append(independent_resize(square, 64, 64, method).astype(np.float32).reshape(-1) / 255)
    return model.predict(np.stack(batch), verbose=0)


def sample_pictures(names: list[str]) -> list[str]:
    """The samples' pictures in deploy.zip: its JPEGs but the class tiles (classes/)."""
    return [n for n in names if n.endswith(".jpg") and not n.startswith("classes/")]


def _overlays(zip_path):
    """results.json, the samples' pictures, and the tiles of the classes the maps explain."""
    with zipfile.ZipFile(zip_path) as archive:
        results = json.loads(archive.read("results.json"))
        names = archive.namelist()
    return results, sample_pictures(names), [n for n in names if n.startswith("classes/explained/")]


def check_deploy_zip(zip_path, export_zip):
    """One overlay per test sample, split as the model's own predictions say, classes in output order."""
    results, names, tiles = _overlays(zip_path)
    with zipfile.ZipFile(io.BytesIO(export_zip)) as export:
        info = json.loads(export.read("info.labels"))
        samples = [
            (f["path"], f["label"]["label"], export.read(f["path"]))
            for f in info["files"]
            if f["category"] == "testing"
        ]
    overlays = [r["overlay"] for r in results["results"]]
    mistakes = [r["true_class_overlay"] for r in results["results"] if r["correct"] is False]
    tflite = [r["tflite_overlay"] for r in results["results"] if r["tflite_overlay"]]
    assert sorted(names) == sorted(overlays + mistakes + tflite), (
        "an overlay per sample, the true class's map per mistake, and the TFLite model's own map where drawn"
    )
    assert len(overlays) == len(samples) == len(results["results"])
    assert results["run"]["classes"] == OUTPUT_ORDER
    explained = {r["predicted"] for r in results["results"]}
    assert sorted(tiles) == sorted(f"classes/explained/{c}.jpg" for c in explained), "a tile per explained class"
    rows = {r["source"]: r for r in results["results"]}
    parameters = results["run"]["parameters"]  # the impulse's resize, as the job took it
    predictions = independent_predictions(samples, parameters["resize_method"], parameters["crop_anchor"])
    for (path, label, _), p in zip(samples, predictions, strict=True):
        predicted = SHAPE_CLASSES[int(np.argmax(p))]
        assert rows[path]["predicted"] == predicted
        assert rows[path]["overlay"].startswith(f"{'correct' if predicted == label else 'incorrect'}/{label}/")


def closing_warnings(log: str) -> list[str]:
    """The warnings a job's log ends with (after its `wrote ...` line), without their `WARNING: `."""
    lines = log.splitlines()
    wrote = max(i for i, line in enumerate(lines) if line.startswith("wrote "))
    assert all(line.startswith("WARNING: ") for line in lines[wrote + 1 :]), lines[wrote + 1 :]
    return [line.removeprefix("WARNING: ") for line in lines[wrote + 1 :]]


def run_main(*args, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """main.py's work in this process, seen as a fresh process would show it: the exit code, stdout
    with the log, and stderr down to the file descriptor (a library's C++ notices count), but without
    a second TensorFlow start-up. env: variables set for the call. What needs a process of its own
    (signals, a quiet import, the start-up's first lines) runs main.py (tests/test_cli.py)."""
    from gradcam.cli import main

    logger, out, err = logging.getLogger("gradcam"), io.StringIO(), io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(logging.Formatter("%(message)s"))
    saved = (logger.level, logger.propagate, {name: os.environ.get(name) for name in env or {}})
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    os.environ.update(env or {})
    with tempfile.TemporaryFile("w+b") as native:
        sys.stderr.flush()
        fd = os.dup(2)
        os.dup2(native.fileno(), 2)
        try:
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
                code = main([str(a) for a in args])
        finally:
            os.dup2(fd, 2)
            os.close(fd)
            logger.removeHandler(handler)
            logger.setLevel(saved[0])
            logger.propagate = saved[1]
            for name, value in saved[2].items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value
        native.seek(0)
        stderr = err.getvalue() + native.read().decode(errors="replace")
    return subprocess.CompletedProcess(["main.py", *map(str, args)], code, out.getvalue(), stderr)


def run_with_key(studio, *args) -> subprocess.CompletedProcess:
    """The job with the API key in EI_API_KEY (not on the command line), against the emulator."""
    return run_main("--host", studio.host, *args, env={"EI_API_KEY": studio.api_key})


def assert_key_kept_secret(studio, output: str, zip_path, exported: bool = True):
    """The key in no output, and (exported: an export was downloaded) never sent to the storage host."""
    downloads = [r for r in studio.requests if r.server == "storage"]
    assert downloads or not exported, "the export was downloaded from the storage host"
    assert all("x-api-key" not in {k.lower() for k in r.headers} for r in downloads)
    assert studio.api_key not in output
    assert studio.api_key.encode() not in zip_path.read_bytes()


# --- Do the maps point at the object? The shapes export knows where each object is. ---


def bundled_samples(n: int) -> list[tuple[str, str, bytes]]:
    """The first n test images of the bundled example: (path, label, bytes)."""
    return [(f["path"], f["label"]["label"], data) for f, data in _bundled_test_files()[:n]]


def _bundled_test_files() -> list[tuple[dict, bytes]]:
    with zipfile.ZipFile(SHAPES / "export.zip") as archive:
        files = [f for f in json.loads(archive.read("info.labels"))["files"] if f["category"] == "testing"]
        return [(f, archive.read(f["path"])) for f in files]


@functools.cache
def _fixture_test_files() -> tuple[tuple[dict, bytes], ...]:
    """The test files of the export the fixtures' generator makes (random-colour backgrounds,
    seeded): the bundled example as it was before its backgrounds turned grey."""
    files = make_shapes.export_files({"training": 200, "testing": 40}, seed=7)
    return tuple((entry, jpeg) for entry, jpeg in files if entry["category"] == "testing")


def shapes_test_set(luminance: bool = False, grey: bool = False):
    """Test images (RGB), labels and object boxes (x0, y0, x1, y1): the 120 of the export the test
    fixtures' generator makes (random-colour backgrounds), or with grey, the bundled example's
    own (grey backgrounds, for its model).

    luminance: 120 images from the example's generator whose objects differ from their
    surroundings in brightness (seeded), for grayscale models: the export's objects differ per
    colour channel, and some vanish in gray."""
    if luminance:
        rng = np.random.default_rng(2024)
        drawn = [
            make_shapes.make_image(SHAPE_CLASSES[k % 3], rng, rng.random() < 0.125, luminance=True) for k in range(120)
        ]
        boxes = [(b["x"], b["y"], b["x"] + b["width"], b["y"] + b["height"]) for _, b in drawn]
        return [image for image, _ in drawn], [SHAPE_CLASSES[k % 3] for k in range(120)], boxes
    files = _bundled_test_files() if grey else _fixture_test_files()
    images = [
        cv2.cvtColor(cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
        for _, jpeg in files
    ]
    files = [entry for entry, _ in files]
    labels = [f["label"]["label"] for f in files]
    boxes = [
        (b["x"], b["y"], b["x"] + b["width"], b["y"] + b["height"]) for b in (f["boundingBoxes"][0] for f in files)
    ]
    return images, labels, boxes


def pointing(explanation, box) -> bool:
    """The pointing game: is the peak inside the object's box? An all-zero map misses."""
    x0, y0, x1, y1 = box
    peak = explanation.peak
    return peak is not None and x0 <= peak[0] < x1 and y0 <= peak[1] < y1


def energy(explanation, box) -> float:
    """The share of the heat that lies inside the object's box (0 for an all-zero map)."""
    x0, y0, x1, y1 = box
    total = float(explanation.heatmap.sum())
    return float(explanation.heatmap[y0:y1, x0:x1].sum()) / total if total > 0 else 0.0


def confident(model, factor: float):
    """The same model with its logits multiplied by `factor`: the same answers and maps, given with
    more confidence, as real transfer-learning models give them."""
    clone = tf_keras.models.clone_model(model)
    clone.set_weights(model.get_weights())
    kernel, bias = clone.layers[-1].get_weights()
    clone.layers[-1].set_weights([kernel * factor, bias * factor])
    return clone


def randomised(model, images: np.ndarray, seed: int = 0):
    """Adebayo et al.'s model randomisation: the same architecture with freshly initialised weights.
    Batch-norm statistics are then measured on `images` (model inputs), as training would: with the
    initial statistics a deep network's activations vanish, and blank maps would pass the check
    without testing anything."""
    k = tf_keras if isinstance(model, tf_keras.Model) else keras
    k.utils.set_random_seed(seed)
    random = k.models.clone_model(model)
    flat = images.reshape(len(images), -1) if len(model.inputs[0].shape) == 2 else images
    for _ in range(3):
        for start in range(0, len(flat), 32):
            random(flat[start : start + 32], training=True)
    return random


def tflite_file(model, calibration: np.ndarray | None = None) -> bytes:
    """The model converted as Edge Impulse converts it (batch 1): float32, or full-integer int8
    calibrated on `calibration` (model inputs). The converter is handed the model's variables, not
    the Keras model: given the model, it first saves every layer's traces (about 17 s for
    MobileNetV2, against 3 s), for the same bytes."""
    shape = tuple(model.inputs[0].shape[1:])
    run = tf.function(lambda x: model(x, training=False))
    concrete = run.get_concrete_function(tf.TensorSpec((1, *shape), tf.float32))
    holder = tf.Module()
    holder.held = list(model.variables)
    converter = tf.lite.TFLiteConverter.from_concrete_functions([concrete], holder)
    if calibration is not None:
        flat = calibration.reshape(len(calibration), *shape)
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = lambda: ([x[None]] for x in flat)
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        converter.inference_input_type = converter.inference_output_type = tf.int8
    return converter.convert()


def converted(model, calibration: np.ndarray | None = None) -> tflite_graph.Graph:
    """tflite_file's model, parsed."""
    return tflite_graph.parse(tflite_file(model, calibration), Path("converted.tflite"))


# --- Studio's deployment layout: /home/input/deployment-metadata.json, /home/output ---

# What Studio appends after --metadata: the block's parameters (parameters.json), at their defaults.
STUDIO_ARGS = ["--alpha", "0.4", "--pooling-gradients", "mean", "--heatmap-normalization", "percentile"]


def studio_home(
    root,
    studio,
    model_zip: bytes | None,
    api_key: str | None,
    mounted_at: str | None = None,
    classes=OUTPUT_ORDER,
    tflite_models: list | None = None,
    learn_type: str = "keras-transfer-image",
    size: int = 64,
    resize_mode: str = "fit-short",
    impulse: dict | None = None,
    resize: dict | None = None,
):
    """<root>/home/input with deployment-metadata.json (and trained.h5.zip), an empty <root>/home/output.
    The metadata names the folders as the block sees them: under `mounted_at` in a container.
    impulse: the metadata's impulse (default: an image impulse of this size and resize mode, and the
    input block's `resize` fields, e.g. resizeMethod and cropAnchor)."""
    home = root / "home"
    (home / "input").mkdir(parents=True)
    (home / "output").mkdir()
    if model_zip is not None:
        (home / "input" / "trained.h5.zip").write_bytes(model_zip)
    project = {"name": "shapes", "id": emu.PROJECT_ID, "owner": "someone", "studioHost": studio.host}
    if api_key:
        project["apiKey"] = api_key
    metadata = {
        "version": 1,
        "deployCounter": 3,
        "classes": list(classes),
        "samplesPerInference": 12288,
        "axesCount": 1,
        "frequency": 0,
        "tfliteModels": tflite_models or [],
        "project": project,
        "impulse": impulse
        or {
            "inputBlocks": [
                {"type": "image", "imageWidth": size, "imageHeight": size, "resizeMode": resize_mode, **(resize or {})}
            ],
            "dspBlocks": [
                {
                    "type": "image",
                    "metadata": {
                        "dspConfig": {"options": {"channels": "RGB"}},
                        "outputConfig": {
                            "type": "image",
                            "shape": {"width": size, "height": size, "channels": 3, "frames": 1},
                        },
                    },
                }
            ],
            "learnBlocks": [
                {"id": 7, "type": "keras-visual-anomaly", "dsp": [emu.DSP_ID]},
                {"id": emu.LEARN_ID, "type": learn_type, "dsp": [emu.DSP_ID]},
            ],
        },
        "sensor": "camera",
        "folders": {"input": f"{mounted_at or home}/input", "output": f"{mounted_at or home}/output"},
    }
    (home / "input" / "deployment-metadata.json").write_text(json.dumps(metadata))
    return home


def open_report(browser, zip_path: Path, folder: Path):
    """deploy.zip unzipped into folder, its index.html opened: (page, console problems)."""
    with zipfile.ZipFile(zip_path) as archive:
        archive.extractall(folder)
    page = browser.new_page()
    problems = []
    page.on(
        "console", lambda m: problems.append(f"console {m.type}: {m.text}") if m.type in ("error", "warning") else None
    )
    page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
    page.on("dialog", lambda d: (problems.append(f"dialog: {d.message}"), d.dismiss()))
    page.goto((folder / "index.html").as_uri())
    page.wait_for_selector("body[data-ready]", state="attached")  # the index chunks loaded, the first page drawn
    return page, problems
