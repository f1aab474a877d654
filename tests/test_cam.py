"""The batched CAMs equal a per-image reference written in the style of the Keras example."""

import numpy as np
import pytest
import tf_keras

from gradcam.engine.cam import make_cam
from gradcam.engine.maps import normalize, peak
from gradcam.engine.model import ModelAdapter
from gradcam.errors import GradcamError
from tests import helpers

MODELS = {
    "plain-cnn": (lambda: helpers.plain_cnn(), ["last_conv"], "classification"),
    "nested-mobilenetv2": (lambda: helpers.nested_mobilenet(), ["mobilenetv2_0.35_96", "Conv_1"], "classification"),
    "flat-input": (lambda: helpers.flat_input_cnn(), ["last_conv"], "classification"),
    "binary": (lambda: helpers.single_output_cnn("sigmoid"), ["last_conv"], "binary"),
    "regression": (lambda: helpers.single_output_cnn(None), ["last_conv"], "regression"),
    "plain-cnn-keras2": (lambda: helpers.plain_cnn(tf_keras), ["last_conv"], "classification"),
}
METHODS = [("gradcam", "mean", "gradcam"), ("gradcam", "sum_abs", "sum_abs"), ("gradcam++", "mean", "gradcam++")]


def _inputs(adapter, n=5):
    return helpers.random_images(n, adapter.image_shape, seed=11)


def _paths(adapter) -> list[list[str]]:
    return [layer.name.split("/") for layer in adapter.layers]


# Every model and method at the last conv, and the default, which fuses three layers on MobileNetV2
# (its last conv is 3x3); layers without weights (an activation, an Add) can be explained too.
CASES = [
    *((name, "last-conv", *method) for name in MODELS for method in METHODS),
    *(("nested-mobilenetv2", "auto", *method) for method in METHODS),
    ("nested-mobilenetv2", "block_13_expand_relu", *METHODS[0]),
    ("nested-mobilenetv2", "block_12_add,block_5_add", *METHODS[0]),
]


@pytest.mark.parametrize("name,layer,method,pooling,reference", CASES, ids=lambda v: str(v))
def test_batched_cam_matches_per_image_reference(name, layer, method, pooling, reference):
    build, path, task = MODELS[name]
    model = build()
    adapter = ModelAdapter(model, layer)
    assert len(adapter.layers) == {"auto": 3, "block_12_add,block_5_add": 2}.get(layer, 1)
    if layer == "last-conv":
        assert adapter.layer_name == "/".join(path)
    assert adapter.task.name == task
    images = _inputs(adapter)
    batch = make_cam(adapter, method, pooling)(images)
    maps = normalize(batch.maps, "simple")
    # The model's own probabilities come out of the same pass.
    flat = images.reshape(len(images), -1) if adapter.flat_input else images
    np.testing.assert_allclose(batch.probabilities, model(flat, training=False).numpy(), atol=1e-5)
    for i, image in enumerate(flat):
        expected = helpers.reference_cam(model, _paths(adapter), image, None, reference, task)
        np.testing.assert_allclose(maps[i], expected, atol=1e-4, err_msg=f"{name} image {i}")


def test_frozen_layers_are_explained_too():
    """Edge Impulse freezes the MobileNetV2 base during transfer learning."""
    model = helpers.nested_mobilenet()
    model.layers[0].trainable = False
    adapter = ModelAdapter(model)
    images = _inputs(adapter, 2)
    maps = normalize(make_cam(adapter)(images).maps, "simple")
    for i in range(2):
        expected = helpers.reference_cam(model, _paths(adapter), images[i], None, "gradcam", "classification")
        np.testing.assert_allclose(maps[i], expected, atol=1e-4)
    assert maps.max() > 0


def test_target_class_changes_the_explained_score():
    model = helpers.plain_cnn()
    adapter = ModelAdapter(model)
    images = _inputs(adapter, 3)
    cam = make_cam(adapter)
    for target in range(4):
        maps = normalize(cam(images, np.full(3, target, np.int32)).maps, "simple")
        for i in range(3):
            expected = helpers.reference_cam(model, [["last_conv"]], images[i], target, "gradcam", "classification")
            np.testing.assert_allclose(maps[i], expected, atol=1e-4)


def test_binary_model_explains_the_negative_logit_for_the_negative_class():
    model = helpers.single_output_cnn("sigmoid")
    adapter = ModelAdapter(model)
    images = _inputs(adapter, 4)
    cam = make_cam(adapter)
    positive = cam(images, np.ones(4, np.int32)).maps
    negative = cam(images, np.zeros(4, np.int32)).maps
    assert not np.allclose(positive, negative)
    for i in range(4):
        expected = helpers.reference_cam(model, [["last_conv"]], images[i], 0, "gradcam", "binary")
        np.testing.assert_allclose(normalize(negative, "simple")[i], expected, atol=1e-4)


def test_the_pass_is_traced_once_for_many_batches_of_any_size():
    adapter = ModelAdapter(helpers.plain_cnn())
    cam = make_cam(adapter)
    for n in (1, 4, 7, 4):
        cam(helpers.random_images(n, adapter.image_shape, seed=n))
    assert cam._pass.experimental_get_tracing_count() == 1


def test_all_methods_give_maps_in_range():
    adapter = ModelAdapter(helpers.plain_cnn())
    images = _inputs(adapter)
    for method in ("gradcam", "gradcam++", "hirescam", "layercam"):
        maps = normalize(make_cam(adapter, method)(images).maps, "percentile")
        assert maps.shape == (5, 13, 13)
        assert np.isfinite(maps).all() and maps.min() >= 0 and maps.max() <= 1


def test_percentile_normalisation_scales_by_the_99th_percentile_and_clips():
    maps = np.zeros((1, 10, 10), np.float32)
    maps[0] = np.arange(100).reshape(10, 10)
    maps[0, 9, 9] = 1000.0  # one extreme cell
    simple = normalize(maps, "simple")
    percentile = normalize(maps, "percentile")
    p99 = np.percentile(maps[0], 99)
    np.testing.assert_allclose(simple[0], maps[0] / 1000.0, rtol=1e-6)
    np.testing.assert_allclose(percentile[0], np.clip(maps[0] / p99, 0, 1), rtol=1e-6)
    assert percentile[0, 9, 9] == 1.0 and percentile[0, 5, 5] > 5 * simple[0, 5, 5]


def test_all_zero_map_stays_zero_without_nan():
    maps = np.zeros((2, 4, 4), np.float32)
    maps[1, 0, 0] = 3.0  # 99th percentile is 0 here, the peak is not
    for mode in ("simple", "percentile"):
        out = normalize(maps, mode)
        assert np.isfinite(out).all()
        assert (out[0] == 0).all()
        assert out[1, 0, 0] == 1.0


def test_unknown_method_and_pooling_are_clear_errors():
    adapter = ModelAdapter(helpers.plain_cnn())
    with pytest.raises(GradcamError, match="method 'scorecam': expected one of gradcam"):
        make_cam(adapter, "scorecam")
    with pytest.raises(GradcamError, match="pooling 'max': expected one of mean, sum_abs"):
        make_cam(adapter, "gradcam", "max")
    with pytest.raises(GradcamError, match="heatmap normalization 'minmax'"):
        normalize(np.zeros((1, 2, 2)), "minmax")


def test_peak_is_the_centre_of_the_hottest_region():
    plateau = np.zeros((10, 12), np.float32)
    plateau[4:7, 2:5] = 1.0  # a clipped 3x3 plateau: argmax would say (2, 4), its corner
    assert peak(plateau) == pytest.approx((3.0, 5.0))
    two = np.zeros((10, 12), np.float32)
    two[0, 0] = 1.0  # the single hottest pixel...
    two[5:8, 6:11] = 0.95  # ...loses to a region above 90% of it that holds far more heat
    assert peak(two) == pytest.approx((8.0, 6.0))
    assert peak(np.zeros((4, 4), np.float32)) is None
