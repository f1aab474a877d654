"""Attribution over the input features of models without convolutions (gradcam.engine.attribution),
checked against what the mathematics says independently of the code: a linear model's exact
attributions, and the completeness of Integrated and Expected Gradients on a trained ReLU network."""

import numpy as np
import pytest
import tf_keras as keras

from gradcam import Explainer
from gradcam.engine import faithfulness
from gradcam.errors import GradcamError
from tests import motion
from tests.fixtures.make_motion_family import FOLDER, Member

WIDE = Member("wide", "spectral-analysis", "distractor")


def _linear(values: int = 5, classes: int = 2, seed: int = 0):
    keras.utils.set_random_seed(seed)
    model = keras.Sequential(
        [keras.layers.InputLayer(input_shape=(values,)), keras.layers.Dense(classes, activation="softmax")]
    )
    model.layers[-1].set_weights(
        [np.random.default_rng(seed).normal(0, 1, (values, classes)).astype(np.float32), np.zeros(classes, np.float32)]
    )
    return model


@pytest.mark.parametrize("method", ["integrated-gradients", "gradient-x-input", "expected-gradients"])
def test_a_linear_models_attributions_are_its_weights_times_the_difference_from_the_start(method):
    """Two classes: a class's log-odds, z_c - z_other, is linear in the input, so its attribution is exactly
    (w_c - w_other) times the difference from the baseline, or from the references' mean (Expected
    Gradients averages over them)."""
    model = _linear()
    kernel = model.layers[-1].get_weights()[0]
    rng = np.random.default_rng(1)
    x, baseline = rng.normal(0, 1, (4, 5)).astype(np.float32), rng.normal(0, 1, 5).astype(np.float32)
    references = rng.normal(0, 1, (16, 5)).astype(np.float32)
    explainer = Explainer(model, ["a", "b"], method=method, baseline=baseline, references=references)
    assert explainer.method == method and explainer.layer_name == "input" and explainer.last_conv() == {}
    targets = np.array([0, 1, 1, 0], np.int32)
    batch = explainer.cam(x.reshape(4, 5, 1, 1), targets)
    start = references.mean(axis=0) if method == "expected-gradients" else baseline
    expected = (x - start) * (kernel[:, targets] - kernel[:, 1 - targets]).T
    np.testing.assert_allclose(batch.maps[:, :, 0], expected, rtol=1e-4, atol=1e-5)
    # What the API gives: signed, each sample's scaled by its largest magnitude.
    maps = explainer.maps(x.reshape(4, 5, 1, 1), targets)
    np.testing.assert_allclose(maps[1].cam[:, 0], expected[1] / np.abs(expected[1]).max(), rtol=1e-4, atol=1e-5)


def _log_odds(explainer: Explainer, x: np.ndarray, classes: np.ndarray) -> np.ndarray:
    """Each window's log-odds of its class, by hand from the model's logits."""
    head = explainer.adapter.model.layers[-1]
    before = keras.Model(explainer.adapter.model.inputs, head.input)
    kernel, bias = head.get_weights()
    logits = before.predict(x, verbose=0) @ kernel + bias
    own = logits[np.arange(len(x)), classes]
    others = np.where(np.arange(logits.shape[1])[None] == classes[:, None], -np.inf, logits)
    return own - np.log(np.exp(others).sum(axis=1))


@pytest.mark.parametrize("method", ["integrated-gradients", "expected-gradients"])
def test_the_attributions_add_up_to_the_log_odds_above_the_start(method):
    """Completeness (Sundararajan et al.): the attributions of a ReLU network sum to its class's log-odds at
    the window less its log-odds at the baseline (Integrated Gradients, 16 steps), or less their mean over
    the reference windows (Expected Gradients, 4 steps from each), up to the path's discretisation."""
    _data, x = WIDE.held_out(20)
    references = WIDE.held_out(60)[1][-16:]
    baseline = np.median(x, axis=0)
    explainer = Explainer.from_file(WIDE.path, motion.CLASSES, method=method, baseline=baseline, references=references)
    batch = explainer.cam(x.reshape(20, -1, 1, 1), np.full(20, -1, np.int32))
    classes = batch.probabilities.argmax(axis=1)
    starts = references if method == "expected-gradients" else baseline[None]
    before = np.stack([_log_odds(explainer, starts, np.full(len(starts), c)).mean() for c in classes])
    gain = _log_odds(explainer, x, classes) - before
    totals = batch.maps[:, :, 0].sum(axis=1)
    assert np.abs(totals - gain).max() < 0.05 * np.abs(gain).max(), (totals, gain)


def test_faithfulness_deletes_features_to_the_baseline():
    """The deletions' fill is the baseline: a map's hottest 20% set to it lowers the class's evidence
    far more than its coldest 20% (random maps: about as much)."""
    _data, x = WIDE.held_out(40)
    explainer = Explainer.from_file(WIDE.path, motion.CLASSES, baseline=np.median(x, axis=0))
    maps = explainer.maps(x.reshape(40, -1, 1, 1), np.full(40, -1, np.int32))
    real = np.array([m.faithfulness for m in maps])
    adapter = explainer.adapter
    inputs = x.reshape(40, -1, 1, 1).astype(np.float32)
    out = adapter(inputs)
    noise = np.random.default_rng(2).uniform(-1, 1, (40, x.shape[1], 1)).astype(np.float32)
    classes = np.argmax(out.probabilities, axis=1).astype(np.int32)
    [random] = faithfulness.measure(
        lambda v: adapter.untapped(v).scores, adapter.task, [(inputs, noise, out.scores, classes)], adapter.path.fill
    )
    assert real.mean() > 0.9 and np.abs(random.numpy()).mean() < 0.2, (real.mean(), random.numpy())


def test_methods_are_checked_against_the_model(tmp_path):
    with pytest.raises(
        GradcamError,
        match=r"method 'gradcam': this model has no convolution; its input features are explained with integrated-grad",
    ):
        Explainer.from_file(WIDE.path, motion.CLASSES, method="gradcam")
    conv = FOLDER.parent / "audio_family" / "conv1d-mfe-lone.h5"
    with pytest.raises(
        GradcamError, match=r"method 'integrated-gradients' explains the input features of a model without convolutions"
    ):
        Explainer.from_file(conv, method="integrated-gradients")
