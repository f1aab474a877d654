"""Shortcut diagnosis on trained models (tests/fixtures/make_shortcut.py): a model that reads a logo
stamped on every circle is flagged, with the logo's place; models without a shortcut are not, even
when their objects always sit in the centre; the class tiles in the report, in Chromium."""

import csv
import io
import json
import zipfile
from collections import Counter

import cv2
import numpy as np
import pytest

from gradcam.engine.formats import load_model
from gradcam.engine.preprocess import preprocess
from gradcam.job.run import explain_dataset
from tests import helpers
from tests.fixtures import make_shortcut
from tests.helpers import ROOT, SHAPES

FIXTURES = ROOT / "tests" / "fixtures"
# The logo in the model's 64x64 input: fit-short keeps x 20..140 of the 160x120 image, at 64/120.
_x, _y, _w, _h = make_shortcut.MARK_BOX
MARK_IN_INPUT = ((_x - 20) * 64 / 120, _y * 64 / 120, (_x + _w - 20) * 64 / 120, (_y + _h) * 64 / 120)


def _looks(summary) -> dict:
    with zipfile.ZipFile(summary.zip_path) as archive:
        return json.loads(archive.read("results.json"))["run"]["looks"]


@pytest.fixture(scope="module")
def shortcut_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("shortcut")
    export = make_shortcut.write_export(tmp / "export.zip", "shortcut")
    # Grad-CAM's maps, which the check's thresholds were measured on: no reference, so no calibration.
    options = {"resize_mode": "fit-short", "faithfulness": False, "evidence": "off"}
    return explain_dataset(FIXTURES / "shortcut_64.h5", export, tmp / "out", **options)


def test_the_shortcut_model_relies_on_the_logo():
    """The same test images with the logo painted out: the circles are no longer recognised."""
    model = load_model(FIXTURES / "shortcut_64.h5")
    accuracy = {}
    for kind in ("shortcut", "unmarked"):
        data = make_shortcut.images(kind, 40, seed=12)
        x = np.stack([preprocess(image, make_shortcut.make_shapes.SPEC)[0] for image, _, _ in data])
        predicted = model.predict(x.reshape(len(x), -1), verbose=0).argmax(axis=1)
        circles = np.array([label for _, _, label in data]) == 0
        accuracy[kind] = float(np.mean(predicted[circles] == 0))
    print("circle accuracy", accuracy)
    assert accuracy["shortcut"] >= 0.95 and accuracy["unmarked"] <= 0.3


def test_the_shortcut_class_is_flagged_with_a_region_on_the_logo(shortcut_run):
    looks = _looks(shortcut_run)
    [flagged] = looks["shortcuts"]
    assert flagged["class"] == "circle" and flagged["images"] == 40
    region = flagged["region"]
    x0, y0, x1, y1 = MARK_IN_INPUT
    assert region["x"] < x1 and x0 < region["x"] + region["width"], "overlaps the logo across"
    assert region["y"] < y1 and y0 < region["y"] + region["height"], "and down"
    assert flagged["share"] >= 0.9 and flagged["stillness"] <= 0.2
    warning = next(w for w in shortcut_run.info.warnings if w.startswith("class 'circle': in "))
    assert (
        f"of its images the map sits on the same {region['width']}x{region['height']} patch at the top-left" in warning
    )
    assert warning.endswith(
        "whose pixels are nearly identical in every image: the model may be reading an artefact, not the object"
    )
    assert "circle" in looks["outside_boxes"], "its maps miss the circles' boxes too"


CLEAN = {
    "centred objects": (FIXTURES / "centred_64.h5", None),
    "bundled example": (SHAPES / "model.h5", {"grey": True}),
    "mobilenetv2_96": (FIXTURES / "mobilenetv2_96.h5", {}),
    "mobilenetv1_96_gray": (FIXTURES / "mobilenetv1_96_gray.h5", {"luminance": True}),
    "mobilenetv2_160": (FIXTURES / "mobilenetv2_160.h5", {}),
}


@pytest.mark.parametrize("name", CLEAN)
def test_models_without_a_shortcut_flag_nothing(name, tmp_path):
    model, test_set = CLEAN[name]
    if test_set is None:
        export = make_shortcut.write_export(tmp_path / "export.zip", "centred")
    else:
        export = helpers.boxed_export(tmp_path / "export.zip", *helpers.shapes_test_set(**test_set))
    # The sums need no pictures; the check's thresholds were measured on Grad-CAM's maps (auto may prefer
    # another method where it agrees better with the model's own evidence: HiResCAM on the centred model).
    options = {"resize_mode": "fit-short", "faithfulness": False, "overlays": "mistakes", "method": "gradcam"}
    options["evidence"] = "off"  # nor checks against the model's own evidence
    summary = explain_dataset(model, export, tmp_path / "out", **options)
    looks = _looks(summary)
    print(name, [(c["class"], c["share"], c["stillness"], c["heat_in_boxes"], c["box_area"]) for c in looks["classes"]])
    assert looks["shortcuts"] == [] and looks["outside_boxes"] == []
    assert not [w for w in summary.info.warnings if w.startswith("class ")]
    if test_set is None:  # the maps do sit in the centre, on objects that differ
        assert all(c["share"] >= 0.6 and c["stillness"] > 0.5 for c in looks["classes"])


def test_the_class_tiles_in_the_report(shortcut_run, browser, tmp_path):
    page, problems = helpers.open_report(browser, shortcut_run.zip_path, tmp_path)
    with zipfile.ZipFile(shortcut_run.zip_path) as archive:
        rows = list(csv.DictReader(io.StringIO(archive.read("results.csv").decode())))
    explained = Counter(row["predicted"] for row in rows)  # the maps explain the predicted class
    tiles = page.locator("#looks figure")
    assert tiles.count() == 3
    for i in range(3):
        tile = tiles.nth(i)
        name = tile.get_attribute("data-class")
        text = tile.inner_text()
        assert f"{name} · {explained[name]} images" in text
        picture = cv2.imread(str(tmp_path / tile.locator("img").get_attribute("src")))
        red = (picture[:, :, 2] > 180) & (picture[:, :, 1] < 80) & (picture[:, :, 0] < 80)
        if name == "circle":
            assert "shortcut?" in text
            assert red[:40, :40].sum() > 40, "the flagged region boxed in red at the top-left"
        else:
            assert "shortcut?" not in text and red.sum() < 20
    assert page.locator("#looks-mistakes figure").count() >= 1
    assert problems == []


def test_a_re_initialised_copy_of_the_shortcut_model_flags_nothing(tmp_path):
    """The sanity check: with its weights re-initialised, the model no longer reads the logo, and the
    same test images flag nothing."""
    data = make_shortcut.images("shortcut", 40, seed=12)
    x = np.stack([preprocess(image, make_shortcut.make_shapes.SPEC)[0] for image, _, _ in data])
    helpers.randomised(load_model(FIXTURES / "shortcut_64.h5"), x.reshape(len(x), -1)).save(tmp_path / "random.h5")
    export = make_shortcut.write_export(tmp_path / "export.zip", "shortcut")
    options = {"resize_mode": "fit-short", "faithfulness": False, "overlays": "mistakes", "evidence": "off"}
    looks = _looks(explain_dataset(tmp_path / "random.h5", export, tmp_path / "out", **options))
    print([(c["class"], c["images"], c["share"], c["stillness"]) for c in looks["classes"]])
    assert looks["shortcuts"] == []
