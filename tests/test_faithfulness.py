"""Do the heatmaps point at the object? Checked on the bundled shapes example, whose boxes are known."""

import json
import zipfile

import cv2
import numpy as np
import pytest
import tf_keras

from gradcam.explainer import Explainer
from gradcam.model import load_model
from tests.helpers import SHAPES

CLASSES = ["circle", "square", "triangle"]


@pytest.fixture(scope="module")
def shapes():
    """The test images (RGB), their labels and their boxes (x0, y0, x1, y1)."""
    with zipfile.ZipFile(SHAPES / "export.zip") as archive:
        files = [f for f in json.loads(archive.read("info.labels"))["files"] if f["category"] == "testing"]
        images = [
            cv2.cvtColor(
                cv2.imdecode(np.frombuffer(archive.read(f["path"]), np.uint8), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB
            )
            for f in files
        ]
    labels = [f["label"]["label"] for f in files]
    boxes = [
        (b["x"], b["y"], b["x"] + b["width"], b["y"] + b["height"]) for b in (f["boundingBoxes"][0] for f in files)
    ]
    return images, labels, boxes


def _explainer(model, **options):
    return Explainer(model, CLASSES, resize_mode="fit-short", **options)


# One cell of the 16x16 map covers 120 / 16 = 7.5 original pixels: a peak cannot be placed more
# finely. (Zhang et al.'s pointing game allows 15 px on 224 px images.)
TOLERANCE = 8


def _hits(results, boxes) -> list[bool]:
    """The pointing game: is the heatmap's maximum inside the object's box? An all-zero map misses."""
    return [
        r.peak is not None
        and x0 - TOLERANCE <= r.peak[0] <= x1 + TOLERANCE
        and y0 - TOLERANCE <= r.peak[1] <= y1 + TOLERANCE
        for r, (x0, y0, x1, y1) in zip(results, boxes, strict=True)
    ]


@pytest.mark.parametrize("method", ["gradcam", "gradcam++"])
def test_pointing_game_on_correct_predictions(shapes, method):
    images, labels, boxes = shapes
    results = _explainer(load_model(SHAPES / "model.h5"), method=method).explain(images)
    correct = [i for i, r in enumerate(results) if r.label == labels[i]]
    assert len(correct) >= 0.8 * len(images), "the example model should be a decent classifier"
    hits = _hits([results[i] for i in correct], [boxes[i] for i in correct])
    assert np.mean(hits) >= 0.9, f"{method}: only {np.mean(hits):.0%} of peaks inside the object"


def test_explaining_an_absent_class_gives_a_different_map(shapes):
    images, labels, _ = shapes
    explainer = _explainer(load_model(SHAPES / "model.h5"))
    circles = [im for im, label in zip(images, labels, strict=True) if label == "circle"][:10]
    own = explainer.explain(circles)
    other = explainer.explain(circles, target_class="triangle")
    assert [r.label for r in own] == [r.label for r in other]
    differences = [np.abs(a.cam - b.cam).mean() for a, b in zip(own, other, strict=True)]
    assert min(differences) > 0.05


def test_randomised_weights_fail_the_pointing_game(shapes):
    """Adebayo et al.'s sanity check: a map that survives randomising the model explains nothing."""
    images, labels, boxes = shapes
    model = load_model(SHAPES / "model.h5")
    tf_keras.utils.set_random_seed(0)
    random = tf_keras.models.clone_model(model)  # fresh initialisation, same architecture
    explainer = _explainer(random)
    targets = [explainer.explain([im], target_class=label)[0] for im, label in zip(images, labels, strict=True)]
    trained = _explainer(model)
    trained_targets = [trained.explain([im], target_class=label)[0] for im, label in zip(images, labels, strict=True)]
    random_rate, trained_rate = np.mean(_hits(targets, boxes)), np.mean(_hits(trained_targets, boxes))
    print(f"pointing game w.r.t. the true class: trained {trained_rate:.0%}, randomised {random_rate:.0%}")
    assert trained_rate >= 0.8
    assert random_rate < 0.6, f"randomised model still points at the object {random_rate:.0%} of the time"
