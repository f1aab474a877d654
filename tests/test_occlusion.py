"""The model's own evidence (gradcam.engine.occlusion) and a map's agreement with it
(gradcam.engine.agreement.evidence_at_peak): the parts against their geometry, the falls against a
linear model's exact ones, LiteRT's against Keras', and the sanity check of trained against
re-initialised models."""

import numpy as np
import pytest
import tensorflow as tf
import tf_keras

from gradcam.engine import occlusion
from gradcam.engine import parts as split
from gradcam.engine.agreement import AGREES, evidence_at_peak
from gradcam.engine.faithfulness import blurred
from gradcam.engine.formats import adapter_for, load_model
from gradcam.engine.tasks import Classification
from gradcam.explainer import Explainer
from tests import helpers
from tests.helpers import ROOT, SHAPE_CLASSES

FIXTURES = ROOT / "tests" / "fixtures"


def test_an_image_s_parts_are_windows_of_a_sixth_at_a_twelfth_flush_with_the_edges():
    parts = split.patches(96, 96)
    assert len(parts) == 11 * 11 and parts.shape == (12, 12)
    sizes = parts.masks.reshape(len(parts), -1).sum(axis=1)
    assert (sizes == 16 * 16).all()
    rows = sorted({int(np.flatnonzero(m.any(axis=1))[0]) for m in parts.masks})
    assert rows == list(range(0, 81, 8))  # 0, 8, ..., 80: the last window ends on the edge
    # Each cell (8 x 8 pixels) is hidden whole by the windows over it: 2 per axis, 1 at the edges.
    per_axis = np.array([1] + [2] * 10 + [1])
    assert np.allclose(parts.cover.sum(axis=0), np.outer(per_axis, per_axis))
    odd = split.patches(160, 120)
    assert len(odd) == 121 and odd.shape == (12, 12)
    assert odd.masks[-1][-1, -1] == 1 and odd.masks[0][0, 0] == 1


def test_a_flat_vector_s_parts_are_its_feature_groups():
    index = np.array([0, 0, 1, 1, 1, -1, 2])
    parts = split.groups(index)
    assert parts.masks.shape == (3, 7, 1) and parts.shape == (7, 1)
    assert parts.masks[:, :, 0].tolist() == [[1, 1, 0, 0, 0, 0, 0], [0, 0, 1, 1, 1, 0, 0], [0, 0, 0, 0, 0, 0, 1]]
    maps = parts.to_maps(np.array([[2.0, -1.0, 5.0]]))
    assert maps[0, :, 0].tolist() == [2, 2, -1, -1, -1, 0, 5]  # padding, hidden by no part: 0


def test_windows_of_features_follow_each_block():
    # MFCC 4 frames x 3 cepstra (time only), then MFE 6 frames x 6 filters (time x thirds), seen as (8, 6).
    parts = split.features([(4, 3), (6, 6)], (8, 6), ["mfcc", "mfe"])
    flat = parts.masks.reshape(len(parts), -1)
    mfcc, mfe = flat[:, :12], flat[:, 12:]
    only_mfcc = flat[mfcc.any(axis=1)]
    assert not only_mfcc[:, 12:].any(), "a part hides one block"
    frames = [m.reshape(4, 3)[np.flatnonzero(m.reshape(4, 3).any(axis=1))] for m in only_mfcc[:, :12]]
    assert all(f.all() for f in frames), "MFCC: whole frames"
    bands = {tuple(np.flatnonzero(m.reshape(6, 6).any(axis=0))) for m in mfe[mfe.any(axis=1)]}
    assert bands == {(0, 1), (2, 3), (4, 5)}


def _linear(seed: int = 0):
    """A linear model of two classes: a 1x1 convolution of 2 channels, then a Dense layer without softmax."""
    tf_keras.utils.set_random_seed(seed)
    layers = tf_keras.layers
    return tf_keras.Sequential([tf_keras.Input((12, 12, 3)), layers.Conv2D(2, 1), layers.Flatten(), layers.Dense(2)])


def test_the_falls_are_a_linear_model_s_exact_ones():
    """Two classes and no softmax: the evidence of class c is z_c - z_other, linear in the input, so hiding
    part k takes (w_c - w_other) . ((x - fill) * mask_k) away, w the model's weights composed in NumPy."""
    model = _linear()
    adapter = adapter_for(model, "auto", (12, 12, 3))
    parts = split.patches(12, 12)
    x = np.random.default_rng(1).random((3, 12, 12, 3)).astype(np.float32)
    fill = blurred(tf.constant(x)).numpy()
    evidence = occlusion.Evidence(adapter, Classification(), parts, blurred)
    classes = [0, 1, 1]
    falls = evidence.falls(x, classes, np.arange(3), adapter.logits(x))
    conv = model.layers[0].get_weights()[0][0, 0]  # (3 inputs, 2 channels)
    dense = model.layers[-1].get_weights()[0].reshape(12, 12, 2, 2)  # (row, column, channel, class)
    composed = np.einsum("ik,rwko->rwio", conv, dense)  # (row, column, input channel, class)
    for i, c in enumerate(classes):
        w = composed[..., c] - composed[..., 1 - c]
        expected = [(w * (x[i] - fill[i]) * m[:, :, None]).sum() for m in parts.masks]
        np.testing.assert_allclose(falls[i], expected, rtol=1e-4, atol=1e-4)


def test_litert_s_evidence_is_the_keras_model_s_for_a_float32_file():
    model = load_model(FIXTURES / "mobilenetv2_96.h5")
    keras = Explainer(model, SHAPE_CLASSES, resize_mode="fit-short", faithfulness=False)
    twin = Explainer(helpers.converted(model), SHAPE_CLASSES, resize_mode="fit-short", faithfulness=False)
    images, _labels, _boxes = helpers.shapes_test_set()
    x = np.stack([keras.prepare(image)[0] for image in images[:4]])
    maps = [e.evidence.maps(x, [0, 1, 2, 0], np.arange(4), e.adapter.logits(x)) for e in (keras, twin)]
    np.testing.assert_allclose(maps[0], maps[1], atol=1e-3 * np.abs(maps[0]).max())


def test_evidence_at_peak_reads_the_reference_under_the_map_s_peak():
    reference = np.zeros((12, 12))
    reference[2:4, 8:10], reference[8:10, 2:4] = 4.0, 1.0
    cam = np.zeros((6, 6))
    cam[1, 4] = 1.0  # cell (1, 4) of 6 x 6 covers reference cells (2..3, 8..9)
    assert evidence_at_peak(cam, reference) == 1.0
    cam[1, 4], cam[4, 1] = 0.0, 1.0  # over reference cells (8..9, 2..3)
    assert evidence_at_peak(cam, reference) == pytest.approx(0.25)
    reference[8:10, 2:4] = -3.0  # hiding there raises the score: no evidence at all
    assert evidence_at_peak(cam, reference) == 0.0
    assert evidence_at_peak(np.zeros((6, 6)), reference) is None  # a blank map
    assert evidence_at_peak(cam, -np.abs(reference)) is None  # no part lowers the score
    along_time = np.zeros((12, 1))
    along_time[2, 0] = 1.0  # a map of frames reads each frame's largest fall
    assert evidence_at_peak(along_time, reference) == 1.0


@pytest.fixture(scope="module")
def family():
    """The MobileNetV2 96 fixture, its test set and a re-initialised copy."""
    model = load_model(FIXTURES / "mobilenetv2_96.h5")
    explainer = Explainer(model, SHAPE_CLASSES, resize_mode="fit-short", faithfulness=False)
    images, labels, boxes = helpers.shapes_test_set()
    images, labels, boxes = images[::4], labels[::4], boxes[::4]
    x = np.stack([explainer.prepare(image)[0] for image in images])
    return model, explainer, x, np.array([SHAPE_CLASSES.index(label) for label in labels]), boxes


def _agreement(model, x, truths, reference) -> float:
    """The share of Grad-CAM maps (of the true class) that agree with the reference."""
    explainer = Explainer(model, SHAPE_CLASSES, resize_mode="fit-short", faithfulness=False, method="gradcam")
    maps = explainer.run(x, truths.astype(np.int32)).maps
    return float(np.mean([(evidence_at_peak(m, r) or 0) >= AGREES for m, r in zip(maps, reference, strict=True)]))


def test_trained_maps_agree_with_the_evidence_and_re_initialised_ones_at_chance(family):
    """Adebayo et al.'s sanity check, extended to the reference: the trained model's Grad-CAM maps agree with
    its own evidence on most images (measured 0.77 on the 120), a re-initialised copy's only at chance (0.05)."""
    model, explainer, x, truths, _boxes = family
    reference = explainer.evidence.maps(x, list(truths), np.arange(len(x)), explainer.adapter.logits(x))
    trained = _agreement(model, x, truths, reference)
    random = _agreement(helpers.randomised(model, x), x, truths, reference)
    chance = float(np.mean([(r >= AGREES * r.max()).mean() for r in reference if r.max() > 0]))
    print(f"agreement with the trained model's evidence: trained {trained:.2f}, re-initialised {random:.2f}")
    print(f"chance (a random point): {chance:.2f}")
    assert trained >= 0.65
    assert random <= chance + 0.1


def test_occlusion_maps_are_the_evidence_and_point_at_the_object(family):
    model, _explainer, _x, truths, _boxes = family
    images, _labels, all_boxes = helpers.shapes_test_set()
    shown = Explainer(model, SHAPE_CLASSES, resize_mode="fit-short", method="occlusion")
    results = shown.explain(images[::4], labels=[SHAPE_CLASSES[t] for t in truths])
    assert shown.layer_name == "input" and shown.resolution == (12, 12)
    assert all(r.cam.shape == (12, 12) and r.evidence is None for r in results)
    pointing = np.mean([helpers.pointing(r, b) for r, b in zip(results, all_boxes[::4], strict=True)])
    faithful = np.mean([r.faithfulness for r in results])
    print(f"occlusion: pointing {pointing:.2f}, mean faithfulness {faithful:.2f}")
    assert pointing >= 0.7 and faithful >= 0.5
    mistakes = [r for r, t in zip(results, truths, strict=True) if r.label != SHAPE_CLASSES[t]]
    assert all(r.contrast is not None and r.contrast.cam.shape == (12, 12) for r in mistakes)


def test_the_memo_of_hidden_scores_keeps_its_byte_limit_dropping_the_oldest():
    memo = occlusion.Memo(limit=3 * 400)
    for i in range(5):
        memo.keep(bytes([i]), np.full(100, i, np.float32))  # 400 bytes each
    assert [k[0] for k in memo.kept] == [2, 3, 4] and memo.size == 1200
    assert bytes([1]) not in memo and memo[bytes([4])][0] == 4
    memo.keep(b"big", np.zeros(1000, np.float32))  # larger than the limit alone: kept, the rest dropped
    assert list(memo.kept) == [b"big"] and memo.size == 4000
