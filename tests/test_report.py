"""deploy.zip and its report: the tree, results files, and index.html checked in a real headless browser."""

import csv
import io
import json
import zipfile
from pathlib import Path

import cv2
import numpy as np
import pytest

from gradcam.errors import GradcamError
from gradcam.job.records import MapFacts, Outcome, Pictures, RunInfo, SampleRecord, Skipped, Tally
from gradcam.report.writer import DeployZip
from tests.helpers import ROOT, open_report

EVIL = "<img src=x onerror=alert(1)>"
ARTIFACTS = ROOT / "test-artifacts"


def _jpeg(seed: int) -> bytes:
    image = np.random.default_rng(seed).integers(0, 256, (60, 80, 3), dtype=np.uint8)
    return cv2.imencode(".jpg", image)[1].tobytes()


def _result(i: int, truth, predicted, confidence, correct, error=None, blank=False) -> SampleRecord:
    scores = {"cat": 0.5, "dog": 0.3, EVIL: 0.2} if error is None else {"value": float(predicted)}
    return SampleRecord(
        source=f"testing/img{i}.jpg.x.ingestion-1.jpg",
        category="testing",
        true_label=truth,
        answer=Outcome(predicted, confidence, correct, error, scores),
        map=MapFacts(predicted, None if blank else (1, 2), blank),
    )


def _classification_zip(path: Path) -> Path:
    out = DeployZip(path)
    rows = [
        ("cat", "cat", 0.9, True),
        ("cat", "dog", 0.6, False),
        ("dog", "dog", 0.8, True),
        (EVIL, "cat", 0.7, False),
        ("dog", EVIL, 0.55, False),
        (None, "dog", 0.99, None),
    ]
    for i, (truth, predicted, confidence, correct) in enumerate(rows):
        out.add(_result(i, truth, predicted, confidence, correct, blank=i == 2), Pictures(_jpeg(i)))
    out.add(_result(1, "cat", "cat", 0.95, True), Pictures(_jpeg(9)))  # same source name again: a unique entry
    info = RunInfo(
        "model.h5",
        "conv",
        "classification",
        "gradcam",
        ["cat", "dog", EVIL],
        {"regression_threshold": 0.1},
        skipped=[Skipped("testing/bad.jpg", "not a decodable image")],
        tally=Tally(blank=1),
        layers=[{"name": "model/Conv_1", "type": "Conv2D", "size": "3x3", "method": "gradcam"}],
        last_conv={"name": "model/Conv_1", "size": "3x3"},
        resolution="3x3",
        warnings=["the heatmaps are only 3x3 cells", "1 of 7 heatmaps are blank"],
    )
    return out.close(info)


def test_zip_tree_results_and_unique_names(tmp_path):
    path = _classification_zip(tmp_path / "deploy.zip")
    assert [p.name for p in tmp_path.iterdir()] == ["deploy.zip"], "no partial file left behind"
    with zipfile.ZipFile(path) as archive:
        names = archive.namelist()
        rows = list(csv.DictReader(io.StringIO(archive.read("results.csv").decode())))
        page = archive.read("index.html").decode()
    images = [n for n in names if n.endswith(".jpg")]
    assert len(images) == len(set(images)) == len(rows) == 7
    assert {n.split("/")[0] for n in images} == {"correct", "incorrect", "unlabeled"}
    assert "incorrect/cat/img1.jpg.x.pred-dog-0.60.jpg" in images
    assert "correct/cat/img1.jpg.x.pred-cat-0.95.jpg" in images
    assert any(n.startswith("incorrect/img_src_x_onerror_alert_1/") for n in images), "labels are made safe as names"
    assert sorted(r["overlay"] for r in rows) == sorted(images)
    assert list(rows[0])[-3:] == ["score:cat", "score:dog", f"score:{EVIL}"], "one score column per class"
    assert [float(rows[0][c]) for c in list(rows[0])[-3:]] == [0.5, 0.3, 0.2]
    assert EVIL not in page and "\\u003cimg src=x onerror=alert(1)\\u003e" in page


def test_a_crash_leaves_no_zip(tmp_path):
    out = DeployZip(tmp_path / "deploy.zip")
    out.add(_result(0, "a", "a", 0.9, True), Pictures(_jpeg(0)))
    out.abort()
    assert list(tmp_path.iterdir()) == []


def test_a_stop_that_cut_a_write_short_still_leaves_no_zip(tmp_path):
    """A signal raised inside zipfile's writing leaves its handle open; closing the zip then fails."""
    out = DeployZip(tmp_path / "deploy.zip")
    out.add(_result(0, "a", "a", 0.9, True), Pictures(_jpeg(0)))
    handle = out._zip.open("correct/a/cut-short.jpg", "w")  # the write a signal interrupted
    handle.write(b"\xff\xd8")
    out.abort()
    assert list(tmp_path.iterdir()) == []


def test_unwritable_target_is_a_clear_error(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(GradcamError, match="cannot write .*file/deploy.zip"):
        DeployZip(tmp_path / "file" / "deploy.zip")


# --- In a real browser. ---


def test_report_loads_filters_and_never_runs_labels(browser, tmp_path):
    page, problems = open_report(browser, _classification_zip(tmp_path / "deploy.zip"), tmp_path / "unzipped")
    assert page.locator("#gallery figure").count() == 7
    assert page.locator("img[src='x']").count() == 0
    assert page.get_by_text(f"true: {EVIL}").count() == 1, "the label shows as text"
    assert page.locator(".warning").all_inner_texts() == [
        "⚠ the heatmaps are only 3x3 cells",
        "⚠ 1 of 7 heatmaps are blank",
    ]
    assert "3x3 heatmaps from model/Conv_1 (3x3, gradcam)" in page.locator("#subtitle").inner_text()
    page.select_option("#outcome", "blank")
    assert page.locator("#gallery figure .blank-mark").count() == page.locator("#gallery figure").count() == 1
    assert page.locator("#gallery figure .src").inner_text() == "testing/img2.jpg.x.ingestion-1.jpg"
    page.select_option("#outcome", "incorrect")
    shown = page.locator("#gallery figure")
    assert shown.count() == 3
    assert sorted(shown.nth(i).locator(".src").inner_text() for i in range(3)) == [
        "testing/img1.jpg.x.ingestion-1.jpg",
        "testing/img3.jpg.x.ingestion-1.jpg",
        "testing/img4.jpg.x.ingestion-1.jpg",
    ]
    assert all(shown.nth(i).get_attribute("data-outcome") == "incorrect" for i in range(3))
    page.locator("#confusion td.cell").nth(1).click()  # true cat, predicted dog
    assert page.locator("#gallery figure").count() == 1
    assert page.locator("#skipped").get_by_text("not a decodable image").count() == 1
    images = page.locator("#gallery img")
    assert images.first.evaluate("img => img.complete && img.naturalWidth") == 80, (
        "thumbnails load from the zip's files"
    )
    assert problems == []


@pytest.fixture(scope="module")
def bundled_run(tmp_path_factory) -> Path:
    """The bundled example explained by the command line, faithfulness on: deploy.zip's path."""
    from gradcam.cli import main

    out = tmp_path_factory.mktemp("bundled")
    model, dataset = ROOT / "examples/shapes/model.h5", ROOT / "examples/shapes/export.zip"
    argv = ["--model", str(model), "--dataset", str(dataset), "--resize-mode", "fit-short", "--faithfulness"]
    assert main([*argv, "--out", str(out)]) == 0
    return out / "deploy.zip"


def test_report_of_a_real_run_with_screenshot(browser, bundled_run, tmp_path):
    """The bundled example, explained, as a user opens it; the screenshot is kept as a test artefact."""
    page, problems = open_report(browser, bundled_run, tmp_path / "unzipped")
    results = json.loads((tmp_path / "unzipped" / "results.json").read_text())
    assert len(results["results"]) == 120
    assert page.locator("#gallery figure").count() == 100, "a page of 100 cards"
    assert page.locator("#shown").inner_text() == "(120 of 120 shown)"
    assert page.locator("#page-of").inner_text() == "page 1 of 2"
    first = page.locator("#gallery figure .src").all_inner_texts()
    page.click("#next")
    assert page.locator("#page-of").inner_text() == "page 2 of 2" and page.locator("#next").is_disabled()
    second = page.locator("#gallery figure .src").all_inner_texts()
    assert sorted(first + second) == sorted(r["source"] for r in results["results"]), "every sample on a page"
    correct = sum(r["correct"] for r in results["results"])
    assert page.locator("#cards").inner_text().startswith("120\nexplained\n" + f"{100 * correct / 120:.1f}%\naccuracy")
    ARTIFACTS.mkdir(exist_ok=True)
    page.set_viewport_size({"width": 1200, "height": 900})
    page.screenshot(path=str(ARTIFACTS / "report.png"), full_page=False)
    assert problems == []


def test_report_sorts_and_filters_by_faithfulness_and_shows_a_mistakes_two_maps(browser, bundled_run, tmp_path):
    page, problems = open_report(browser, bundled_run, tmp_path / "unzipped")
    document = json.loads((tmp_path / "unzipped" / "results.json").read_text())
    results, run = document["results"], document["run"]
    trust, evidence = run["faithfulness"], run["evidence"]

    def to_trust(r) -> bool:  # every check made passes: faithfulness, and agreement where checked
        agrees = r["evidence"] is None or r["evidence"] >= evidence["threshold"]
        return r["faithfulness"] >= trust["threshold"] and agrees

    low = [r for r in results if not to_trust(r)]
    assert all(r["trusted"] == to_trust(r) for r in results)
    assert 0 < evidence["total"]["maps"] == sum(r["evidence"] is not None for r in results) < 120, "the budget's share"
    assert trust["total"]["maps"] == 120 and run["trusted"]["total"]["trusted"] == 120 - len(low)
    table = page.locator("#faithfulness table tr")
    assert table.count() == 1 + 3 + 1, "a row per explained class, and all"
    assert table.last.inner_text().split("\t")[:3] == ["all", "120", str(120 - len(low))]
    page.select_option("#sort", "faithfulness-asc")
    lowest = min(results, key=lambda r: r["faithfulness"])
    assert page.locator("#gallery figure .src").first.inner_text() == lowest["source"]
    page.select_option("#outcome", "untrusted")
    assert page.locator("#gallery figure").count() == len(low)
    assert page.locator("#gallery .untrusted-mark").count() == len(low)

    page.select_option("#outcome", "incorrect")
    mistakes = [r for r in results if r["correct"] is False]
    assert page.locator("#gallery figure").count() == len(mistakes) > 0
    page.locator("#gallery figure a").first.click()
    dialog = page.locator("#detail")
    assert dialog.is_visible()
    shown = page.locator("#detail-maps img")
    assert shown.count() == 2
    source = page.locator("#detail-title").inner_text()
    mistake = next(r for r in mistakes if r["source"] == source)
    assert [shown.nth(i).get_attribute("src") for i in range(2)] == [mistake["overlay"], mistake["true_class_overlay"]]
    shown.nth(1).evaluate("img => img.decode()")
    assert shown.nth(1).evaluate("img => img.naturalWidth") == 320, "the true class overlay loads (enlarged twice)"
    assert f"map of {mistake['true_label']} (true class)" in dialog.inner_text()
    page.locator("#detail-close").click()
    assert not dialog.is_visible()
    assert problems == []


def test_regression_report_draws_its_plots(browser, tmp_path):
    out = DeployZip(tmp_path / "deploy.zip")
    for i, (truth, predicted) in enumerate([(1.0, 1.05), (2.0, 2.5), (3.0, 2.95), (4.0, 3.0)]):
        error = abs(truth - predicted)
        out.add(_result(i, str(truth), f"{predicted:.4g}", None, error <= 0.1, round(error, 6)), Pictures(_jpeg(i)))
    path = out.close(RunInfo("reg.h5", "conv", "regression", "gradcam", [], {"regression_threshold": 0.1}))
    page, problems = open_report(browser, path, tmp_path / "unzipped")
    assert page.locator("#regression svg").count() == 2
    assert page.locator("#regression circle").count() == 4
    assert page.locator("#confusion-section").is_hidden()
    assert page.locator("#gallery figure").first.locator(".src").inner_text() == "testing/img3.jpg.x.ingestion-1.jpg"
    assert problems == []


def test_a_classification_report_offers_what_applies_and_says_what_the_untinted_strips_are(
    browser, bundled_run, tmp_path
):
    page, problems = open_report(browser, bundled_run, tmp_path / "unzipped")
    sorts = page.locator("#sort option").all_inner_texts()
    assert sorts and not any(s.startswith("error") for s in sorts), "no error to sort a classification by"
    assert "untinted strips at the sides are what it does not see" in page.locator("#gallery-note").inner_text()
    gallery, table = page.locator("#gallery").inner_text(), page.locator("#faithfulness").inner_text()
    assert "faithfulness" in gallery and "-0.00" not in gallery
    header, *rows = [row.split("\t") for row in table.splitlines()]
    column = dict(zip(header, zip(*rows, strict=True), strict=True))
    means = column["mean faithfulness"]
    assert means and all(len(m.split(".")[-1]) == 2 for m in means), f"two decimals: {means}"
    agreements = [(int(n), m) for n, m in zip(column["checked"], column["mean agreement"], strict=True)]
    assert all((m == "–") == (n == 0) for n, m in agreements), f"a mean only where maps were checked: {agreements}"
    assert all(len(m.split(".")[-1]) == 2 for n, m in agreements if n), f"two decimals: {agreements}"
    assert problems == []


def test_a_panel_gallery_shows_panels_at_a_readable_width(browser, tmp_path):
    from gradcam.cli import main

    argv = ["--model", str(ROOT / "examples/shapes/model.h5"), "--dataset", str(ROOT / "examples/shapes/export.zip")]
    assert main([*argv, "--resize-mode", "fit-short", "--layout", "panel", "--out", str(tmp_path / "out")]) == 0
    page, problems = open_report(browser, tmp_path / "out" / "deploy.zip", tmp_path / "unzipped")
    page.set_viewport_size({"width": 1200, "height": 900})
    width = page.locator("#gallery figure img").first.evaluate("img => img.getBoundingClientRect().width")
    assert width >= 540, "a panel's three tiles at 180 pixels each at least"
    assert problems == []
