"""Object detection (FOMO): decoding, matching, one map per object, the job end to end, Studio.

The trained fixture (tests/fixtures/make_fomo.py) is Edge Impulse's FOMO: MobileNetV2 0.35 at
96x96, cut at block_6_expand_relu, trained from scratch on scenes of 1 to 3 shapes.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import zipfile
from collections import Counter, deque
from functools import cache
from pathlib import Path

import cv2
import keras
import numpy as np
import pytest
import tensorflow as tf
import tf_keras

from gradcam.cli import main
from gradcam.engine.fomo import Box, Counts, decode, match
from gradcam.engine.resize import resize
from gradcam.errors import GradcamError
from gradcam.explainer import Explainer
from tests import helpers
from tests import studio_emulator as emu
from tests.helpers import fused_reference, jpeg, make_shapes, open_report, randomised, studio_home

FIXTURE = Path(__file__).parent / "fixtures" / "fomo_96.h5"
CLASSES = list(make_shapes.CLASSES)  # circle, square, triangle; the model's channels 1..3


@cache
def fomo():
    return tf_keras.models.load_model(FIXTURE, compile=False)


@cache
def scenes(count: int = 120, seed: int = 99) -> tuple[list[np.ndarray], list[list[Box]]]:
    """Scenes the fixture never saw (its training seeds differ), and their boxes."""
    rng = np.random.default_rng(seed)
    drawn = [make_shapes.make_scene(rng, int(rng.integers(1, 4))) for _ in range(count)]
    return [image for image, _ in drawn], [[Box(**b) for b in boxes] for _, boxes in drawn]


def grid(cells: dict[tuple[int, int], tuple[int, float]], size: int = 6, classes: int = 3) -> np.ndarray:
    """A hand-made output grid: background everywhere except {(row, col): (channel, probability)}."""
    g = np.zeros((size, size, classes + 1), np.float32)
    g[..., 0] = 1.0
    for (row, col), (channel, p) in cells.items():
        g[row, col] = (1.0 - p) / classes
        g[row, col, channel] = p
    return g


# --- The decoder against hand-made grids ---


def test_touching_cells_of_one_class_are_one_detection_centred_on_their_mean():
    found = decode(grid({(1, 1): (2, 0.9), (1, 2): (2, 0.7), (2, 3): (2, 0.6), (5, 5): (2, 0.8)}))
    assert [(d.class_index, d.confidence) for d in found] == [(1, pytest.approx(0.9)), (1, pytest.approx(0.8))]
    merged = found[0]  # (2, 3) touches (1, 2) diagonally: 8-connected
    assert merged.cells.sum() == 3
    assert merged.centroid == pytest.approx(((1 + 2 + 3) / 3 + 0.5, (1 + 1 + 2) / 3 + 0.5))
    assert found[1].centroid == pytest.approx((5.5, 5.5))


def test_touching_cells_of_two_classes_are_two_detections():
    found = decode(grid({(3, 3): (1, 0.9), (3, 4): (3, 0.8), (4, 4): (3, 0.7)}))
    assert sorted((d.class_index, int(d.cells.sum())) for d in found) == [(0, 1), (2, 2)]


def test_a_cell_counts_from_the_threshold_on_and_only_when_an_object_wins():
    g = grid({(0, 0): (1, 0.5), (0, 3): (1, 0.49), (5, 0): (2, 0.6)})
    g[5, 0] = [0.62, 0.0, 0.38, 0.0]  # background wins: not an object cell, however high the object
    assert [d.centroid for d in decode(g, 0.5)] == [(0.5, 0.5)]
    assert len(decode(g, 0.4)) == 2
    assert len(decode(g, 0.51)) == 0


def test_an_empty_grid_has_no_detections():
    assert decode(grid({})) == []


def test_each_box_matches_one_detection_of_its_label_most_confident_first():
    boxes = [Box("circle", 0, 0, 10, 10), Box("square", 20, 0, 10, 10), Box("square", 40, 40, 5, 5)]
    labels = ["circle", "circle", "square", "triangle"]
    centroids = [(5, 5), (6, 6), (10, 5), (22, 2)]  # the 2nd circle falls in a box already taken
    assert match(labels, centroids, boxes) == [0, None, None, None]
    assert match(["square"], [(30, 10)], boxes) == [1]  # the box's edges count as inside


def test_counts_give_precision_recall_and_f1():
    c = Counts(3, 1, 2) + Counts(1, 0, 0)
    assert (c.precision, c.recall, c.f1) == (0.8, pytest.approx(4 / 6), pytest.approx(8 / 11))
    assert Counts(0, 0, 0).precision is None and Counts(0, 0, 2).precision is None


# --- The model ---


def test_a_fomo_model_is_explained_at_its_cut_point_fused_with_the_stage_below():
    explainer = Explainer(fomo(), CLASSES)
    assert explainer.task.name == "object detection"
    assert [(layer["name"], layer["size"]) for layer in explainer.layers()] == [
        ("block_6_expand_relu", "12x12"),
        ("block_3_expand_relu", "24x24"),
    ]
    with pytest.raises(GradcamError, match=r"4 class names .* object detection model with 3 outputs"):
        Explainer(fomo(), [*CLASSES, "background"])
    with pytest.raises(GradcamError, match="--target-class does not apply to object detection"):
        explainer.target_index("circle")
    with pytest.raises(GradcamError, match=r"object detection \(FOMO\) model: explain its objects with detect\(\)"):
        explainer.explain([np.zeros((96, 96, 3), np.uint8)])


def test_a_grid_output_that_is_not_a_softmax_is_refused():
    inputs = keras.Input((32, 32, 3))
    x = keras.layers.Conv2D(8, 3, strides=4, padding="same", activation="relu")(inputs)
    model = keras.Model(inputs, keras.layers.Conv2D(3, 1, activation="sigmoid", name="cells")(x))
    with pytest.raises(GradcamError, match=r"'cells' gives a grid of 3 values per cell with activation 'sigmoid'"):
        Explainer(model)


# --- The maps ---


def _prepared(images):
    explainer = Explainer(fomo(), CLASSES)
    inputs, geometries = zip(*(explainer.prepare(image) for image in images), strict=True)
    frames = [explainer.frame((im.shape[1], im.shape[0]), g) for im, g in zip(images, geometries, strict=True)]
    return explainer, np.stack(inputs), frames


def _reference_object_map(model, image_input: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Grad-CAM of sum(logits * mask) written out with a plain GradientTape on the model's layers."""
    names = ["block_6_expand_relu", "block_3_expand_relu"]
    tapped = tf_keras.Model(
        model.input, [*(model.get_layer(n).output for n in names), model.get_layer("logits").output]
    )
    x = tf.constant(image_input[None])
    with tf.GradientTape() as tape:
        *activations, logits = tapped(x, training=False)
        y = tf.reduce_sum(logits * mask[None])
    grads = tape.gradient(y, activations)
    return fused_reference([a[0].numpy() for a in activations], [g[0].numpy() for g in grads], "gradcam")


def test_each_object_map_is_its_class_logits_summed_over_its_cells_batched_as_one():
    images, boxes = scenes()
    images, boxes = images[:6], boxes[:6]
    explainer, inputs, frames = _prepared(images)
    # A high threshold leaves some boxes missed: their maps explain the box's cells.
    results = explainer.run_objects(inputs, frames, boxes, threshold=0.99)
    kinds = {t.detection is None for plan, *_ in results for t in plan.targets}
    assert kinds == {True, False}, "the batch has both detections and missed boxes"
    for i, (plan, cams, *_) in enumerate(results):
        for target in plan.targets:
            raw = explainer.cam(explainer.start(inputs[i : i + 1]), target.mask(4)[None]).maps[0]
            reference = _reference_object_map(fomo(), inputs[i], target.mask(4))
            np.testing.assert_allclose(raw / raw.max(), reference, atol=1e-4)
        for target, cam in zip(plan.targets, cams, strict=True):
            alone = explainer.run(inputs[i : i + 1], target.mask(4)[None]).maps[0]
            np.testing.assert_allclose(cam, alone, atol=1e-5)


def test_a_missed_box_is_explained_over_the_cells_inside_it():
    images, boxes = scenes()
    _, _, frames = _prepared(images[:1])
    box = boxes[0][0]
    cells = frames[0].box_cells(box)
    rows, cols = np.nonzero(cells)
    # Cell centres (in the 128-pixel scene: a cell is 128 / 12 pixels) inside the box, and no others.
    side = 128 / 12
    inside = [(r, c) for r in range(12) for c in range(12) if box.contains(((c + 0.5) * side, (r + 0.5) * side))]
    assert sorted(zip(rows.tolist(), cols.tolist(), strict=True)) == inside
    tiny = Box("circle", 60, 60, 2, 2)  # smaller than a cell: the cell under its centre
    assert np.argwhere(frames[0].box_cells(tiny)).tolist() == [[int(61 / side), int(61 / side)]]


def _pointing(explanations) -> list[bool]:
    return [o.peak_in_box for e in explanations for o in e.objects if o.matched]


def test_maps_of_found_objects_peak_inside_their_box_and_random_weights_do_not():
    images, boxes = scenes()
    explainer = Explainer(fomo(), CLASSES)
    explained = explainer.detect(images, boxes)
    hits = _pointing(explained)
    assert len(hits) >= 200, "the fixture finds most of the 241 objects"
    assert np.mean(hits) >= 0.85
    # Adebayo et al.'s check: the same objects (same cells, same classes) explained by a copy with
    # re-initialised weights. Maps that only echoed the target's cells would pass it too.
    inputs = np.stack([explainer.prepare(image)[0] for image in images])
    random_explainer = Explainer(randomised(fomo(), inputs), CLASSES)
    frames = [explainer.frame((im.shape[1], im.shape[0]), explainer.prepare(im)[1]) for im in images]
    random_peaks = []
    for i, (plan, *_) in enumerate(explainer.run_objects(inputs, frames, boxes)):
        found = [t for t in plan.targets if t.detection is not None and t.box is not None]
        if found:
            cams = random_explainer.run(
                inputs[i : i + 1], np.stack([t.mask(4) for t in found]), np.zeros(len(found), np.int32)
            ).maps
            random_peaks += _peaks(frames[i], cams, found)
    assert len(random_peaks) == len(hits)
    assert np.mean([p is not None and t.box.contains(p) for t, p in random_peaks]) < 0.5  # a blank map misses
    # Not only by blank maps: the random maps that do peak are no better than chance near the cells.
    drawn = [t.box.contains(p) for t, p in random_peaks if p is not None]
    assert len(drawn) >= 30 and np.mean(drawn) < 0.7


def _peaks(frame, cams, targets):
    from gradcam.engine import detection
    from gradcam.engine.detection import ObjectMaps

    found = ObjectMaps(detection.Plan(targets, None, None), list(cams), [None] * len(targets), np.zeros((1, 1, 2)))
    finished = detection.finish(np.zeros((frame.shown[1], frame.shown[0], 3), np.uint8), frame, found)
    return [(t, o.peak) for t, o in zip(targets, finished.objects, strict=True)]


# --- The job, end to end ---


def _export(path: Path, images, boxes, unlabeled: tuple[int, ...] = ()) -> Path:
    """An Edge Impulse export of object detection samples: boxes in info.labels, no class label."""
    files = []
    with zipfile.ZipFile(path, "w") as archive:
        for i, (image, image_boxes) in enumerate(zip(images, boxes, strict=True)):
            name = f"testing/scene{i:03d}.jpg.x.ingestion-1.jpg"
            archive.writestr(name, jpeg(image))
            entry = {"path": name, "category": "testing", "label": {"type": "unlabeled"}}
            if i not in unlabeled:
                entry["boundingBoxes"] = [b.as_dict() for b in image_boxes]
            files.append(entry)
        archive.writestr("info.labels", json.dumps({"version": 1, "files": files}))
    return path


def _reference_inputs(images, by_hand: bool = True) -> np.ndarray:
    """The JPEG as exported, squashed to 96x96 / 255: with Lanczos-3 by hand (within a level of
    libvips's), or with the block's own libvips resize where a level matters (tests/test_preprocess.py
    holds that one to the hand-written kernel)."""
    decoded = [
        cv2.cvtColor(cv2.imdecode(np.frombuffer(jpeg(im), np.uint8), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
        for im in images
    ]
    resized = [helpers.independent_resize(im, 96, 96) if by_hand else resize(im, 96, 96) for im in decoded]
    return np.stack(resized).astype(np.float32) / 255.0


def _reference_objects(g: np.ndarray, threshold: float) -> list[tuple[float, str, float, float]]:
    """One output grid's detections: object cells of one class flood-filled over their 8 neighbours;
    (confidence, label, centroid x, centroid y), the centroid the mean of cell centres in grid units."""
    best, top = g.argmax(-1), g.max(-1)
    seen = np.zeros(best.shape, bool)
    found = []
    for r0, c0 in zip(*np.nonzero((best > 0) & (top >= threshold)), strict=True):
        if seen[r0, c0]:
            continue
        cells, queue, seen[r0, c0] = [], deque([(r0, c0)]), True
        while queue:
            r, c = queue.popleft()
            cells.append((r, c))
            for dr in (-1, 0, 1):
                for dc in (-1, 0, 1):
                    rr, cc = r + dr, c + dc
                    inside = 0 <= rr < 12 and 0 <= cc < 12
                    if inside and not seen[rr, cc] and best[rr, cc] == best[r0, c0] and top[rr, cc] >= threshold:
                        seen[rr, cc] = True
                        queue.append((rr, cc))
        x, y = np.mean([c for _, c in cells]) + 0.5, np.mean([r for r, _ in cells]) + 0.5
        found.append((max(top[r, c] for r, c in cells), CLASSES[best[r0, c0] - 1], x, y))
    return found


def _reference_correct(images, boxes, threshold: float = 0.5) -> list[bool]:
    """Edge Impulse's decoding and scoring written out by hand: the JPEG as exported, squashed to
    96x96 / 255, predict,
    flood-fill object cells of one class over their 8 neighbours, centroid = mean of cell centres,
    matched most confident first to an unmatched box of the same label holding the centroid."""
    grids = fomo().predict(_reference_inputs(images), verbose=0)
    verdicts = []
    for g, image_boxes, image in zip(grids, boxes, images, strict=True):
        found = [
            (confidence, label, x * image.shape[1] / 12, y * image.shape[0] / 12)
            for confidence, label, x, y in _reference_objects(g, threshold)
        ]
        taken, false = set(), 0
        for _, label, x, y in sorted(found, key=lambda f: -f[0]):
            hit = next(
                (
                    i
                    for i, b in enumerate(image_boxes)
                    if i not in taken and b.label == label and b.x <= x <= b.x + b.width and b.y <= y <= b.y + b.height
                ),
                None,
            )
            false += hit is None
            taken.add(hit)
        verdicts.append(false == 0 and len(taken - {None}) == len(image_boxes))
    return verdicts


def _read(zip_path: Path):
    with zipfile.ZipFile(zip_path) as archive:
        document = json.loads(archive.read("results.json"))
        objects = list(csv.DictReader(io.StringIO(archive.read("objects.csv").decode())))
        table = list(csv.DictReader(io.StringIO(archive.read("results.csv").decode())))
        names = [n for n in archive.namelist() if n.endswith(".jpg")]
    return document, objects, table, names


def test_the_job_splits_images_as_edge_impulse_scores_them(tmp_path):
    images, boxes = scenes()
    images, boxes = images[:40], boxes[:40]
    export = _export(tmp_path / "export.zip", images, boxes, unlabeled=(3, 7))
    code = main(
        ["--model", str(FIXTURE), "--dataset", str(export), "--classes", ",".join(CLASSES), "--out", str(tmp_path)]
    )
    assert code == 0
    document, objects, table, names = _read(tmp_path / "deploy.zip")
    results = {r["source"]: r for r in document["results"]}
    reference = _reference_correct(images, boxes)
    for i, expected in enumerate(reference):
        r = results[f"testing/scene{i:03d}.jpg.x.ingestion-1.jpg"]
        if i in (3, 7):
            assert r["correct"] is None and r["overlay"].startswith("unlabeled/")
        else:
            assert r["correct"] is expected, f"scene {i}"
            assert r["overlay"].startswith("correct/" if expected else "incorrect/")
    assert 0 < sum(reference) < 40, "some images are wrong, most are right"
    assert len(names) == 40 and document["run"]["task"] == "object detection"
    # Per image: counts agree with the objects listed; objects.csv lists the same objects.
    for r in document["results"]:
        kinds = [o["kind"] for o in r["objects"]]
        if r["correct"] is not None:
            assert r["true_positives"] == sum(o["kind"] == "detection" and o["box"] is not None for o in r["objects"])
            assert r["false_positives"] == kinds.count("detection") - r["true_positives"]
            assert r["false_negatives"] == kinds.count("missed")
            assert r["true_positives"] + r["false_negatives"] == len(r["true_label"].split(", "))
    assert len(objects) == sum(len(r["objects"]) for r in document["results"])
    assert {row["kind"] for row in objects} <= {"detection", "missed"}
    assert "precision" in table[0] and "f1" in table[0]
    # The run's totals are the sums over labelled images, per class too.
    detection = document["run"]["detection"]
    labelled = [r for r in document["results"] if r["correct"] is not None]
    total = detection["total"]
    assert total["true_positives"] == sum(r["true_positives"] for r in labelled)
    assert total["false_positives"] == sum(r["false_positives"] for r in labelled)
    assert sum(c["true_positives"] for c in detection["classes"].values()) == total["true_positives"]
    assert detection["threshold"] == 0.5 and total["peak_in_box"] >= 0.85


def test_the_int8_models_detections_are_compared_with_the_keras_models(tmp_path):
    """Per image: the same objects (each with a twin of its class in the same cell) or not, against
    an independent per-image interpreter run decoded by the reference flood fill."""
    from tests.test_tflite import reference

    images, boxes = scenes()
    images, boxes = images[:24], boxes[:24]
    export = _export(tmp_path / "export.zip", images, boxes)
    calibration, _ = scenes(30, seed=8)
    int8 = tmp_path / "fomo.tflite"
    int8.write_bytes(helpers.tflite_file(fomo(), _reference_inputs(calibration)))
    job = ["--model", FIXTURE, "--dataset", export, "--classes", ",".join(CLASSES), "--tflite", int8]
    assert main([*map(str, job), "--out", str(tmp_path)]) == 0
    document, _, table, _ = _read(tmp_path / "deploy.zip")
    inputs = _reference_inputs(images, by_hand=False)  # a level's difference moves a quantized answer
    keras, device = fomo().predict(inputs, verbose=0), reference(int8, inputs).reshape(-1, 12, 12, 4)

    def found(grid) -> Counter:
        return Counter((label, int(x), int(y)) for _, label, x, y in _reference_objects(grid, 0.5))

    rows = {r["source"]: r for r in table}
    for i in range(24):
        row = rows[f"testing/scene{i:03d}.jpg.x.ingestion-1.jpg"]
        expected = sorted(label for _, label, _, _ in _reference_objects(device[i], 0.5)) or ["nothing"]
        assert sorted(row["tflite_predicted"].split(", ")) == expected, i  # equal confidences: any order
        assert row["agrees"] == str(found(keras[i]) == found(device[i])), i
    tflite = document["run"]["tflite"]
    assert (tflite["type"], tflite["compared"]) == ("int8", 24)
    assert tflite["disagreements"] == sum(row["agrees"] == "False" for row in table)
    assert 0 < tflite["disagreements"] < 24, "both outcomes are checked (2 disagreements with this calibration)"
    # The int8 model's own map of every object the Keras model found or missed (its twin's, where it
    # gives LiteRT's outputs): it points at the objects found, as the Keras maps do.
    drawn = [r for r in document["results"] if not r["tflite_map_withheld"]]
    assert len(drawn) >= 22 and all(r["tflite_overlay"] for r in drawn)
    scored = [o for r in drawn for o in r["objects"] if o["map_agreement"] is not None]
    assert tflite["maps"]["total"]["maps"] == len(scored) and tflite["maps"]["total"]["share"] <= 0.2
    found_objects = [o for r in drawn for o in r["objects"] if o["kind"] == "detection" and o["box"]]
    assert np.mean([o["tflite_peak_in_box"] for o in found_objects]) >= 0.8


def test_boxes_come_from_bounding_boxes_labels_in_edge_impulse_object_detection_format(tmp_path):
    from gradcam.edge.dataset import open_dataset

    images, boxes = scenes()
    folder = tmp_path / "dataset" / "testing"
    folder.mkdir(parents=True)
    listed = {}
    for i in range(3):
        (folder / f"s{i}.jpg").write_bytes(jpeg(images[i]))
        listed[f"s{i}.jpg"] = [b.as_dict() for b in boxes[i]]
    (folder / "bounding_boxes.labels").write_text(
        json.dumps({"version": 1, "type": "bounding-box-labels", "boundingBoxes": listed})
    )
    dataset = open_dataset(tmp_path / "dataset")
    assert [(s.path, list(s.boxes)) for s in dataset.samples] == [(f"testing/s{i}.jpg", boxes[i]) for i in range(3)]
    assert dataset.skipped == []
    # No class in the file names: the classes offline runs guess are the boxes' labels.
    assert [s.label for s in dataset.samples] == [None] * 3
    assert dataset.labels == sorted({b.label for i in range(3) for b in boxes[i]})
    listed["s1.jpg"][0].pop("width")
    (folder / "bounding_boxes.labels").write_text(json.dumps({"boundingBoxes": listed}))
    with pytest.raises(GradcamError, match=r"testing/bounding_boxes.labels, s1.jpg: a bounding box needs .* 'width'"):
        open_dataset(tmp_path / "dataset")


# --- Studio ---


def _fomo_zip() -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.write(FIXTURE, "model.h5")
    return out.getvalue()


def _threshold(value: float) -> dict:
    return {"key": "minConfidenceRating", "description": "Minimum confidence", "helpText": "", "value": value}


def test_studio_runs_a_fomo_learn_block_with_its_threshold(tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="gradcam")
    images, boxes = scenes()
    export = _export(tmp_path / "export.zip", images[:8], boxes[:8]).read_bytes()
    with emu.Emulator(export, _fomo_zip(), classes=CLASSES, mode="object-detection") as studio:
        studio.learn_type, studio.last_layer, studio.thresholds = "keras-object-detection", "fomo", [_threshold(0.7)]
        studio.image = {"width": 96, "height": 96, "resizeMode": "squash"}
        studio.faults.polls_until_done = 1
        home = studio_home(
            tmp_path,
            studio,
            _fomo_zip(),
            studio.api_key,
            classes=CLASSES,
            learn_type="keras-object-detection",
            size=96,
            resize_mode="squash",
        )
        assert main(["--metadata", str(home / "input" / "deployment-metadata.json")]) == 0
    document, *_ = _read(home / "output" / "deploy.zip")
    assert document["run"]["detection"]["threshold"] == 0.7
    assert document["run"]["parameters"]["resize_mode"] == "squash"
    assert all(o["confidence"] >= 0.7 for r in document["results"] for o in r["objects"] if o["kind"] == "detection")
    total = document["run"]["detection"]["total"]
    assert f"objects: {total['true_positives']} found, {total['false_positives']} false" in caplog.text


def test_other_object_detectors_are_refused_naming_the_learn_block(tmp_path, capsys):
    with emu.Emulator(b"", _fomo_zip(), classes=CLASSES, mode="object-detection") as studio:
        studio.learn_type, studio.last_layer = "keras-object-detection", "mobilenet-ssd"
        home = studio_home(
            tmp_path, studio, _fomo_zip(), studio.api_key, classes=CLASSES, learn_type="keras-object-detection"
        )
        assert main(["--metadata", str(home / "input" / "deployment-metadata.json")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1] == (
        "error: the learn block (keras-object-detection) is a mobilenet-ssd object detector: only FOMO object "
        "detection models can be explained (their output is a grid of cells, not boxes)"
    )
    assert not any(r.path.endswith("/jobs/export/original") for r in studio.requests)


# --- The report ---


def test_the_report_shows_per_class_detection_and_filters_by_class(browser, tmp_path):
    images, boxes = scenes()
    export = _export(tmp_path / "export.zip", images[:20], boxes[:20])
    argv = ["--model", str(FIXTURE), "--dataset", str(export), "--classes", ",".join(CLASSES), "--out", str(tmp_path)]
    assert main([*argv, "--layout", "panel"]) == 0
    document, *_ = _read(tmp_path / "deploy.zip")
    page, problems = open_report(browser, tmp_path / "deploy.zip", tmp_path / "report")
    rows = page.locator("#per-class tr").all_inner_texts()
    per_class = document["run"]["detection"]["classes"]
    for label, row in per_class.items():
        line = next(r for r in rows if r.split("\t")[0] == label)
        cells = line.split("\t")
        assert cells[1:4] == [str(row["true_positives"]), str(row["false_positives"]), str(row["false_negatives"])]
    page.select_option("#label", "triangle")
    shown = page.locator("#gallery figure").count()
    expected = sum(any(o["label"] == "triangle" for o in r["objects"]) for r in document["results"])
    assert shown == expected > 0
    first = page.locator("#gallery figure").first.inner_text()
    assert "found" in first or "missed" in first or "false" in first
    assert problems == []


def test_a_box_of_an_unknown_class_counts_as_missed_with_a_blank_map():
    images, boxes = scenes()
    [result] = Explainer(fomo(), CLASSES).detect(images[:1], [[*boxes[0], Box("hexagon", 0, 0, 10, 10)]])
    unknown = [o for o in result.objects if o.label == "hexagon"]
    assert [(o.kind, o.peak, o.peak_in_box) for o in unknown] == [("missed", None, False)]
    assert result.counts.fn == sum(o.kind == "missed" for o in result.objects) >= 1
    assert result.correct is False


# --- How far to trust each object's map ---


def _reference_object_score(image: np.ndarray, cam: np.ndarray, mask: np.ndarray) -> float:
    """One object, as gradcam/engine/faithfulness.py documents it: its map's hottest and coldest 20%
    of the pixels within 2 cells of its own replaced by the blurred image, read on the class's
    log-odds per cell averaged over its cells (logits of the model without its softmax)."""
    from tests.test_faithfulness import _reference_blur, _reference_weights

    logits = tf_keras.Model(fomo().inputs, fomo().get_layer("logits").output)
    heat = tf.image.resize(cam[None, ..., None], (96, 96), method="bilinear")[0, ..., 0].numpy()
    cells = mask.max(axis=-1) > 0
    near = np.zeros_like(cells)
    for row, col in zip(*np.nonzero(cells), strict=True):
        near[max(row - 2, 0) : row + 3, max(col - 2, 0) : col + 3] = True
    region = np.kron(near, np.ones((8, 8), bool))
    fill = _reference_blur(image, 96 / 16)
    copies = [image]
    for sign in (1, -1):
        weights = np.zeros((96, 96))
        weights[region] = _reference_weights(sign * heat[region], 0.2)
        copies.append(image * (1 - weights[..., None]) + fill * weights[..., None])
    channel = int(mask.sum(axis=(0, 1)).argmax())
    evidence = []
    for copy in copies:
        z = logits(np.asarray(copy, np.float32)[None], training=False).numpy()[0].astype(np.float64)
        others = np.logaddexp.reduce(np.delete(z, channel, axis=-1), axis=-1)
        evidence.append(((z[..., channel] - others) * cells).sum() / cells.sum())
    hot, cold = evidence[0] - evidence[1], evidence[0] - evidence[2]
    return (hot - cold) / max(abs(evidence[0]), abs(hot) + abs(cold))


def test_each_object_map_is_scored_within_its_neighbourhood_as_documented():
    images, boxes = scenes()
    explainer, inputs, frames = _prepared(images[:3])
    for i, found in enumerate(explainer.run_objects(inputs, frames, boxes[:3])):
        targets = found.plan.targets
        raw = explainer.cam(
            explainer.start(inputs[i : i + 1].repeat(len(targets), 0)), np.stack([t.mask(4) for t in targets])
        ).maps
        for target, cam, score in zip(targets, raw, found.faithfulness, strict=True):
            assert score == pytest.approx(_reference_object_score(inputs[i], cam, target.mask(4)), abs=2e-4)


def test_object_maps_are_faithful_and_random_maps_and_randomised_weights_are_not():
    images, boxes = scenes()
    explainer, inputs, frames = _prepared(images[:40])
    found = explainer.run_objects(inputs, frames, boxes[:40])
    targets = [t for f in found for t in f.plan.targets]
    own = np.array([s for f in found for s in f.faithfulness])
    owners, masks = np.array([t.owner for t in targets], np.int32), np.stack([t.mask(4) for t in targets])
    batch = explainer.cam(explainer.start(inputs), masks, owners)
    noise = np.random.default_rng(0).random(batch.maps.shape).astype(np.float32)
    random = explainer.score_objects(inputs, owners, noise, batch.scores, masks)
    reinitialised = Explainer(randomised(fomo(), inputs), CLASSES)
    other = reinitialised.cam(reinitialised.start(inputs), masks, owners)
    randomised_scores = reinitialised.score_objects(inputs, owners, other.maps, other.scores, masks)
    means = {k: float(np.mean(v)) for k, v in dict(own=own, random=random, randomised=randomised_scores).items()}
    print(len(own), {k: round(v, 2) for k, v in means.items()})  # measured: 97 objects, 0.86, 0.06, 0.00
    assert len(own) >= 80 and means["own"] >= 0.7
    assert means["own"] - means["random"] >= 0.4 and means["own"] - means["randomised"] >= 0.4
    assert np.mean(own >= 0.5) >= 0.8 and np.mean(random >= 0.5) <= 0.3
