"""The per-image faithfulness score and the true class's map of a mistake (gradcam.engine.faithfulness,
BaseCAM's `truths`), checked on the bundled shapes model and on Edge Impulse's MobileNetV2 96x96
(trained test fixture), against random and uniform maps, re-initialised weights, the same models
made more confident (their logits scaled) and a per-image reference written here from the
documented definition."""

import functools

import cv2
import numpy as np
import pytest
import tensorflow as tf

from gradcam.engine import faithfulness
from gradcam.engine.formats import load_model
from gradcam.engine.tasks import PREDICTED
from gradcam.engine.trust import TRUST_THRESHOLD
from gradcam.explainer import Explainer
from tests import helpers
from tests.helpers import ROOT, SHAPE_CLASSES, SHAPES

MODELS = {"shapes-cnn": SHAPES / "model.h5", "mobilenetv2_96": ROOT / "tests" / "fixtures" / "mobilenetv2_96.h5"}


@functools.cache
def _setup(name: str):
    """(model, explainer, model inputs, labels) on the bundled example's 120 test images."""
    images, labels, _ = helpers.shapes_test_set(grey=name == "shapes-cnn")
    model = load_model(MODELS[name])
    explainer = Explainer(model, SHAPE_CLASSES, resize_mode="fit-short", faithfulness=True)
    return model, explainer, np.stack([explainer.prepare(image)[0] for image in images]), labels


def _measure(explainer: Explainer, inputs: np.ndarray, maps: np.ndarray) -> np.ndarray:
    """The scores of any maps of the inputs, for the predicted class."""
    logits = explainer.adapter(tf.constant(inputs)).scores
    classes = explainer.task.predicted(logits)
    part = (tf.constant(inputs), tf.constant(maps, tf.float32), logits, classes)
    [scores] = faithfulness.measure(lambda x: explainer.adapter(x).scores, explainer.task, [part])
    return scores.numpy()


# --- The deleted region. ---


def test_the_hottest_share_is_deleted_and_tied_pixels_share_the_rest_equally():
    heat = np.array([[[5, 4, 4, 4, 1], [0, 0, 0, 0, 0]]], np.float32)  # 10 pixels: 2 to delete
    weights, coldest = faithfulness.hottest(heat, 0.2)
    np.testing.assert_allclose(weights, [[[1, 1 / 3, 1 / 3, 1 / 3, 0], [0, 0, 0, 0, 0]]])
    np.testing.assert_allclose(coldest, [[[0, 0, 0, 0, 0], [0.4] * 5]])
    for uniform in faithfulness.hottest(np.ones((2, 4, 5), np.float32), 0.2):
        np.testing.assert_allclose(uniform, np.full((2, 4, 5), 0.2))


def test_the_hot_region_is_filled_with_the_blurred_image_not_black():
    images = helpers.random_images(2, (64, 64, 3))
    maps = np.random.default_rng(1).random((2, 16, 16)).astype(np.float32) * 0.1
    maps[:, :8, :8] += 1.0  # the top left quarter is hot: the hottest 20% lie in it
    hot, cold = (copy.numpy() for copy in faithfulness.deleted(images, maps))
    fill = faithfulness.blurred(images).numpy()
    for copy, hot_block in ((hot, True), (cold, False)):
        changed = np.abs(copy - images).max(axis=-1) > 0
        assert changed.mean() == pytest.approx(0.2, abs=0.005)
        in_block = changed[:, :34, :34].sum() if hot_block else changed[:, :30, :30].sum()
        assert in_block == (changed.sum() if hot_block else 0), "hot: inside the hot quarter; cold: outside"
        filled = np.isclose(copy, fill, atol=1e-6).all(axis=-1)
        assert filled[changed].mean() > 0.99, "replaced by the fill (but for a few pixels tied at the cut)"
    assert fill.std() < 0.3 * images.std(), "the fill is a blurred copy"
    assert fill.mean() == pytest.approx(images.mean(), abs=0.01), "not black"


# --- The score, on trained models. ---


@pytest.mark.parametrize("name", MODELS)
def test_own_maps_are_faithful_and_random_uniform_and_randomised_maps_are_not(name):
    model, explainer, inputs, _ = _setup(name)
    own = _measure(explainer, inputs, explainer.cam(inputs).maps)
    random = _measure(explainer, inputs, np.random.default_rng(0).random((len(inputs), 16, 16)).astype(np.float32))
    uniform = _measure(explainer, inputs, np.ones((len(inputs), 16, 16), np.float32))
    reinitialised = Explainer(helpers.randomised(model, inputs), SHAPE_CLASSES, resize_mode="fit-short")
    randomised = _measure(reinitialised, inputs, reinitialised.cam(inputs).maps)
    means = {
        k: float(v.mean()) for k, v in dict(own=own, random=random, uniform=uniform, randomised=randomised).items()
    }
    print(name, {k: round(v, 3) for k, v in means.items()})
    assert means["own"] >= 0.7
    assert np.abs(uniform).max() < 1e-6, "a uniform map's hot and cold regions are the same pixels"
    for other in ("random", "randomised"):
        assert means["own"] - means[other] >= 0.4, other
    assert np.mean(own >= TRUST_THRESHOLD) >= 0.8
    assert np.mean(random >= TRUST_THRESHOLD) <= 0.3


@pytest.mark.parametrize("name", MODELS)
def test_a_more_confident_model_keeps_its_scores(name):
    """Probabilities saturate as a model grows confident; the score, read on the log-odds, must not."""
    model, explainer, inputs, _ = _setup(name)
    targets = np.full(len(inputs), PREDICTED, np.int32)
    base = explainer.maps(inputs, targets)
    scores = np.array([m.faithfulness for m in base])
    for factor in (10, 30):
        confident = Explainer(helpers.confident(model, factor), SHAPE_CLASSES, resize_mode="fit-short")
        maps = confident.maps(inputs, targets)
        assert [m.explained for m in maps] == [m.explained for m in base], "the same answers"
        assert np.median([m.probabilities.max() for m in maps]) > 0.999999, "saturated probabilities"
        other = np.array([m.faithfulness for m in maps])
        print(name, factor, round(scores.mean(), 3), round(other.mean(), 3))
        assert abs(other.mean() - scores.mean()) <= 0.1
        trusted = np.mean(scores >= TRUST_THRESHOLD), np.mean(other >= TRUST_THRESHOLD)
        assert abs(trusted[0] - trusted[1]) <= 0.1


def _reference_weights(heat: np.ndarray, share: float) -> np.ndarray:
    """Walk the distinct heat values from the top; the group straddling share * pixels gets the rest."""
    weights, left = np.zeros_like(heat, np.float64), share * heat.size
    for value in np.unique(heat)[::-1]:
        group = heat == value
        weights[group] = min(1.0, left / group.sum())
        left -= weights[group].sum()
        if left <= 1e-9:
            break
    return weights


def _reference_blur(image: np.ndarray, sigma: float) -> np.ndarray:
    """A separable Gaussian with OpenCV's kernel size for float images, mirrored borders (reflect-101)."""
    radius = round(sigma * 4 * 2 + 1) // 2
    x = np.arange(-radius, radius + 1)
    kernel = np.exp(-(x**2) / (2 * sigma**2))
    kernel /= kernel.sum()
    padded = np.pad(image.astype(np.float64), ((radius, radius), (radius, radius), (0, 0)), mode="reflect")
    rows = np.stack([np.convolve(c, kernel, "valid") for c in padded.transpose(2, 0, 1).reshape(-1, padded.shape[1])])
    rows = rows.reshape(image.shape[2], padded.shape[0], image.shape[1]).transpose(0, 2, 1)
    cols = np.stack([np.convolve(c, kernel, "valid") for c in rows.reshape(-1, rows.shape[2])])
    return cols.reshape(image.shape[2], image.shape[1], image.shape[0]).transpose(2, 1, 0)


def _reference_score(model, task: str, image: np.ndarray, cam: np.ndarray, explained: int) -> float:
    """One image, as gradcam/faithfulness.py documents it."""
    height, width = image.shape[:2]
    heat = tf.image.resize(cam[None, ..., None], (height, width), method="bilinear")[0, ..., 0].numpy()
    fill = _reference_blur(image, faithfulness.BLUR * min(height, width))
    copies = [image] + [
        image * (1 - w[..., None]) + fill * w[..., None]
        for w in (_reference_weights(heat, 0.2), _reference_weights(-heat, 0.2))
    ]
    shape = model.inputs[0].shape[1:]
    logits = helpers.logits_clone(model)  # the model without its last activation
    out = [logits(np.asarray(c, np.float32).reshape(1, *shape), training=False).numpy()[0] for c in copies]
    if task == "regression":
        hot, cold = abs(out[1][0] - out[0][0]), abs(out[2][0] - out[0][0])
        return (hot - cold) / max(hot, cold) if max(hot, cold) > 0 else 0.0
    if task == "classification":  # log-odds from the logits: z_c against the log-sum-exp of the others
        s = [o[explained] - np.logaddexp.reduce(np.delete(o, explained).astype(np.float64)) for o in out]
    else:
        s = [o[0] if explained == 1 else -o[0] for o in out]
    hot, cold = s[0] - s[1], s[0] - s[2]
    return (hot - cold) / max(abs(s[0]), abs(hot) + abs(cold))


@pytest.mark.parametrize("task", ["classification", "binary", "regression"])
def test_batched_scores_equal_a_per_image_reference(task):
    if task == "classification":
        model, explainer, inputs, _ = _setup("shapes-cnn")
        inputs = inputs[:10]
    else:
        model = helpers.single_output_cnn("sigmoid" if task == "binary" else None)
        explainer = Explainer(model, faithfulness=True)
        inputs = helpers.random_images(10, (32, 32, 3), seed=5)
    assert explainer.task.name == task
    explainer.normalization = "simple"  # a map divided by its maximum ranks its pixels as the raw map does
    targets = np.full(len(inputs), PREDICTED, np.int32)
    results = explainer.maps(inputs, targets)
    for i, r in enumerate(results):
        explained = explainer.classes.index(r.explained) if task != "regression" else 0
        expected = _reference_score(model, task, inputs[i], r.cam, explained)
        assert r.faithfulness == pytest.approx(expected, abs=2e-4), i


# --- The true class's map of a mistake. ---


def test_a_mistakes_true_class_map_equals_explaining_that_class():
    _, explainer, _, _ = _setup("shapes-cnn")
    images, _, _ = helpers.shapes_test_set(grey=True)
    images = images[:12]
    predicted = [r.label for r in explainer.explain(images)]
    labels = [
        predicted[i] if i % 3 == 0 else SHAPE_CLASSES[(SHAPE_CLASSES.index(predicted[i]) + i) % 3] for i in range(12)
    ]
    results = explainer.explain(images, labels=labels)
    for i, (r, label) in enumerate(zip(results, labels, strict=True)):
        if label == r.label:
            assert r.contrast is None, i
            continue
        expected = explainer.explain([images[i]], target_class=label)[0]
        assert r.contrast.explained == label and r.explained == r.label
        np.testing.assert_allclose(r.contrast.cam, expected.cam, atol=1e-5, err_msg=str(i))
        np.testing.assert_allclose(r.contrast.heatmap, expected.heatmap, atol=1e-5)
        assert r.contrast.faithfulness == pytest.approx(expected.faithfulness, abs=2e-4), "scored for its class"
        assert np.abs(r.contrast.cam - r.cam).mean() > 0.05, "a map of another class"


def test_binary_mistakes_get_the_other_sign_and_regression_gets_no_true_class_map():
    images = [(255 * x).astype(np.uint8) for x in helpers.random_images(6, (32, 32, 3), seed=8)]
    binary = Explainer(helpers.single_output_cnn("sigmoid"))
    predicted = [r.label for r in binary.explain(images)]
    other = ["1" if p == "0" else "0" for p in predicted]
    results = binary.explain(images, labels=other)
    for image, r, label in zip(images, results, other, strict=True):
        expected = binary.explain([image], target_class=label)[0]
        np.testing.assert_allclose(r.contrast.cam, expected.cam, atol=1e-5)
    regression = Explainer(helpers.single_output_cnn(None))
    assert all(r.contrast is None for r in regression.explain(images, labels=["100"] * len(images)))


def test_faithfulness_is_measured_unless_turned_off():
    images, _, _ = helpers.shapes_test_set()
    model = load_model(SHAPES / "model.h5")
    off = Explainer(model, SHAPE_CLASSES, resize_mode="fit-short", faithfulness=False)
    on = Explainer(model, SHAPE_CLASSES, resize_mode="fit-short")
    assert [r.faithfulness for r in off.explain(images[:3])] == [None] * 3
    assert all(-1 <= r.faithfulness <= 1 for r in on.explain(images[:3]))


def test_reference_blur_is_opencvs():
    """The reference's own blur matches OpenCV's, so the reference checks the rest of the arithmetic."""
    image = helpers.random_images(1, (64, 64, 3))[0]
    np.testing.assert_allclose(_reference_blur(image, 4.0), cv2.GaussianBlur(image, (0, 0), 4.0), atol=1e-5)


@pytest.mark.parametrize("shape", [(64, 64, 3), (48, 32, 1), (96, 96, 3)])
def test_the_blur_is_opencvs_gaussian_with_mirrored_borders(shape):
    images = helpers.random_images(2, shape, seed=3)
    sigma = faithfulness.BLUR * min(shape[:2])
    expected = np.stack([cv2.GaussianBlur(x, (0, 0), sigma).reshape(shape) for x in images])
    np.testing.assert_allclose(faithfulness.blurred(images).numpy(), expected, atol=1e-5)
