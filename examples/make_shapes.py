"""Make the bundled example: a synthetic "shapes" export and a model trained on it (seeded, deterministic).

    .venv/bin/python examples/make_shapes.py        # writes examples/shapes/export.zip and model.h5

Images are 160x120 JPEGs of one coloured circle, square or triangle on a grey textured background
(grey, so that nothing in the image looks like the heatmap's colours) with a few distractor marks;
about one in eight is deliberately hard (small, low contrast). The test fixtures
(tests/fixtures/make_models.py, make_fomo.py) use the same generator with random-colour
backgrounds (`grey=False`). The object's box
is stored in info.labels (`boundingBoxes`), so tests can check where the heatmaps point.

The model has the shape of Edge Impulse's default image model: a flat input reshaped to
64x64x3, convolutions (with batch norm) at 64x64, 32x32 and 16x16, then a softmax head. It is
saved as a Keras 2 .h5 with tf_keras, as Studio saves them, and trained on images preprocessed
exactly as the block preprocesses them (fit-short, 0..1): the export's training images plus
more from the same generator that are not shipped.
"""

from __future__ import annotations

import json
import os
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from gradcam.engine.preprocess import ImageSpec, preprocess

CLASSES = ("circle", "square", "triangle")
WIDTH, HEIGHT = 160, 120
SPEC = ImageSpec(64, 64, resize_mode="fit-short")
OUT = Path(__file__).parent / "shapes"


def background(rng: np.random.Generator, width: int = WIDTH, height: int = HEIGHT, grey: bool = False) -> np.ndarray:
    """A smooth texture with grain and sometimes a line. grey: in neutral tones (the bundled
    example), which do not compete with the heatmap's colours; else in random colours (the
    generator the test fixtures were trained on)."""
    if grey:
        coarse = rng.integers(40, 216, (6, 8)).astype(np.float32)
        tone = cv2.resize(coarse, (width, height), interpolation=cv2.INTER_CUBIC)
        image = np.repeat((tone + rng.normal(0, 8, (height, width)))[..., None], 3, axis=2)
    else:
        coarse = rng.integers(0, 256, (6, 8, 3)).astype(np.float32)
        image = cv2.resize(coarse, (width, height), interpolation=cv2.INTER_CUBIC)
        image += rng.normal(0, 8, (height, width, 3))
    for _ in range(rng.integers(0, 2)):
        p1 = tuple(int(v) for v in rng.integers(0, [width, height]))
        p2 = tuple(int(v) for v in rng.integers(0, [width, height]))
        color = [int(rng.integers(0, 256))] * 3 if grey else rng.integers(0, 256, 3).tolist()
        cv2.line(image, p1, p2, color, int(rng.integers(1, 3)))
    return np.clip(image, 0, 255)


def _colour(local: np.ndarray, rng: np.random.Generator, grey: bool) -> list[float]:
    """An easy object's colour, far from its surroundings: per channel (on random colours), or a
    saturated colour of the opposite brightness (on grey)."""
    if not grey:
        return np.where(local > 128, rng.integers(0, 60, 3), rng.integers(195, 256, 3)).astype(float).tolist()
    value = rng.integers(40, 80) if local.mean() > 128 else rng.integers(200, 256)
    hsv = np.array([[[rng.integers(0, 180), rng.integers(160, 256), value]]], np.uint8)
    return cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)[0, 0].astype(float).tolist()


def draw(image: np.ndarray, shape: str, box: tuple[int, int, int], color: list, rng: np.random.Generator) -> None:
    x, y, size = box
    centre = np.array([x + size / 2, y + size / 2])
    if shape == "circle":
        cv2.circle(image, tuple(int(v) for v in centre), size // 2, color, -1, cv2.LINE_AA)
        return
    angle = rng.uniform(0, 2 * np.pi)
    corners = 4 if shape == "square" else 3
    radius = size / 2  # every corner on the box's inscribed circle
    points = [
        centre + radius * np.array([np.cos(angle + k * 2 * np.pi / corners), np.sin(angle + k * 2 * np.pi / corners)])
        for k in range(corners)
    ]
    cv2.fillPoly(image, [np.array(points).round().astype(np.int32)], color, cv2.LINE_AA)


def make_image(
    shape: str, rng: np.random.Generator, hard: bool, luminance: bool = False, grey: bool = False
) -> tuple[np.ndarray, dict]:
    """One image and its box. luminance: the object differs from its surroundings in brightness,
    all channels the same way (for grayscale models: a per-channel contrast can vanish in gray).
    grey: on a grey background (background())."""
    image = background(rng, grey=grey)
    size = int(rng.integers(18, 24) if hard else rng.integers(26, 46))
    # Keep the object inside the centre square that fit-short keeps (x 20..140).
    x = int(rng.integers(24, 136 - size))
    y = int(rng.integers(4, HEIGHT - 4 - size))
    local = image[y : y + size, x : x + size].mean(axis=(0, 1))
    if luminance:
        grey = float(local.mean())
        sign = rng.choice([-1, 1]) if hard else (-1 if grey > 128 else 1)
        color = [float(np.clip(grey + sign * (60 if hard else 150), 0, 255))] * 3
    elif hard and grey:  # a faint grey shape, a little lighter or darker than what is around it
        color = [float(np.clip(local.mean() + rng.choice([-1, 1]) * rng.integers(18, 36), 0, 255))] * 3
    elif hard:
        color = np.clip(local + rng.choice([-1, 1], 3) * 60, 0, 255).tolist()
    else:
        color = _colour(local, rng, grey)
    for _ in range(rng.integers(1, 4)):  # distractor marks away from the object
        cx, cy = int(rng.integers(0, WIDTH)), int(rng.integers(0, HEIGHT))
        if not (x - 8 < cx < x + size + 8 and y - 8 < cy < y + size + 8):
            cv2.circle(image, (cx, cy), int(rng.integers(2, 4)), rng.integers(0, 256, 3).tolist(), -1)
    draw(image, shape, (x, y, size), color, rng)
    box = {"label": shape, "x": x, "y": y, "width": size, "height": size}
    return np.clip(image, 0, 255).astype(np.uint8), box


SCENE_SIZE = 128  # object detection scenes: square, several objects each


def _apart(box: tuple[int, int, int], boxes: list[tuple[int, int, int]], gap: int) -> bool:
    x, y, size = box
    return all(x + size + gap <= u or u + s + gap <= x or y + size + gap <= v or v + s + gap <= y for u, v, s in boxes)


def make_scene(rng: np.random.Generator, objects: int, size: int = SCENE_SIZE) -> tuple[np.ndarray, list[dict]]:
    """A square image with `objects` shapes of random classes that do not touch, and their boxes
    (Edge Impulse's `boundingBoxes`: label, x, y, width, height in pixels)."""
    image = background(rng, size, size)
    placed: list[tuple[int, int, int]] = []
    boxes = []
    while len(placed) < objects:
        side = int(rng.integers(22, 40))
        box = (int(rng.integers(2, size - 2 - side)), int(rng.integers(2, size - 2 - side)), side)
        if not _apart(box, placed, gap=6):
            continue
        shape = CLASSES[int(rng.integers(len(CLASSES)))]
        x, y, side = box
        local = image[y : y + side, x : x + side].mean(axis=(0, 1))
        draw(image, shape, box, _colour(local, rng, grey=False), rng)
        placed.append(box)
        boxes.append({"label": shape, "x": x, "y": y, "width": side, "height": side})
    return np.clip(image, 0, 255).astype(np.uint8), boxes


def file_name(index: int, shape: str, rng: np.random.Generator) -> str:
    tag = "".join(rng.choice(list("abcdefghijklmnopqrstuvwxyz0123456789"), 8))
    # Older exports put the label first; newer ones do not: the label lives in info.labels.
    stem = f"{shape}.shape_{index:04d}" if index % 2 else f"{index:04d}"
    return f"{stem}.jpg.{tag}.ingestion-6d8f7c9b5-x2k4q.jpg"


def _write(archive: zipfile.ZipFile, name: str, data: bytes | str) -> None:
    """A fixed timestamp, so that the zip is the same byte for byte on every run."""
    archive.writestr(zipfile.ZipInfo(name, date_time=(2024, 1, 1, 0, 0, 0)), data)


def export_files(per_class: dict[str, int], seed: int = 7, grey: bool = False) -> Iterator[tuple[dict, bytes]]:
    """An export's files, in order: each file's info.labels entry and its JPEG bytes (seeded)."""
    rng = np.random.default_rng(seed)
    index = 0
    for category, count in per_class.items():
        for k in range(count * len(CLASSES)):
            shape = CLASSES[k % len(CLASSES)]
            image, box = make_image(shape, rng, hard=rng.random() < 0.125, grey=grey)
            _ok, jpeg = cv2.imencode(".jpg", cv2.cvtColor(image, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 85])
            name = f"{category}/{file_name(index, shape, rng)}"
            label = {"type": "label", "label": shape}
            yield {"path": name, "category": category, "label": label, "boundingBoxes": [box]}, jpeg.tobytes()
            index += 1


def make_export(
    path: Path, per_class: dict[str, int], seed: int = 7, grey: bool = False
) -> list[tuple[np.ndarray, int]]:
    """The export zip; its training images, decoded, with their class indices."""
    files, training = [], []
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as archive:
        for entry, jpeg in export_files(per_class, seed, grey):
            _write(archive, entry["path"], jpeg)
            files.append(entry)
            if entry["category"] == "training":
                decoded = cv2.cvtColor(cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
                training.append((decoded, CLASSES.index(entry["label"]["label"])))
        _write(archive, "info.labels", json.dumps({"version": 1, "files": files}, indent=1))
        _write(
            archive, "README.txt", "Synthetic shapes, exported in Edge Impulse's format by examples/make_shapes.py.\n"
        )
    return training


def _conv(keras, filters: int) -> list:
    return [
        keras.layers.Conv2D(filters, 3, padding="same", use_bias=False),
        keras.layers.BatchNormalization(momentum=0.9),
        keras.layers.ReLU(),
    ]


def train(samples: list[tuple[np.ndarray, int]], extra: int = 3600, seed: int = 7, grey: bool = False):
    """Train on the export's training images plus `extra` more from the same generator (not shipped)."""
    import tensorflow as tf
    import tf_keras as keras

    keras.utils.set_random_seed(seed)
    tf.config.experimental.enable_op_determinism()
    rng = np.random.default_rng(seed + 1)
    for k in range(extra):
        image, _box = make_image(CLASSES[k % len(CLASSES)], rng, hard=rng.random() < 0.125, grey=grey)
        samples.append((image, k % len(CLASSES)))
    x = np.stack([preprocess(image, SPEC)[0] for image, _ in samples]).reshape(len(samples), -1)
    y = keras.utils.to_categorical([label for _, label in samples], len(CLASSES))
    layers = [keras.layers.InputLayer(input_shape=(64 * 64 * 3,), name="x_input"), keras.layers.Reshape((64, 64, 3))]
    layers += [*_conv(keras, 16), keras.layers.MaxPooling2D(2)]
    layers += _conv(keras, 32) + _conv(keras, 32) + [keras.layers.MaxPooling2D(2)]
    layers += _conv(keras, 64) + _conv(keras, 64)
    layers += [
        keras.layers.GlobalAveragePooling2D(),
        keras.layers.Dropout(0.25),
        keras.layers.Dense(len(CLASSES), activation="softmax", name="y_pred"),
    ]
    model = keras.Sequential(layers)
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="categorical_crossentropy", metrics=["accuracy"])
    model.fit(x, y, epochs=30, batch_size=32, shuffle=True, verbose=2)
    # Re-estimate the batch-norm statistics with the final weights: the running averages taken
    # while the weights still moved do not match them, and inference would suffer.
    for _ in range(3):
        for start in range(0, len(x), 64):
            model(x[start : start + 64], training=True)
    return model


def main() -> None:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    OUT.mkdir(parents=True, exist_ok=True)
    training = make_export(OUT / "export.zip", {"training": 200, "testing": 40}, grey=True)
    model = train(training, grey=True)
    model.save(OUT / "model.h5")
    print(f"wrote {OUT / 'export.zip'} and {OUT / 'model.h5'}")


if __name__ == "__main__":
    main()
