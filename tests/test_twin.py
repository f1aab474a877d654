"""The TFLite twin: a TFLite model (float32 or int8) explained from its own arithmetic.

Checked against LiteRT (the outputs), against the Keras model it was converted from (float32: the
same layers and maps), on trained fixtures of Edge Impulse's architectures (int8 maps point at the
object; a re-initialised copy's do not), and on real Edge Impulse files from ../shared/real.
"""

import json
import zipfile

import cv2
import numpy as np
import pytest
import tensorflow as tf
import tf_keras
from ai_edge_litert.interpreter import Interpreter

from gradcam.engine import tflite_graph
from gradcam.engine.agreement import ELSEWHERE, map_agreement
from gradcam.engine.formats import adapter_for, load_model
from gradcam.engine.tflite import TfliteModel
from gradcam.errors import GradcamError
from gradcam.explainer import Explainer
from tests import helpers
from tests.helpers import ROOT, SHAPE_CLASSES, open_report

FIXTURES = ROOT / "tests" / "fixtures"
REAL = ROOT.parent / "shared" / "real"
real = pytest.mark.skipif(not REAL.is_dir(), reason="../shared/real (Edge Impulse's real files) is absent")


def _steps_apart(graph: tflite_graph.Graph, inputs: np.ndarray) -> np.ndarray:
    """Per sample, how far the twin's outputs lie from LiteRT's: in output quantization steps
    (int8), or relative to the sample's largest output (float32)."""
    adapter = adapter_for(graph)
    twin = adapter.predict(inputs).reshape(len(inputs), -1)
    litert = TfliteModel.of(graph).predict(inputs)
    out = graph.tensors[graph.output]
    gap = np.abs(twin - litert).max(axis=1)
    return gap / out.scale[0] if out.quantized else gap / np.abs(litert).max(axis=1)


def _short(name: str) -> str:
    """A twin's layer name without the outer model's scope (`sequential/`), as Keras names it."""
    return ",".join(part.split("/", 1)[1] if part.count("/") else part for part in name.split(","))


@pytest.mark.parametrize(
    ("name", "path"),
    [
        ("mobilenetv2_96", FIXTURES / "mobilenetv2_96.h5"),
        ("mobilenetv1_96_gray", FIXTURES / "mobilenetv1_96_gray.h5"),
        ("keywords_1d", FIXTURES / "keywords_1d.h5"),
        ("keywords_2d", FIXTURES / "keywords_2d.h5"),
    ],
)
def test_a_float32_twin_explains_what_its_keras_model_explains(name, path):
    model = load_model(path)
    keras = Explainer(model, faithfulness=False)
    twin = Explainer(helpers.converted(model), faithfulness=False)
    assert _short(twin.layer_name) == keras.layer_name.removeprefix("sequential/")
    if "keywords" in name:
        inputs = np.random.default_rng(0).random((16, *keras.adapter.image_shape), np.float32)
    else:
        images, _labels, _boxes = helpers.shapes_test_set(luminance="gray" in name)
        inputs = np.stack([keras.prepare(image)[0] for image in images[:16]])
    a, b = keras.run(inputs), twin.run(inputs)
    np.testing.assert_allclose(a.probabilities, b.probabilities, atol=1e-5)
    # Float32 rounding apart; a unit whose pre-activation sits on a ReLU's kink in one graph and not in the
    # other flips its gradient, which moves a few cells of one map (0.9% at one cell of one of the 16 images
    # of MobileNetV2 96): every cell but those within 1e-3, none past 1e-2.
    differences = np.abs(a.maps - b.maps)
    assert np.quantile(differences, 0.999) <= 1e-3, f"{name}: normalised maps differ by {differences.max()}"
    assert differences.max() <= 1e-2, f"{name}: normalised maps differ by {differences.max()}"


def test_a_fomo_twin_explains_each_object_where_its_keras_model_does():
    model = load_model(FIXTURES / "fomo_96.h5")
    keras, twin = Explainer(model, faithfulness=False), Explainer(helpers.converted(model), faithfulness=False)
    assert _short(twin.layer_name) == keras.layer_name
    images, _labels, _boxes = helpers.shapes_test_set()
    a, b = keras.detect(images[:8]), twin.detect(images[:8])
    for x, y in zip(a, b, strict=True):
        assert [(o.label, o.centroid) for o in x.objects] == [(o.label, o.centroid) for o in y.objects]
        for ox, oy in zip(x.objects, y.objects, strict=True):
            assert np.abs(ox.cam - oy.cam).max() <= 1e-3


@pytest.fixture(scope="module")
def mobilenet():
    """The trained MobileNetV2 96 fixture, its test set, and its int8 twin (calibrated on 100
    images of the generator's training distribution, as Studio calibrates on training data)."""
    model = load_model(FIXTURES / "mobilenetv2_96.h5")
    keras = Explainer(model, SHAPE_CLASSES, resize_mode="fit-short", faithfulness=False)
    images, labels, boxes = helpers.shapes_test_set()
    calibration = np.stack([keras.prepare(image)[0] for image in images[:100]])
    return model, keras, helpers.converted(model, calibration), (images, labels, boxes), calibration


def _pointing(explainer: Explainer, images, labels, boxes) -> tuple[float, float]:
    """(accuracy, share of correctly answered images whose map's peak is in the object's box)."""
    results = explainer.explain(images)
    correct = [i for i, r in enumerate(results) if r.label == labels[i]]
    return len(correct) / len(images), float(np.mean([helpers.pointing(results[i], boxes[i]) for i in correct]))


def test_int8_maps_point_at_the_object_as_the_float_maps_do(mobilenet):
    _model, keras, int8, (images, labels, boxes), _calibration = mobilenet
    twin = Explainer(int8, SHAPE_CLASSES, resize_mode="fit-short", faithfulness=False)
    assert twin.adapter.kind == "int8"
    keras_accuracy, keras_pointing = _pointing(keras, images, labels, boxes)
    int8_accuracy, int8_pointing = _pointing(twin, images, labels, boxes)
    print(f"accuracy {keras_accuracy:.2f} / {int8_accuracy:.2f}, pointing {keras_pointing:.2f} / {int8_pointing:.2f}")
    assert int8_accuracy >= 0.85
    assert int8_pointing >= 0.85 and int8_pointing >= keras_pointing - 0.05


def test_a_re_initialised_int8_model_does_not_point(mobilenet):
    model, _keras, _int8, (images, labels, boxes), calibration = mobilenet
    random = helpers.converted(helpers.randomised(model, calibration), calibration)
    twin = Explainer(random, SHAPE_CLASSES, resize_mode="fit-short", faithfulness=False)
    hits = []
    for name in SHAPE_CLASSES:  # each image's map of its true class: one batch per class
        chosen = [i for i, label in enumerate(labels) if label == name]
        results = twin.explain([images[i] for i in chosen], name)
        hits += [helpers.pointing(r, boxes[i]) for r, i in zip(results, chosen, strict=True)]
    assert len(hits) == len(images)
    pointing = np.mean(hits)
    print(f"re-initialised int8: pointing {pointing:.2f}")
    assert pointing <= 0.45


def test_map_agreement_tells_a_broken_quantization_from_a_good_one(mobilenet):
    """An int8 copy calibrated on four dark noise images answers differently and its maps move; the
    well calibrated one's maps stay with the float maps (bench/agreement_threshold.py: the family)."""
    model, _keras, int8, (images, _labels, _boxes), calibration = mobilenet
    bad = helpers.converted(model, np.random.default_rng(0).random((4, *calibration.shape[1:]), np.float32) * 0.1)
    keras = Explainer(model, SHAPE_CLASSES, resize_mode="fit-short", faithfulness=False)
    inputs = np.stack([keras.prepare(image)[0] for image in images[::2]])  # 60 of the test images
    reference = keras.run(inputs)
    shares = {}
    for name, graph in (("good", int8), ("bad", bad)):
        found = Explainer(graph, SHAPE_CLASSES, resize_mode="fit-short", faithfulness=False).run(inputs)
        agreements = [map_agreement(a, b) for a, b in zip(reference.maps, found.maps, strict=True)]
        shares[name] = np.mean([a is None or a < ELSEWHERE for a in agreements])
        same = np.mean(reference.probabilities.argmax(1) == found.probabilities.argmax(1))
        print(f"{name}: same answer {same:.0%}, maps elsewhere {shares[name]:.0%}")
        assert same >= 0.95 if name == "good" else same <= 0.6
    assert shares["good"] <= 0.05 and shares["bad"] >= 0.5


def test_the_int8_twin_gives_litert_s_outputs(mobilenet):
    _model, _keras, int8, _test, calibration = mobilenet
    steps = _steps_apart(int8, calibration)
    assert steps.max() <= 1e-6, f"steps apart: {np.percentile(steps, [50, 95, 100])}"


def _small_cnn(activation):
    tf_keras.utils.set_random_seed(0)
    layers = tf_keras.layers
    return tf_keras.Sequential(
        [tf_keras.Input((16, 16, 3)), layers.Conv2D(4, 3), activation, layers.Flatten(), layers.Dense(2, "softmax")]
    )


def test_an_operator_the_twin_lacks_is_refused_in_one_line():
    graph = helpers.converted(_small_cnn(tf_keras.layers.LeakyReLU(0.1)))
    with pytest.raises(GradcamError) as error:
        adapter_for(graph)
    message = str(error.value)
    assert message.startswith("converted.tflite: operator LEAKY_RELU is not supported by the TFLite twin (supported: ")
    assert "\n" not in message


def test_a_plain_savedmodel_and_onnx_files(tmp_path):
    model = _small_cnn(tf_keras.layers.ReLU())
    module = tf.Module()
    module.model = model
    module.serve = tf.function(lambda x: model(x, training=False), input_signature=[tf.TensorSpec((1, 16, 16, 3))])
    tf.saved_model.save(module, str(tmp_path / "plain"), signatures=module.serve)
    loaded = load_model(tmp_path / "plain")  # no keras_metadata.pb: converted to float32 TFLite
    assert isinstance(loaded, tflite_graph.Graph)
    x = np.random.default_rng(0).random((3, 16, 16, 3), np.float32)
    np.testing.assert_allclose(adapter_for(loaded).predict(x), model.predict(x, verbose=0), atol=1e-5)
    onnx = tmp_path / "model.onnx"
    onnx.write_bytes(b"\x08\x07")
    with pytest.raises(GradcamError, match=r"model.onnx: ONNX models are not supported: give the project's TFLite"):
        load_model(onnx)
    with pytest.raises(GradcamError, match=r"a folder that holds no saved_model.pb"):
        load_model(tmp_path)


# --- Real Edge Impulse files ---


def _roadsign_inputs(explainer: Explainer, count: int = 24) -> np.ndarray:
    with zipfile.ZipFile(REAL / "roadsigns-export.zip") as archive:
        info = json.loads(archive.read("info.labels"))
        paths = [f["path"] for f in info["files"]][:count]
        images = [cv2.imdecode(np.frombuffer(archive.read(p), np.uint8), cv2.IMREAD_COLOR) for p in paths]
    return np.stack([explainer.prepare(np.ascontiguousarray(image[..., ::-1]))[0] for image in images])


@real
@pytest.mark.parametrize("name", ["roadsigns-fomo-int8.tflite", "roadsigns-fomo-float32.tflite"])
def test_real_fomo_twins_give_litert_s_outputs_and_keras_layers(name):
    graph = load_model(REAL / name)
    keras = Explainer(load_model(REAL / "roadsigns-fomo-savedmodel.zip"), faithfulness=False)
    twin = Explainer(graph, faithfulness=False)
    assert _short(twin.layer_name) == keras.layer_name == "block_6_expand_relu,block_3_expand_relu"
    steps = _steps_apart(graph, _roadsign_inputs(keras, 63))
    # int8: every operator LiteRT runs as an int8 kernel is computed as XNNPACK computes it
    # (gradcam.engine.requantize): the same outputs on all 63 photos. Forming the scales in float64 and
    # adding in float gave 61 exact, 62 within one step.
    assert steps.max() <= (1e-4 if "float32" in name else 1e-6), steps.max()


# Every real int8 file the twin covers, with the colour depth of its input.
REAL_INT8 = [
    "classifier-periquito96-int8.tflite",
    "roadsigns-fomo-int8.tflite",
    "microsleep-trained.tflite",
    "fomo-gray96-int8.tflite",
    "fomo-boxwheel160-int8.tflite",
]


@real
@pytest.mark.parametrize("name", REAL_INT8)
def test_every_tensor_of_a_real_int8_twin_is_litert_s(name):
    """Tensor by tensor, not only at the output: a near-tie rounded the other way in an early layer
    grows to tens of output steps by the end (measured before the kernels' own arithmetic: 11 of 87
    photos of the periquito classifier more than one step apart, the first difference in the first
    convolution or an ADD)."""
    graph = load_model(REAL / name)
    explainer = Explainer(graph, faithfulness=False)
    inputs = _roadsign_inputs(explainer, 40)
    quantized = [op.outputs[0] for op in graph.operators if graph.tensors[op.outputs[0]].quantized]
    twin = explainer.adapter.twin
    kept = set(quantized) - {op.outputs[0] for op in graph.operators if op.index in twin.skipped}
    values = twin(tf.constant(inputs), keep=frozenset(kept)).values
    interpreter = Interpreter(model_content=graph.content, experimental_preserve_all_tensors=True)
    interpreter.allocate_tensors()
    given = interpreter.get_input_details()[0]
    scale, zero = given["quantization"]
    for i, x in enumerate(inputs):  # quantized as the SDK does: round(x / scale) + zero point
        q = np.clip(np.round(x / np.float32(scale)) + zero, -128, 127).astype(given["dtype"])
        interpreter.set_tensor(given["index"], q.reshape(given["shape"]))
        interpreter.invoke()
        for tensor in kept:
            t = graph.tensors[tensor]
            litert = interpreter.get_tensor(tensor).astype(np.float64)
            ours = tf.reshape(values[tensor], (len(inputs), -1))[i].numpy().reshape(litert.shape)
            ours = np.round(ours / t.scale[0] + t.zero_point[0])
            assert np.array_equal(ours, litert), f"{name}: image {i}, tensor {t.name}: {np.abs(ours - litert).max()}"


@real
def test_the_real_microsleep_int8_model_is_explained_at_the_keras_depths():
    keras = Explainer(load_model(REAL / "microsleep-trained.h5.zip"), faithfulness=False)
    graph = load_model(REAL / "microsleep-trained.tflite")
    twin = Explainer(graph, faithfulness=False)
    assert [layer.size for layer in twin.adapter.layers] == [layer.size for layer in keras.adapter.layers]
    assert _short(twin.layer_name) == keras.layer_name
    with zipfile.ZipFile(REAL / "electric-as-microsleep-export.zip") as archive:
        names = [n for n in archive.namelist() if n.endswith(".jpg")][:24]
        images = [cv2.imdecode(np.frombuffer(archive.read(n), np.uint8), cv2.IMREAD_COLOR)[..., ::-1] for n in names]
    inputs = np.stack([keras.prepare(np.ascontiguousarray(image))[0] for image in images])
    assert _steps_apart(graph, inputs).max() <= 1.0


@real
def test_the_real_multi_dsp_audio_twin_sees_frames():
    graph = load_model(REAL / "acoustic-multidsp-trained.tflite")
    twin = adapter_for(graph)
    assert twin.image_shape == (1576, 7, 1) and twin.flat_input
    assert all(layer.width == 1 for layer in twin.layers)
    x = np.random.default_rng(0).random((4, 1576, 7, 1), np.float32)
    assert _steps_apart(graph, x).max() <= 1e-4


@real
def test_the_job_explains_a_real_int8_fomo_model_and_checks_it_on_litert(tmp_path, monkeypatch, browser):
    from gradcam.cli import main

    # The twin is LiteRT on every one of these photos (above): LiteRT is made to depart from it by
    # three output steps on every other image of each batch, whose maps must then be withheld.
    predict = TfliteModel.predict

    def departing(self, inputs):
        outputs = predict(self, inputs)
        outputs[::2] += 3 * self._output["quantization"][0]
        return outputs

    monkeypatch.setattr(TfliteModel, "predict", departing)
    classes = "pedestrian,speed limit,traffic light"
    args = ["--dataset", REAL / "roadsigns-export.zip", "--category", "training", "--classes", classes]
    args += ["--batch-size", "32", "--model", REAL / "roadsigns-fomo-int8.tflite", "--out", tmp_path]
    assert main([str(a) for a in args]) == 0
    with zipfile.ZipFile(tmp_path / "deploy.zip") as archive:
        run = json.loads(archive.read("results.json"))["run"]
        rows = json.loads(archive.read("results.json"))["results"]
    assert run["model"] == "roadsigns-fomo-int8.tflite"
    assert run["layer"] == "model_1/block_6_expand_relu,model_1/block_3_expand_relu"
    assert run["tflite"]["model"] == "LiteRT" and run["tflite"]["type"] == "int8"
    assert run["tflite"]["compared"] == len(rows) == 63
    found = sum(r["true_positives"] for r in rows)
    assert found >= 15, "the int8 model finds the signs Studio's float model finds (19 of 66 boxes here)"
    withheld = [r for r in rows if r["tflite_map_withheld"]]
    assert len(withheld) == 16 + 16 == run["tflite"]["withheld"]  # two batches, of 32 and 31 images
    assert all(
        r["tflite_map_withheld"] == "the twin's outputs lie 3 output steps from LiteRT's (allowed: 1)" for r in withheld
    )
    assert all(r["overlay"] == "" and all(o["peak_x"] is None for o in r["objects"]) for r in withheld)
    assert all(r["overlay"] for r in rows if not r["tflite_map_withheld"])
    page, problems = open_report(browser, tmp_path / "deploy.zip", tmp_path / "unzipped")
    title = page.locator("#tflite-title").inner_text()
    assert title.startswith("The int8 model's twin (its maps are shown) against the model on LiteRT: the same answer")
    assert title.endswith("; 32 maps withheld, where the twin's outputs are not LiteRT's")
    assert "32\nint8 maps withheld (twin not LiteRT)" in page.locator("#cards").inner_text()
    assert "Keras" not in page.locator("body").inner_text(), "no Keras model was run"
    assert problems == []
