"""`--method auto` settled per model against the model's own evidence (gradcam.engine.calibration,
gradcam.job.calibrate): the measured default kept where its maps agree with the evidence, occlusion
where no gradient map does (a re-initialised model), and what the run says of its choice."""

import json
import zipfile

import numpy as np
import pytest

from gradcam.choices import OCCLUSION
from gradcam.engine.calibration import GOOD, calibrate, settled, spread
from gradcam.engine.formats import load_model
from gradcam.explainer import Explainer
from gradcam.job.run import explain_dataset
from tests import helpers
from tests.helpers import ROOT, SHAPE_CLASSES

FIXTURES = ROOT / "tests" / "fixtures"


@pytest.fixture(scope="module")
def mobilenet():
    model = load_model(FIXTURES / "mobilenetv2_96.h5")
    explainer = Explainer(model, SHAPE_CLASSES, resize_mode="fit-short")
    images, _labels, _boxes = helpers.shapes_test_set()
    x = np.stack([explainer.prepare(images[i])[0] for i in spread(len(images))])
    return model, explainer, x


def test_a_trained_model_keeps_the_default_where_its_maps_agree(mobilenet):
    model, explainer, x = mobilenet
    choice = calibrate(explainer, model, x)
    default = choice.candidates[0]
    assert (default.method, default.layers) == ("gradcam", "the auto layers")
    assert default.layer == explainer.layer_name
    assert choice.chosen == default and default.agreement >= GOOD
    methods = {(c.method, c.layers) for c in choice.candidates}
    assert {("hirescam", "the last conv"), ("layercam", "the deepest of them"), (OCCLUSION, "the input")} <= methods
    assert choice.samples in (8, 16, 24) and choice.seconds > 0


def test_a_re_initialised_model_gets_occlusion_no_gradient_map_agreeing(mobilenet):
    """Its gradient maps agree with its own evidence no better than chance: its evidence is shown instead."""
    model, _explainer, x = mobilenet
    random = helpers.randomised(model, x)
    explainer = Explainer(random, SHAPE_CLASSES, resize_mode="fit-short")
    choice = calibrate(explainer, random, x)
    gradients = [c.agreement for c in choice.candidates if c.method != OCCLUSION]
    print("re-initialised:", [(c.label, round(c.agreement, 2)) for c in choice.candidates])
    assert choice.method == OCCLUSION and choice.layer == "auto"
    assert max(gradients) < GOOD


def test_a_given_method_weighs_the_layers_alone(mobilenet):
    model, _explainer, x = mobilenet
    explainer = Explainer(model, SHAPE_CLASSES, resize_mode="fit-short", method="hirescam")
    choice = calibrate(explainer, model, x, method="hirescam")
    assert {c.method for c in choice.candidates} == {"hirescam"}, "nor occlusion: the method was given"
    assert len(choice.candidates) == 3


def test_the_choice_settles_when_it_is_clear():
    assert settled(0.75, 0.75, 8), "the default agrees: kept"
    assert settled(0.1, 0.4, 8) and not settled(0.1, 0.5, 8), "nothing agrees, by more than the error"
    assert not settled(0.6, 0.6, 16) and settled(0.6, 0.52, 16)


def test_the_run_says_what_auto_chose(tmp_path):
    export = helpers.write_export(tmp_path / "export.zip", helpers.bundled_samples(12))
    summary = explain_dataset(ROOT / "examples/shapes/model.h5", export, tmp_path / "out", resize_mode="fit-short")
    with zipfile.ZipFile(summary.zip_path) as archive:
        results = json.loads(archive.read("results.json"))
    run, auto = results["run"], results["run"]["auto"]
    assert auto["samples"] in (8, 12) and auto["chosen"]["method"] == run["method"]
    checked = [r for r in results["results"] if r["evidence"] is not None]
    assert len(checked) >= auto["samples"], "the calibration's references are checks of the job, made again free"
    assert [c["method"] for c in auto["candidates"]] == ["gradcam", "gradcam++", "hirescam", "layercam", OCCLUSION]
    assert all(0 <= c["agreement"] <= 1 for c in auto["candidates"])
    few = helpers.write_export(tmp_path / "few.zip", helpers.bundled_samples(6))
    summary = explain_dataset(ROOT / "examples/shapes/model.h5", few, tmp_path / "few", resize_mode="fit-short")
    assert summary.info.choice is None and summary.info.method == "gradcam", "under 8 samples, the default"
    off = explain_dataset(
        ROOT / "examples/shapes/model.h5", export, tmp_path / "off", resize_mode="fit-short", evidence="off"
    )
    assert off.info.choice is None and off.info.method == "gradcam", "no reference at all: the default"
    assert off.info.totals.evidence is None
