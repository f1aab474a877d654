"""Loading Edge Impulse's models, finding the layer to explain, working out the task."""

import zipfile

import keras
import numpy as np
import pytest
import tf_keras

from gradcam.engine.formats import load_model
from gradcam.engine.model import ModelAdapter
from gradcam.errors import GradcamError
from gradcam.explainer import Explainer
from tests import helpers


@pytest.fixture(scope="module")
def nested_h5(tmp_path_factory):
    """A Keras 2 .h5 of MobileNetV2 0.35 nested in a Sequential, as Edge Impulse writes it."""
    path = tmp_path_factory.mktemp("models") / "model.h5"
    helpers.nested_mobilenet(tf_keras).save(path)
    return path


def test_keras2_h5_with_nested_mobilenet_loads_and_explains(nested_h5):
    with pytest.raises(Exception, match="BatchNormalization"):
        keras.models.load_model(nested_h5, compile=False)  # why tf_keras is needed
    explainer = Explainer.from_file(nested_h5, ["a", "b", "c"])
    assert explainer.last_conv() == {"name": "mobilenetv2_0.35_96/Conv_1", "size": "3x3"}
    assert [layer["size"] for layer in explainer.layers()] == ["6x6", "12x12", "24x24"]
    images = [np.random.default_rng(i).integers(0, 256, (120, 160, 3), dtype=np.uint8) for i in range(3)]
    results = explainer.explain(images)
    reference = load_model(nested_h5).predict(np.stack([explainer.prepare(im)[0] for im in images]), verbose=0)
    for result, probabilities, image in zip(results, reference, images, strict=True):
        assert result.label == "abc"[int(np.argmax(probabilities))]
        assert result.confidence == pytest.approx(float(probabilities.max()), abs=1e-5)
        assert result.heatmap.shape == image.shape[:2]
        assert result.overlay().shape == image.shape


def test_studio_zip_holding_model_h5_loads(nested_h5, tmp_path):
    archive = tmp_path / "trained.h5.zip"
    with zipfile.ZipFile(archive, "w") as z:
        z.write(nested_h5, "model.h5")
    assert load_model(archive).layers[0].name == "mobilenetv2_0.35_96"


def test_keras3_file_loads(tmp_path):
    path = tmp_path / "model.keras"
    helpers.plain_cnn(keras).save(path)
    assert ModelAdapter(load_model(path)).layer_name == "last_conv"


def test_a_model_without_convolution_is_explained_at_its_input():
    model = keras.Sequential(
        [keras.Input((8,)), keras.layers.Dense(4, name="hidden"), keras.layers.Dense(2, activation="softmax")]
    )
    adapter = ModelAdapter(model)
    assert adapter.path is not None and adapter.image_shape == (8, 1, 1) and adapter.layer_name == "input"
    assert adapter.last_conv is None
    with pytest.raises(
        GradcamError, match=r"no convolution layer to explain \(it has no layer with a 1-D or 2-D output\)$"
    ):
        ModelAdapter(model, layer="hidden")


def test_tasks_are_told_apart():
    assert ModelAdapter(helpers.plain_cnn()).task.name == "classification"
    assert ModelAdapter(helpers.single_output_cnn("sigmoid")).task.name == "binary"
    assert ModelAdapter(helpers.single_output_cnn(None)).task.name == "regression"


def test_scores_are_taken_before_softmax_without_changing_the_model():
    model = helpers.plain_cnn()
    adapter = ModelAdapter(model)
    x = helpers.random_images(3, (32, 32, 3))
    out = adapter(x)
    np.testing.assert_allclose(keras.ops.softmax(out.scores).numpy(), model(x).numpy(), atol=1e-6)
    assert model.layers[-1].activation.__name__ == "softmax"


def test_multi_output_model_is_a_clear_error():
    inputs = keras.Input((16, 16, 3))
    features = keras.layers.Conv2D(4, 3)(inputs)
    flat = keras.layers.Flatten()(features)
    model = keras.Model(inputs, [keras.layers.Dense(2)(flat), keras.layers.Dense(1)(flat)])
    with pytest.raises(GradcamError, match="1 inputs and 2 outputs; only single-input, single-output"):
        ModelAdapter(model)


def test_flat_input_takes_its_image_shape_from_the_reshape_layer():
    adapter = ModelAdapter(helpers.flat_input_cnn(shape=(20, 30, 1)))
    assert adapter.flat_input and adapter.image_shape == (20, 30, 1)


def test_flat_input_without_reshape_needs_the_impulse_shape():
    model = keras.Sequential(
        [
            keras.Input((48,)),
            keras.layers.Lambda(lambda x: keras.ops.reshape(x, (-1, 4, 4, 3))),
            keras.layers.Conv2D(2, 3, name="c"),
            keras.layers.Flatten(),
            keras.layers.Dense(2, activation="softmax"),
        ]
    )
    with pytest.raises(GradcamError, match="flat input of 48 values and does not reshape it"):
        ModelAdapter(model)
    assert ModelAdapter(model, impulse_shape=(4, 4, 3)).image_shape == (4, 4, 3)


@pytest.mark.parametrize(
    "content,message",
    [(b"", "cannot load the Keras model"), (b"not a model at all", "cannot load the Keras model")],
)
def test_unreadable_model_is_a_clear_error(tmp_path, content, message):
    path = tmp_path / "broken.h5"
    path.write_bytes(content)
    with pytest.raises(GradcamError, match=f"broken.h5: {message}"):
        load_model(path)


def test_missing_model_and_zip_without_model(tmp_path):
    with pytest.raises(GradcamError, match="nowhere.h5: model file not found"):
        load_model(tmp_path / "nowhere.h5")
    archive = tmp_path / "empty.zip"
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("readme.txt", "hi")
    with pytest.raises(GradcamError, match="empty.zip: the zip holds no model.h5"):
        load_model(archive)


def test_class_count_must_match_the_outputs():
    with pytest.raises(GradcamError, match=r"2 class names \(a, b\) for a classification model with 4 outputs"):
        Explainer(helpers.plain_cnn(), ["a", "b"])
