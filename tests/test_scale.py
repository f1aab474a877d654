"""Results streamed, not held: results.json and results.csv as the held version wrote them, nothing
left behind by a failure, overlays for the mistakes only, and a report of 10,000 samples that pages,
searches and filters over all of them in a real browser."""

import csv
import io
import json
import tempfile
import zipfile
from collections import Counter

import cv2
import numpy as np
import pytest

from gradcam.cli import main
from gradcam.engine.fomo import Box, Counts
from gradcam.job.records import (
    MapFacts,
    ObjectRecord,
    Objects,
    Outcome,
    PerClass,
    Pictures,
    RunInfo,
    SampleRecord,
    ScoreRow,
    Tally,
    Totals,
)
from gradcam.report.columns import DETECTION_FIELDS, RESULT_FIELDS, csv_row, result_row, run_document
from gradcam.report.page import INDEX_CHUNK, ROWS_CHUNK, TEMPLATE
from gradcam.report.writer import DeployZip
from tests import helpers
from tests.helpers import ROOT, open_report

SHAPES_JOB = ["--model", str(ROOT / "examples/shapes/model.h5"), "--dataset", str(ROOT / "examples/shapes/export.zip")]
# For the tests of what streams and what fails: the maps' method fixed and no checks against the evidence
# (each costs as much again; tests/test_occlusion.py and tests/test_calibration.py test them).
PLAIN = ["--method", "gradcam", "--evidence", "off"]
JPEG = cv2.imencode(".jpg", np.full((30, 40, 3), 128, np.uint8))[1].tobytes()
CLASSES = ["cat", "dog", "bird"]


def _records(n: int, seed: int = 0) -> list[SampleRecord]:
    """n classification records with seeded labels, answers, scores and faithfulness."""
    rng = np.random.default_rng(seed)
    records = []
    for i in range(n):
        truth = None if i % 17 == 0 else CLASSES[rng.integers(3)]
        predicted = CLASSES[rng.integers(3)]
        confidence = float(rng.uniform(0.34, 1))
        scores = {c: float(rng.uniform()) for c in CLASSES}
        faithfulness = round(float(rng.uniform(-1, 1)), 4)
        facts = MapFacts(predicted, (int(rng.integers(40)), int(rng.integers(30))), i % 13 == 0, faithfulness)
        answer = Outcome(predicted, confidence, None if truth is None else truth == predicted, None, scores)
        records.append(SampleRecord(f"testing/img{i:05d}.jpg.ingestion-1.jpg", "testing", truth, answer, facts))
    return records


def _info(task: str = "classification") -> RunInfo:
    trust = PerClass(0.5, ScoreRow(10, 5, 0.1), {})  # the page offers faithfulness filters with a threshold
    trusted = PerClass(1.0, ScoreRow(10, 5, 0.5), {})  # and the maps not to trust (each map's verdict)
    parameters = {"regression_threshold": 0.1}
    totals = Totals(trust, trusted=trusted)
    return RunInfo("model.h5", "conv", task, "gradcam", CLASSES, parameters, tally=Tally(1, 2, 3), totals=totals)


def test_streamed_results_are_byte_for_byte_what_the_held_rows_gave(tmp_path):
    """results.json and results.csv written from rows kept on disk equal the documents built from
    every row in memory, as the writer did before it streamed (empty, one and many rows)."""
    box = Box("cat", 1, 2, 3, 4)
    objects = Objects(Counts(1, 0, 0), (ObjectRecord("detection", "cat", 0.9, (2.5, 3.5), box, (2.0, 3.0), True, 0.5),))
    detected = SampleRecord("testing/x.jpg", "testing", "cat", Outcome("cat", 0.9, True), MapFacts("", None, False))
    detected = SampleRecord(**{**detected.__dict__, "detection": objects})
    for name, records, detection in [
        ("empty", [], False),
        ("one", _records(1), False),
        ("many", _records(700), False),
        ("objects", [detected, detected], True),
    ]:
        out = DeployZip(tmp_path / name / "deploy.zip", by_label=not detection, detection=detection)
        rows = [result_row(r, out.add(r, Pictures(JPEG))) for r in records]
        out.close(_info())
        held = json.dumps({"run": run_document(_info()), "results": rows}, indent=1, allow_nan=False, default=str)
        classes = list(dict.fromkeys(c for row in rows for c in row["scores"]))
        fields = [*RESULT_FIELDS, *(DETECTION_FIELDS if detection else ()), *(f"score:{c}" for c in classes)]
        table = io.StringIO()
        writer = csv.DictWriter(table, fieldnames=fields)
        writer.writeheader()
        writer.writerows(csv_row(row, fields) for row in rows)
        with zipfile.ZipFile(tmp_path / name / "deploy.zip") as archive:
            assert archive.read("results.json").decode() == held, name
            assert archive.read("results.csv").decode() == table.getvalue(), name


def test_the_bundled_examples_results_json_is_valid_and_in_the_held_format(tmp_path):
    assert main([*SHAPES_JOB, "--resize-mode", "fit-short", "--out", str(tmp_path)]) == 0
    with zipfile.ZipFile(tmp_path / "deploy.zip") as archive:
        text = archive.read("results.json").decode()
        table = list(csv.DictReader(io.StringIO(archive.read("results.csv").decode())))
        names = archive.namelist()
    document = json.loads(text)
    assert json.dumps(document, indent=1) == text, "the layout json.dumps(indent=1) gives the whole document"
    assert len(document["results"]) == len(table) == 120
    assert [r["source"] for r in document["results"]] == [r["source"] for r in table]
    assert [r["overlay"] for r in document["results"]] == [r["overlay"] for r in table]
    assert {"data/index-0000.js", "data/rows-0000.js"} <= set(names)


def test_a_failure_in_a_later_batch_leaves_no_zip_and_no_stray_file(tmp_path, monkeypatch):
    from gradcam.job.classify import ClassifyStages

    render, calls = ClassifyStages.render, Counter()

    def failing(self, prepared, output):
        calls["render"] += 1
        if calls["render"] == 90:  # in the third batch of 32
            raise RuntimeError("disk on fire")
        return render(self, prepared, output)

    temp = tmp_path / "tmp"
    temp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(temp))
    monkeypatch.setattr(ClassifyStages, "render", failing)
    out = tmp_path / "out"
    with pytest.raises(RuntimeError, match="disk on fire"):
        main([*SHAPES_JOB, *PLAIN, "--faithfulness", "0", "--out", str(out)])
    assert calls["render"] >= 90
    assert list(out.iterdir()) == [], "no deploy.zip, no .partial, no chunk files"
    assert list(temp.iterdir()) == [], "the rows kept on disk are gone"


def test_overlays_for_the_mistakes_only_keep_every_sample_in_the_results(browser, tmp_path):
    assert (
        main([*SHAPES_JOB, *PLAIN, "--overlays", "mistakes", "--faithfulness", "0", "--out", str(tmp_path / "out")])
        == 0
    )
    with zipfile.ZipFile(tmp_path / "out" / "deploy.zip") as archive:
        table = list(csv.DictReader(io.StringIO(archive.read("results.csv").decode())))
        images = set(helpers.sample_pictures(archive.namelist()))
    assert len(table) == 120
    correct = [r for r in table if r["correct"] == "True"]
    others = [r for r in table if r["correct"] != "True"]
    assert correct and others
    assert all(r["overlay"] == "" for r in correct)
    assert all(r["overlay"] in images for r in others)
    assert {n.split("/")[0] for n in images} <= {"incorrect", "unlabeled"}
    page, problems = open_report(browser, tmp_path / "out" / "deploy.zip", tmp_path / "unzipped")
    page.select_option("#outcome", "correct")
    assert page.locator("#gallery figure").count() == min(100, len(correct))
    assert page.locator("#gallery .no-overlay").count() == min(100, len(correct))
    assert "written for mistakes and unlabeled samples only" in page.locator("#gallery").inner_text()
    page.select_option("#outcome", "incorrect")
    assert page.locator("#gallery .no-overlay").count() == 0
    assert problems == []


def test_a_report_of_10000_samples_pages_searches_and_filters_over_all_of_them(browser, tmp_path):
    records = _records(10_000)
    out = DeployZip(tmp_path / "deploy.zip")
    for r in records:
        out.add(r, Pictures(JPEG))
    out.close(_info())
    with zipfile.ZipFile(tmp_path / "deploy.zip") as archive:
        table = list(csv.DictReader(io.StringIO(archive.read("results.csv").decode())))
        names = set(archive.namelist())
        page_html = archive.read("index.html").decode()
    assert {f"data/index-{k:04d}.js" for k in range(10_000 // INDEX_CHUNK)} <= names
    assert f"data/rows-{10_000 // ROWS_CHUNK - 1:04d}.js" in names
    # No row in the page itself: besides its template, only the run and the first page's 100 rows (the
    # 10,000 rows would be about 1.5 MB).
    assert "img09999" not in page_html and len(page_html) - len(TEMPLATE.read_text()) < 20_000

    page, problems = open_report(browser, tmp_path / "deploy.zip", tmp_path / "unzipped")
    assert page.locator("#gallery figure").count() == 100
    assert page.locator("#page-of").inner_text() == "page 1 of 100"
    assert "10000 images" in page.locator("#subtitle").inner_text()
    page.click("#last")
    last = page.locator("#gallery figure .src").last.inner_text()
    page.click("#first")
    page.fill("#search", last.split("/")[1][:8])
    assert page.locator("#gallery figure .src").all_inner_texts() == [last], "found from the first page"
    page.fill("#search", "")

    wrong = sum(r["correct"] == "False" for r in table)
    page.select_option("#outcome", "incorrect")
    assert page.locator("#shown").inner_text() == f"({wrong} of 10000 shown)"
    dogs = sum(r["true_label"] == "dog" and r["predicted"] == "cat" for r in table)
    page.locator("#confusion tr").nth(2).locator("td.cell").nth(0).click()  # true dog, predicted cat
    assert page.locator("#shown").inner_text() == f"({dogs} of 10000 shown)"
    cells = page.locator("#confusion tr").nth(2).locator("td.cell").all_inner_texts()
    assert cells == [str(sum(r["true_label"] == "dog" and r["predicted"] == c for r in table)) for c in CLASSES]

    page.select_option("#outcome", "untrusted")
    page.select_option("#label", "")
    page.select_option("#predicted", "")
    low = sum(float(r["faithfulness"]) < 0.5 for r in table)
    assert page.locator("#shown").inner_text() == f"({low} of 10000 shown)"
    page.select_option("#outcome", "")
    page.select_option("#predicted", "")
    page.select_option("#sort", "faithfulness-asc")
    ordered = sorted(table, key=lambda r: float(r["faithfulness"]))  # stable, as the page's sort
    lowest, highest = ordered[0], ordered[-1]
    assert page.locator("#gallery figure .src").first.inner_text() == lowest["source"]
    page.click("#last")
    page.locator("#gallery figure a").last.click()  # its scores come from its rows chunk
    page.wait_for_selector("#detail-fields dt")
    assert page.locator("#detail-title").inner_text() == highest["source"]
    assert f"{float(highest['score:dog']):.4g}" in page.locator("#detail-fields").inner_text()
    assert problems == []


def test_the_python_api_runs_the_whole_job_with_its_options(tmp_path):
    from gradcam import GradcamError, explain_dataset

    model, dataset = ROOT / "examples/shapes/model.h5", ROOT / "examples/shapes/export.zip"
    with pytest.raises(GradcamError, match="unknown option overlay: expected some of .*overlays"):
        explain_dataset(model, dataset, tmp_path, overlay="mistakes")
    options = {"overlays": "mistakes", "faithfulness": False, "layout": "panel", "method": "gradcam", "evidence": "off"}
    summary = explain_dataset(model, dataset, tmp_path, **options)
    assert summary.zip_path == tmp_path / "deploy.zip"
    with zipfile.ZipFile(summary.zip_path) as archive:
        rows = json.loads(archive.read("results.json"))["results"]
        images = helpers.sample_pictures(archive.namelist())
    tally = summary.info.tally
    assert len(rows) == tally.correct + tally.incorrect + tally.unlabeled == 120
    assert len(images) == tally.incorrect + tally.unlabeled, "a panel per mistake, none for the right answers"


def _page_document(path) -> dict:
    with zipfile.ZipFile(path) as archive:
        page = archive.read("index.html").decode()
    start = page.index('<script type="application/json" id="data">') + len('<script type="application/json" id="data">')
    return json.loads(page[start : page.index("</script>", start)])["page"]


def test_index_html_holds_the_galleries_first_page_in_its_default_order(tmp_path):
    """The least confident first (no confidence before any), the largest error first for regression
    (none last); ties in the order met: what the page's stable sort gives once the index is in."""
    records = _records(1000)
    records[10] = SampleRecord(**{**records[10].__dict__, "answer": Outcome("cat", None, True)})
    out = DeployZip(tmp_path / "classes.zip")
    for r in records:
        out.add(r, Pictures(JPEG))
    first = _page_document(out.close(_info()))["first_page"]
    confidence = [-1.0 if r.answer.confidence is None else round(r.answer.confidence, 6) for r in records]
    assert [at for at, _ in first] == sorted(range(1000), key=lambda i: (confidence[i], i))[:100]
    assert [entry[0] for _, entry in first] == [records[at].source for at, _ in first]

    rng = np.random.default_rng(3)
    errors = [None if i % 7 == 0 else round(float(rng.choice([0.5, 1.0, rng.uniform(0, 2)])), 6) for i in range(300)]
    out = DeployZip(tmp_path / "regression.zip", by_label=False)
    for i, error in enumerate(errors):
        answer = Outcome("1.0", None, None if error is None else error <= 0.1, error, {"value": 1.0})
        out.add(
            SampleRecord(f"testing/{i}.jpg", "testing", None, answer, MapFacts("value", None, False)), Pictures(JPEG)
        )
    first = _page_document(out.close(_info("regression")))["first_page"]
    order = sorted(range(300), key=lambda i: (-errors[i] if errors[i] is not None else np.inf, i))
    assert [at for at, _ in first] == order[:100]
