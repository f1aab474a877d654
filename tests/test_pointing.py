"""Do the default heatmaps point at the object? Checked on trained models of Edge Impulse's own
architectures (tests/fixtures/make_models.py) and the bundled shapes CNN, on 120 test images whose
object boxes are known: the bundled example's own for its model, and for the fixtures those of the
export their generator makes (random-colour backgrounds, as they were trained on).

The grayscale model is tested on images from the same generator whose objects differ in
brightness (helpers.shapes_test_set). "Pointing": the peak (centre of the hottest region) lies
inside the object's box. "Energy": the share of the heat inside the box. A uniform map puts
about 12% of its heat in these boxes.
"""

import functools
from collections import defaultdict

import numpy as np
import pytest

from gradcam.engine.formats import load_model
from gradcam.explainer import Explainer
from tests import helpers
from tests.helpers import ROOT, SHAPE_CLASSES, SHAPES

FIXTURES = ROOT / "tests" / "fixtures"
MODELS = {
    "shapes-cnn": SHAPES / "model.h5",  # last conv 16x16: explained alone
    "mobilenetv2_96": FIXTURES / "mobilenetv2_96.h5",  # Edge Impulse's default: last conv 3x3
    "mobilenetv1_96_gray": FIXTURES / "mobilenetv1_96_gray.h5",  # grayscale, last conv 3x3
    "mobilenetv2_160": FIXTURES / "mobilenetv2_160.h5",  # last conv 5x5
}


@functools.cache
def _test_set(name: str):
    return helpers.shapes_test_set(luminance="gray" in name, grey=name == "shapes-cnn")


def _explainer(model, **options) -> Explainer:
    """The default explainer without faithfulness, which these tests do not read (it costs forward passes)."""
    return Explainer(model, SHAPE_CLASSES, resize_mode="fit-short", **{"faithfulness": False, **options})


def _explain_true_class(explainer: Explainer, images, labels) -> list:
    """Each image explained with respect to its true class: one batch per class."""
    by_label = defaultdict(list)
    for i, label in enumerate(labels):
        by_label[label].append(i)
    results = [None] * len(images)
    for label, indices in by_label.items():
        for i, result in zip(indices, explainer.explain([images[i] for i in indices], label), strict=True):
            results[i] = result
    return results


def _scores(results, boxes, indices) -> tuple[float, float]:
    pointing = np.mean([helpers.pointing(results[i], boxes[i]) for i in indices])
    energy = np.mean([helpers.energy(results[i], boxes[i]) for i in indices])
    return float(pointing), float(energy)


@pytest.mark.parametrize("name", MODELS)
def test_default_maps_point_at_the_object(name):
    images, labels, boxes = _test_set(name)
    explainer = _explainer(load_model(MODELS[name]))
    results = explainer.explain(images)
    correct = [i for i, r in enumerate(results) if r.label == labels[i]]
    assert len(correct) >= 0.85 * len(images), f"{name} should be a decent classifier"
    pointing, energy = _scores(results, boxes, correct)
    print(f"{name} ({explainer.layer_name}): pointing {pointing:.2f}, energy {energy:.2f} on {len(correct)} images")
    assert pointing >= 0.85
    assert energy >= 0.40


@pytest.mark.parametrize("name", MODELS)
def test_randomised_weights_fail_the_pointing_game(name):
    """Adebayo et al.'s sanity check: a map that survives randomising the model explains nothing.
    Shallow layers alone pass the pointing game with random weights (their filters find edges
    whatever the weights), so this is what keeps the fused default honest."""
    images, labels, boxes = _test_set(name)
    model = load_model(MODELS[name])
    trained = _explainer(model)
    inputs = np.stack([trained.prepare(image)[0] for image in images])
    random = _explainer(helpers.randomised(model, inputs))
    everything = range(len(images))
    trained_pointing, _ = _scores(_explain_true_class(trained, images, labels), boxes, everything)
    random_pointing, random_energy = _scores(_explain_true_class(random, images, labels), boxes, everything)
    print(f"{name}, w.r.t. the true class: trained {trained_pointing:.2f}, randomised {random_pointing:.2f}")
    assert trained_pointing >= 0.85
    assert random_pointing <= 0.45
    assert random_energy < 0.3


def test_last_conv_alone_does_not_point_on_mobilenet():
    """What the default fixes: on Edge Impulse's MobileNetV2 96x96 the last conv is 3x3, and its
    maps point at the object on 15% of the correctly classified images (the box holds ~12% of the area)."""
    images, labels, boxes = _test_set("mobilenetv2_96")
    explainer = _explainer(load_model(MODELS["mobilenetv2_96"]), layer="last-conv")
    results = explainer.explain(images)
    assert explainer.resolution == (3, 3)
    pointing, _ = _scores(results, boxes, [i for i, r in enumerate(results) if r.label == labels[i]])
    assert pointing < 0.5


def test_explaining_an_absent_class_gives_a_different_map():
    images, labels, _ = _test_set("shapes-cnn")
    explainer = _explainer(load_model(SHAPES / "model.h5"))
    circles = [im for im, label in zip(images, labels, strict=True) if label == "circle"][:10]
    own = explainer.explain(circles)
    other = explainer.explain(circles, target_class="triangle")
    assert [r.label for r in own] == [r.label for r in other]
    differences = [np.abs(a.cam - b.cam).mean() for a, b in zip(own, other, strict=True)]
    assert min(differences) > 0.05


@pytest.mark.parametrize("name", MODELS)
def test_default_maps_equal_the_per_image_reference(name):
    images, _, _ = _test_set(name)
    model = load_model(MODELS[name])
    explainer = _explainer(model, normalization="simple")
    inputs = np.stack([explainer.prepare(image)[0] for image in images[:4]])
    maps = explainer.run(inputs).maps
    paths = [layer.name.split("/") for layer in explainer.adapter.layers]
    flat = inputs.reshape(len(inputs), -1) if explainer.adapter.flat_input else inputs
    for i, x in enumerate(flat):
        expected = helpers.reference_cam(model, paths, x, None, "gradcam", "classification")
        np.testing.assert_allclose(maps[i], expected, atol=1e-4, err_msg=f"{name} image {i}")
