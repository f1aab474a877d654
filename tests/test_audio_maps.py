"""Maps of audio models over their features: Edge Impulse's default keyword-spotting model (1-D
convolutions over time) and a 2-D variant (time x frequency), trained (tests/fixtures/make_keywords.py)
on the synthetic keyword set of tests/audio.py: MFE features of 1 s clips, each a burst of its class's
band among two sounds of no class.

A 1-D map runs along time (frames x 1), a 2-D one over time and frequency. The method for feature
models is HiResCAM: their heads flatten the map and weigh every position apart, and Grad-CAM's
averaged gradients lose where (measured below)."""

import functools

import cv2
import numpy as np
import pytest
import tensorflow as tf
import tf_keras

from gradcam.engine import faithfulness
from gradcam.engine.cam import make_cam
from gradcam.engine.model import ModelAdapter
from gradcam.engine.tasks import PREDICTED
from gradcam.engine.trust import TRUST_THRESHOLD
from gradcam.explainer import Explainer
from tests import audio, helpers
from tests.helpers import ROOT

FIXTURES = ROOT / "tests" / "fixtures"
SHAPE = (audio.FRAMES, audio.FILTERS)


@functools.cache
def model(kind: str):
    return tf_keras.models.load_model(FIXTURES / f"keywords_{kind}.h5")


@functools.cache
def keyword_windows(seed: int = 3, n: int = 300) -> tuple[audio.Clips, np.ndarray]:
    data = audio.clips(n, seed)
    return data, audio.features(data)


def _maps(net, x: np.ndarray, method: str) -> tuple[np.ndarray, np.ndarray]:
    """Each window's map at the features' size (frames x filters), and the predicted classes."""
    batch = make_cam(ModelAdapter(net), method)(x.reshape(len(x), *SHAPE, 1))
    maps = np.stack([cv2.resize(m, SHAPE[::-1], interpolation=cv2.INTER_LINEAR) for m in batch.maps])
    return maps, batch.probabilities.argmax(axis=1)


def _peaks_in_bursts(maps: np.ndarray, spans: np.ndarray) -> np.ndarray:
    """Per window: whether the map's peak frame lies in its burst, one frame of slack either side."""
    frames = maps.max(axis=2).argmax(axis=1)
    return (frames >= spans[:, 0] - 1) & (frames <= spans[:, 1] + 1)


@pytest.mark.parametrize(("kind", "layer"), [("1d", ("Conv1D", "50x1")), ("2d", ("Conv2D", "50x20"))])
def test_the_default_layer_of_an_audio_model_and_its_map_shape(kind, layer):
    adapter = ModelAdapter(model(kind))
    [explained] = adapter.layers
    assert adapter.image_shape == (*SHAPE, 1) and adapter.flat_input
    assert (explained.kind, explained.size) == layer
    maps = make_cam(adapter, "hirescam")(keyword_windows()[1][:3].reshape(3, *SHAPE, 1)).maps
    height, width = map(int, layer[1].split("x"))
    assert maps.shape == (3, height, width)


@pytest.mark.parametrize("kind", ["1d", "2d"])
def test_the_peak_frame_lies_in_the_burst_and_not_once_the_weights_are_randomised(kind):
    """Over correct windows, >= 85% of peaks in the burst; re-initialised copies (the mean of eight,
    as one draw's share swings by +-0.15) <= 45%: chance, with three sounds in a clip, is about a third."""
    data, x = keyword_windows()
    spans = audio.burst_frames(data)
    maps, predicted = _maps(model(kind), x, "hirescam")
    correct = predicted == data.labels
    assert correct.mean() >= 0.9, "a good classifier"
    share = _peaks_in_bursts(maps[correct], spans[correct]).mean()
    random_shares = [
        _peaks_in_bursts(_maps(helpers.randomised(model(kind), x, seed), x, "hirescam")[0], spans).mean()
        for seed in range(8)
    ]
    print(kind, "peak frame in the burst", share, "re-initialised", random_shares)
    assert share >= 0.85
    assert np.mean(random_shares) <= 0.45


def test_a_2d_models_peak_band_is_the_classs_band():
    """The peak's mel filter has its centre in the burst's band for >= 80% of correct windows."""
    data, x = keyword_windows()
    maps, predicted = _maps(model("2d"), x, "hirescam")
    centres = audio.mel_points()[1:-1]
    correct = np.flatnonzero(predicted == data.labels)
    filters = [np.unravel_index(maps[i].argmax(), maps[i].shape)[1] for i in correct]
    bands = [audio.BANDS[audio.CLASSES[data.labels[i]]] for i in correct]
    share = np.mean([low <= centres[f] <= high for f, (low, high) in zip(filters, bands, strict=True)])
    print("peak band in the class's band", share)
    assert share >= 0.8


def test_gradcam_loses_where_on_a_2d_audio_model_which_is_why_feature_models_use_hirescam():
    data, x = keyword_windows()
    spans = audio.burst_frames(data)
    gradcam, _ = _maps(model("2d"), x, "gradcam")
    hirescam, _ = _maps(model("2d"), x, "hirescam")
    shares = _peaks_in_bursts(gradcam, spans).mean(), _peaks_in_bursts(hirescam, spans).mean()
    print("2-D peak in the burst: Grad-CAM", shares[0], "HiResCAM", shares[1])
    assert shares[0] <= 0.5 <= shares[1]


@pytest.mark.parametrize("kind", ["1d", "2d"])
def test_a_more_confident_model_has_the_same_maps(kind):
    """Logits x30 saturate the probabilities; the maps, taken on the logits, stay."""
    x = keyword_windows()[1][:40]
    base, _ = _maps(model(kind), x, "hirescam")
    confident = helpers.confident(model(kind), 30)
    assert np.median(confident.predict(x, verbose=0).max(axis=1)) > 0.999999, "saturated probabilities"
    maps, _ = _maps(confident, x, "hirescam")
    peaks = base.max(axis=(1, 2), keepdims=True)
    np.testing.assert_allclose(maps / (30 * peaks), base / peaks, atol=1e-4)


@pytest.mark.parametrize("kind", ["1d", "2d"])
@pytest.mark.parametrize("method", ["gradcam", "hirescam"])
def test_batched_maps_equal_the_per_window_reference(kind, method):
    net = model(kind)
    x = keyword_windows()[1][:4]
    adapter = ModelAdapter(net)
    maps = make_cam(adapter, method)(x.reshape(len(x), *SHAPE, 1)).maps
    paths = [layer.name.split("/") for layer in adapter.layers]
    for i, window in enumerate(x):
        expected = helpers.reference_cam(net, paths, window, None, method, "classification")
        got = maps[i] / maps[i].max() if maps[i].max() > 0 else maps[i]
        np.testing.assert_allclose(got, expected.reshape(got.shape), atol=1e-4, err_msg=f"window {i}")


def test_a_windows_background_is_each_columns_median_over_its_frames():
    x = keyword_windows()[1][:5].reshape(5, *SHAPE, 1)
    expected = np.broadcast_to(np.median(x, axis=1, keepdims=True), x.shape)
    np.testing.assert_allclose(faithfulness.background(tf.constant(x)).numpy(), expected, atol=1e-6)


def _trust(net, x: np.ndarray, fill: str) -> np.ndarray:
    explainer = Explainer(net, audio.CLASSES, method="hirescam", fill=fill)
    return np.array([m.faithfulness for m in explainer.maps(x, np.full(len(x), PREDICTED, np.int32))])


@pytest.mark.parametrize("kind", ["1d", "2d"])
def test_faithfulness_trusts_the_trained_models_maps_and_not_a_re_initialised_ones(kind):
    """Deleting a sound (its frames set to the band's background) takes the class's evidence away;
    deleting as much background does not. A blur leaves most of a 15-25 frame sound in place: the
    1-D model's right maps then score low (measured: 0.28)."""
    x = keyword_windows()[1][:150].reshape(150, *SHAPE, 1)
    trained = _trust(model(kind), x, "background")
    confident = _trust(helpers.confident(model(kind), 30), x, "background")
    random = _trust(helpers.randomised(model(kind), x.reshape(len(x), -1)), x, "background")
    share = [np.mean(s >= TRUST_THRESHOLD) for s in (trained, confident, random)]
    print(kind, "mean", trained.mean(), confident.mean(), random.mean(), "trusted", share)
    assert share[0] >= 0.8 and trained.mean() >= 0.7
    assert abs(confident.mean() - trained.mean()) <= 0.1 and abs(share[1] - share[0]) <= 0.1
    assert share[2] <= 0.3 and random.mean() <= 0.4  # as for images (tests/test_faithfulness.py)


def test_a_coarse_1d_model_fuses_finer_layers_along_time_as_the_reference_does():
    """MFCC's 40 frames pooled three times leave 5 cells: the auto rule fuses the stage above, by
    resolution along time as for images."""
    k = tf_keras.layers
    tf_keras.utils.set_random_seed(1)
    convs = [k.Conv1D(n, 3, padding="same", activation="relu") for n in (8, 16, 16, 16)]
    pools = [k.MaxPooling1D(2, padding="same") for _ in range(3)]
    body = [layer for pair in zip(convs, pools, strict=False) for layer in pair] + [convs[-1]]
    net = tf_keras.Sequential(
        [k.InputLayer(input_shape=(520,)), k.Reshape((40, 13)), *body, k.Flatten(), k.Dense(3, activation="softmax")]
    )
    adapter = ModelAdapter(net)
    assert [(layer.kind, layer.size) for layer in adapter.layers] == [("Conv1D", "5x1"), ("Conv1D", "10x1")]
    x = np.random.default_rng(0).normal(size=(3, 40, 13, 1)).astype(np.float32)
    maps = make_cam(adapter, "hirescam")(x).maps
    paths = [layer.name.split("/") for layer in adapter.layers]
    for i in range(len(x)):
        expected = helpers.reference_cam(net, paths, x[i].reshape(-1), None, "hirescam", "classification")
        np.testing.assert_allclose(maps[i] / maps[i].max(), expected.reshape(maps[i].shape), atol=1e-4)


def test_a_model_that_adds_noise_before_its_reshape_is_read_as_edge_impulse_builds_it():
    """Edge Impulse's audio models begin with GaussianNoise (augmentation, an identity at inference)."""
    k = tf_keras.layers
    noisy = tf_keras.Sequential(
        [k.InputLayer(input_shape=(SHAPE[0] * SHAPE[1],)), k.GaussianNoise(0.45), *model("1d").layers]
    )
    adapter = ModelAdapter(noisy)
    assert adapter.image_shape == (*SHAPE, 1) and adapter.flat_input
    x = keyword_windows()[1][:4].reshape(4, *SHAPE, 1)
    maps = make_cam(adapter, "hirescam")(x).maps
    np.testing.assert_allclose(maps, make_cam(ModelAdapter(model("1d")), "hirescam")(x).maps, rtol=1e-5, atol=1e-6)
