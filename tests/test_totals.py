"""Run totals (running sums fed one record at a time) and warnings, checked on hand-made records, without TensorFlow."""

import subprocess
import sys
from collections import Counter
from dataclasses import replace
from types import SimpleNamespace

import pytest

from gradcam.engine.agreement import ELSEWHERE
from gradcam.engine.fomo import Box, Counts
from gradcam.job import totals
from gradcam.job import warnings as warned
from gradcam.job.beside import Comparison
from gradcam.job.records import MapFacts, ObjectRecord, Objects, Outcome, SampleRecord, ScoreRow, Tally, TfliteMap
from tests.helpers import ROOT


def _record(truth, predicted, correct, faithfulness=None, blank=False, agrees=None) -> SampleRecord:
    facts = MapFacts(predicted, None if blank else (3, 4), blank, faithfulness)
    tflite = None if agrees is None else Outcome(predicted if agrees else "other", 0.5)
    return SampleRecord(
        f"testing/{truth}.jpg", "testing", truth, Outcome(predicted, 0.9, correct), facts, tflite, agrees
    )


def _summed(records, threshold=0.2, per_class=True, scores=totals.map_scores, tflite=None, detection=None):
    running = totals.RunningTotals(scores, totals.ScoreSums(threshold, per_class), tflite, detection)
    for record in records:
        running.add(record)
    return running


def test_totals_and_records_load_without_tensorflow():
    code = "import sys, gradcam.job.totals, gradcam.report.columns; print('tensorflow' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_tally_counts_folders_skipped_and_blank_maps():
    records = [
        _record("cat", "cat", True),
        _record("cat", "dog", False, blank=True),
        _record(None, "dog", None),
        _record("dog", "dog", True, blank=True),
    ]
    running = _summed(records)
    assert running.tally(1) == Tally(2, 1, 1, 1, 2)
    assert running.explained == 4


def test_trust_counts_maps_at_or_above_the_threshold_in_all_and_per_explained_class():
    scores = [("cat", 0.5), ("cat", 0.2), ("cat", 0.1999), ("dog", -0.3), ("dog", 0.9)]
    records = [_record(c, c, True, faithfulness=f) for c, f in scores] + [_record("cat", "cat", True)]
    trust = _summed(records).totals().trust
    assert trust.total == ScoreRow(5, 3, pytest.approx((0.5 + 0.2 + 0.1999 - 0.3 + 0.9) / 5))
    assert trust.total.share == 0.6
    assert trust.classes == {
        "cat": ScoreRow(3, 2, pytest.approx(0.8999 / 3)),
        "dog": ScoreRow(2, 1, pytest.approx(0.3)),
    }
    assert _summed(records, per_class=False).totals().trust.classes == {}
    assert _summed([_record("cat", "cat", True)]).totals().trust is None, "not measured"


def test_a_detection_models_trust_counts_its_objects_maps_per_class():
    def detected(label, score):
        return ObjectRecord("detection", label, 0.9, (1.0, 1.0), None, (1.0, 1.0), None, score)

    objects = Objects(None, (detected("circle", 0.9), detected("circle", 0.1), detected("square", 0.6)))
    image = SampleRecord("a.jpg", "testing", None, Outcome("circle", 0.9), MapFacts("", None, False), detection=objects)
    trust = _summed([image, image], 0.5, scores=totals.object_scores).totals().trust
    assert trust.total == ScoreRow(6, 4, pytest.approx(1.6 / 3))
    assert trust.classes == {"circle": ScoreRow(4, 2, pytest.approx(0.5)), "square": ScoreRow(2, 2, pytest.approx(0.6))}


def test_tflite_agreement_counts_only_the_samples_it_ran_on():
    records = [_record("a", "a", True, agrees=True), _record("a", "b", False, agrees=False), _record("a", "a", True)]
    int8 = Comparison("model.tflite", SimpleNamespace(kind="int8"))
    found = _summed(records, tflite=int8).totals().tflite
    assert (found.model, found.kind, found.compared, found.disagreements, found.agreement) == (
        "model.tflite",
        "int8",
        2,
        1,
        0.5,
    )
    assert _summed([], tflite=int8).totals().tflite.agreement is None
    assert _summed(records).totals().tflite is None
    broken = _summed(records, tflite=Comparison("bad.tflite", problem="not a TFLite model")).totals().tflite
    assert (broken.kind, broken.compared, broken.problem) == (None, 0, "not a TFLite model")


def _detected(label, box, peak_in_box):
    return ObjectRecord("detection", label, 0.9, (1.0, 1.0), box, (1.0, 1.0), peak_in_box)


def test_detection_totals_add_up_objects_of_labelled_images_per_class():
    box = Box("circle", 0, 0, 10, 10)
    image = Objects(
        Counts(2, 1, 1),
        (
            _detected("circle", box, True),
            _detected("square", Box("square", 0, 0, 5, 5), False),
            _detected("circle", None, None),  # a false detection
            ObjectRecord("missed", "triangle", None, None, Box("triangle", 1, 1, 2, 2), None, False),
        ),
    )
    labelled = SampleRecord(
        "a.jpg",
        "testing",
        "circle, square, triangle",
        Outcome("circle", 0.9, False),
        MapFacts("", None, False),
        detection=image,
    )
    unlabeled = SampleRecord(
        "b.jpg", "testing", None, Outcome("circle", 0.9, None), MapFacts("", None, False), detection=image
    )
    found = _summed([labelled, unlabeled], detection=totals.DetectionSums(0.5)).totals().detection
    assert found.threshold == 0.5
    assert found.total.counts == Counts(2, 1, 1) and found.total.peak_in_box == 0.5
    assert found.classes["circle"].counts == Counts(1, 1, 0) and found.classes["circle"].peak_in_box == 1.0
    assert found.classes["square"].peak_in_box == 0.0
    assert found.classes["triangle"].counts == Counts(0, 0, 1) and found.classes["triangle"].peak_in_box is None


def test_warnings_name_what_a_reader_should_know():
    unknown = warned.label_warning(Counter({"circle": 3, "hexagon": 1}), ["Circle", "square"])
    assert unknown == (
        "4 images have a label that is not one of the model's classes (Circle, square): 'circle' (3 images, "
        "did you mean 'Circle'?), 'hexagon' (1 image); they count as incorrect"
    )
    assert warned.label_warning(Counter({"x": 2}), ["a"], objects=True).startswith("2 object boxes have a label")
    assert warned.label_warning(Counter(), ["a"]) is None
    assert warned.coarse_warning((3, 3), "Conv_1").startswith("the heatmaps are only 3x3 cells (Conv_1)")
    assert warned.coarse_warning((6, 6), "x") is None
    assert warned.blank_warning(Tally(blank=2), 7, None).startswith("2 of 7 heatmaps are blank")
    assert "the score of cat" in warned.blank_warning(Tally(blank=1), 7, "cat")
    assert warned.blank_warning(Tally(), 7, None) is None
    records = [_record("a", "a", True, faithfulness=0.1)] * 3 + [_record("a", "a", True, faithfulness=0.9)]
    low = _summed(records).totals().trust
    assert warned.trust_warning(low).startswith("3 of 4 maps score a faithfulness below 0.2")
    assert warned.trust_warning(None) is None
    assert warned.warnings(None, "a", None, "b") == ["a", "b"]


def _beside(explained, agreement, withheld=""):
    """A record with the TFLite model's own map (None: not drawn)."""
    record = _record("a", explained, True, agrees=True)
    found = None if agreement is None else TfliteMap(explained, (1, 1), agreement)
    return replace(record, tflite_map=found, withheld=withheld)


def test_tflite_maps_are_summed_per_explained_class_against_the_elsewhere_threshold():
    records = [_beside("cat", 0.9), _beside("cat", 0.2), _beside("dog", 0.5), _beside("dog", None, "7 steps")]
    int8 = Comparison("model.tflite", SimpleNamespace(kind="int8"))
    found = _summed(records, tflite=int8).totals().tflite
    assert found.maps.threshold == ELSEWHERE == 0.5
    assert found.maps.total == ScoreRow(3, 2, pytest.approx(1.6 / 3))
    assert found.maps.classes == {"cat": ScoreRow(2, 1, pytest.approx(0.55)), "dog": ScoreRow(1, 1, 0.5)}
    assert found.withheld == 1
    assert warned.withheld_warning(found) == (
        "on 1 of 4 samples the TFLite twin's outputs are not LiteRT's: their TFLite maps are withheld "
        "(column tflite_map_withheld says why)"
    )


def test_objects_tflite_maps_are_summed_per_object_class():
    box = Box("circle", 0, 0, 10, 10)
    objects = (
        replace(_detected("circle", box, True), tflite=TfliteMap("circle", None, 0.1, peak_in_box=False)),
        replace(_detected("square", None, None), tflite=TfliteMap("square", None, 0.8)),
        _detected("square", None, None),  # no TFLite map: not counted
    )
    record = replace(_record("circle", "circle", True), detection=Objects(Counts(1, 1, 0), objects))
    found = _summed([record], tflite=Comparison("m.tflite", SimpleNamespace(kind="int8"))).totals().tflite
    assert found.maps.total == ScoreRow(2, 1, pytest.approx(0.45))
    assert set(found.maps.classes) == {"circle", "square"}


@pytest.mark.parametrize(("elsewhere", "expected"), [(19, False), (20, True)])
def test_a_warning_when_the_tflite_maps_look_elsewhere_on_a_fifth_of_the_samples(elsewhere, expected):
    records = [_beside("cat", 0.1)] * elsewhere + [_beside("cat", 0.9)] * (100 - elsewhere)
    found = _summed(records, tflite=Comparison("m.tflite", SimpleNamespace(kind="int8"))).totals().tflite
    warning = warned.elsewhere_warning(found)
    assert (warning is not None) == expected
    if expected:
        assert warning.startswith(
            "the int8 model looks elsewhere than the Keras model on 20 of 100 maps (map agreement below 0.5)"
        )
    assert warned.withheld_warning(found) is None
