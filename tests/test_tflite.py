"""The TFLite model beside the Keras one: int8 answers per image, agreement, report, and faults."""

import csv
import dataclasses
import io
import json
import subprocess
import sys
import zipfile
from pathlib import Path

import cv2
import numpy as np
import pytest
import tensorflow as tf
import tf_keras

from gradcam.cli import main
from gradcam.engine.formats import load_model
from gradcam.explainer import Explainer
from gradcam.job.pictures import caption
from gradcam.job.records import MapFacts, Outcome, SampleRecord
from tests import helpers
from tests import studio_emulator as emu
from tests.helpers import SHAPE_CLASSES, SHAPES, open_report

JOB = ["--model", SHAPES / "model.h5", "--dataset", SHAPES / "export.zip", "--resize-mode", "fit-short"]
JOB += ["--method", "gradcam", "--evidence", "off"]  # the TFLite model's own maps beside Grad-CAM's; no checks


def _inputs(explainer: Explainer, category: str) -> tuple[list[str], np.ndarray]:
    """The export's images of `category`, preprocessed as the job does: (paths, model inputs)."""
    with zipfile.ZipFile(SHAPES / "export.zip") as archive:
        files = [f["path"] for f in json.loads(archive.read("info.labels"))["files"] if f["category"] == category]
        images = [cv2.imdecode(np.frombuffer(archive.read(f), np.uint8), cv2.IMREAD_COLOR)[..., ::-1] for f in files]
    return files, np.stack([explainer.prepare(np.ascontiguousarray(image))[0] for image in images])


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """The shapes model as int8 (calibrated on 100 training images), float32, and a badly
    calibrated int8 (on three near-black images: its activations saturate)."""
    folder = tmp_path_factory.mktemp("tflite")
    model = load_model(SHAPES / "model.h5")
    _, training = _inputs(Explainer(model, SHAPE_CLASSES, resize_mode="fit-short"), "training")
    paths = {}
    for name, calibration in [("int8", training[:100]), ("float32", None), ("bad", training[:3] * 0.1)]:
        paths[name] = folder / f"{name}.tflite"
        paths[name].write_bytes(helpers.tflite_file(model, calibration))
    return paths


def _run(*args):
    return helpers.run_main(*args)


def _rows(zip_path) -> tuple[dict, list[dict]]:
    with zipfile.ZipFile(zip_path) as archive:
        run = json.loads(archive.read("results.json"))["run"]
        return run, list(csv.DictReader(io.StringIO(archive.read("results.csv").decode())))


def reference(path, inputs: np.ndarray) -> np.ndarray:
    """One interpreter invocation per image, quantized and dequantized by hand."""
    interpreter = tf.lite.Interpreter(model_path=str(path))
    interpreter.allocate_tensors()
    source, target = interpreter.get_input_details()[0], interpreter.get_output_details()[0]
    (in_scale, in_zero), (out_scale, out_zero) = source["quantization"], target["quantization"]
    outputs = []
    for x in inputs:
        q = np.clip(np.round(x / in_scale + in_zero), -128, 127).astype(np.int8)
        interpreter.set_tensor(source["index"], q.reshape(source["shape"]))
        interpreter.invoke()
        outputs.append((interpreter.get_tensor(target["index"])[0].astype(np.float32) - out_zero) * out_scale)
    return np.stack(outputs)


@pytest.fixture(scope="module")
def jobs(models, tmp_path_factory):
    """The job run once with each TFLite model beside the Keras one (the default: both models'
    maps), for the tests that read its outputs: model name -> (the finished run, deploy.zip). The
    int8 one runs main.py in a process of its own: LiteRT says its notices once per process."""

    def job(name: str, run, *flags) -> tuple[subprocess.CompletedProcess, Path]:
        out = tmp_path_factory.mktemp(name)
        return run(*JOB, "--tflite", models[name], "--out", out, *flags), out / "deploy.zip"

    def process(*args) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "main.py", *map(str, args)], cwd=helpers.ROOT, capture_output=True, text=True
        )

    return {"int8": job("int8", process, "--batch-size", "16"), "bad": job("bad", _run, "--faithfulness", "0")}


def test_int8_answers_equal_an_independent_interpreter_run(models, jobs):
    result, deploy = jobs["int8"]
    assert result.returncode == 0, result.stderr
    assert result.stderr == "", "TFLite's own notices stay off stderr"
    run, rows = _rows(deploy)
    paths, inputs = _inputs(
        Explainer(load_model(SHAPES / "model.h5"), SHAPE_CLASSES, resize_mode="fit-short"), "testing"
    )
    expected = dict(zip(paths, reference(models["int8"], inputs), strict=True))
    for row in rows:
        scores = expected[row["source"]]
        assert row["tflite_predicted"] == SHAPE_CLASSES[int(np.argmax(scores))], row["source"]
        assert float(row["tflite_confidence"]) == pytest.approx(float(scores.max()), abs=1e-6)
        assert row["agrees"] == str(row["tflite_predicted"] == row["predicted"])
    disagreements = sum(row["agrees"] == "False" for row in rows)
    assert run["tflite"] == {
        "model": "int8.tflite",
        "type": "int8",
        "compared": 120,
        "against": "keras",
        "disagreements": disagreements,
        "agreement": round(1 - disagreements / 120, 6),
        "maps": run["tflite"]["maps"],  # the int8 model's own maps: tested below
        "withheld": sum(row["tflite_map_withheld"] != "" for row in rows),
    }
    assert disagreements <= 6, "a well calibrated int8 model answers as the float one nearly always"
    assert f"int8.tflite (int8): agrees with the Keras model on {120 - disagreements} of 120 images" in result.stdout


def test_a_float32_tflite_model_agrees_everywhere(models, tmp_path):
    result = _run(*JOB, "--tflite", models["float32"], "--out", tmp_path)
    assert result.returncode == 0, result.stderr
    run, rows = _rows(tmp_path / "deploy.zip")
    assert run["tflite"]["type"] == "float32" and run["tflite"]["disagreements"] == 0
    for row in rows:
        assert float(row["tflite_confidence"]) == pytest.approx(float(row["confidence"]), abs=1e-4)


def test_disagreements_are_counted_filtered_and_shown(jobs, browser, tmp_path):
    result, deploy = jobs["bad"]
    assert result.returncode == 0, result.stderr
    run, rows = _rows(deploy)
    disagreeing = [row for row in rows if row["agrees"] == "False"]
    assert len(disagreeing) >= 10 and run["tflite"]["disagreements"] == len(disagreeing)
    assert f"; {len(disagreeing)} disagreements" in result.stdout
    page, problems = open_report(browser, deploy, tmp_path / "unzipped")
    assert "int8 disagreements" in page.locator("#cards").inner_text()
    assert page.locator("#tflite-section").is_visible()
    off_diagonal = page.locator("#tflite td.off")
    assert sum(int(off_diagonal.nth(i).inner_text()) for i in range(off_diagonal.count())) == len(disagreeing)
    page.select_option("#outcome", "disagree")
    figures = page.locator("#gallery figure")
    assert figures.count() == len(disagreeing)
    first = figures.first.inner_text()
    assert "int8: " in first and ", disagrees" in first
    assert problems == []


def test_the_panel_caption_gives_both_answers_where_they_differ():
    result = SampleRecord(
        "a.jpg", "testing", "circle", Outcome("circle", 0.97, True), MapFacts("circle", (1, 2), False)
    )
    assert caption(result, "int8") == "true: circle  predicted: circle (97%)"
    result = dataclasses.replace(result, tflite=Outcome("square", 0.55), agrees=False)
    assert caption(result, "int8") == "true: circle  predicted: circle (97%)  int8: square (55%)"


def _other_model(tmp_path, inputs: int, outputs: int):
    tf_keras.utils.set_random_seed(0)
    model = tf_keras.Sequential([tf_keras.layers.InputLayer(input_shape=(inputs,)), tf_keras.layers.Dense(outputs)])
    path = tmp_path / f"other-{inputs}-{outputs}.tflite"
    path.write_bytes(helpers.tflite_file(model, None))
    return path


def test_a_tflite_model_that_does_not_fit_is_refused_before_any_work(tmp_path, capsys):
    garbage = tmp_path / "garbage.tflite"
    garbage.write_bytes(b"not a flatbuffer at all")
    cases = [
        (tmp_path / "missing.tflite", f"error: {tmp_path / 'missing.tflite'}: TFLite model not found"),
        (garbage, f"error: {garbage}: not a readable TFLite model ("),
        (
            _other_model(tmp_path, 100, 3),
            f"error: {tmp_path / 'other-100-3.tflite'}: its input [1, 100] holds 100 values per image, "
            "the Keras model's 12288",
        ),
        (
            _other_model(tmp_path, 12288, 4),
            f"error: {tmp_path / 'other-12288-4.tflite'}: it has 4 outputs, the Keras model 3",
        ),
    ]
    for path, message in cases:
        assert main([*map(str, JOB), "--tflite", str(path), "--out", str(tmp_path / "out")]) == 2
        lines = capsys.readouterr().err.splitlines()
        assert len(lines) == 1 and lines[0].startswith(message), lines
        assert not (tmp_path / "out" / "deploy.zip").exists()


def test_no_tflite_turns_it_off(models, tmp_path):
    assert main([*map(str, JOB), "--tflite", str(models["int8"]), "--no-tflite", "--out", str(tmp_path)]) == 0
    run, rows = _rows(tmp_path / "deploy.zip")
    assert run["tflite"] == {} and all(row["tflite_predicted"] == "" for row in rows)


# --- Studio mode: the mounted trained.tflite, described in tfliteModels ---


def _tflite_metadata(home, kind: str = "int8") -> list:
    return [{"modelPath": str(home / "input" / "trained.tflite"), "details": {"modelType": kind}}]


@pytest.fixture(scope="module")
def studio_tflite(model_zip, tmp_path_factory) -> bytes:
    """Studio's model (the shapes model with its outputs in OUTPUT_ORDER) as int8."""
    folder = tmp_path_factory.mktemp("studio-tflite")
    (folder / "trained.h5.zip").write_bytes(model_zip)
    model = load_model(folder / "trained.h5.zip")
    _, training = _inputs(Explainer(model, helpers.OUTPUT_ORDER, resize_mode="fit-short"), "training")
    return helpers.tflite_file(model, training[:100])


def _run_block(home, studio):
    studio.faults.polls_until_done = 1  # the export is not what these tests are about
    return helpers.run_main("--metadata", home / "input" / "deployment-metadata.json", *helpers.STUDIO_ARGS)


def test_studio_compares_with_its_own_trained_tflite(studio, tmp_path, model_zip, studio_tflite):
    home = tmp_path / "home"
    home = helpers.studio_home(tmp_path, studio, model_zip, studio.api_key, tflite_models=_tflite_metadata(home))
    (home / "input" / "trained.tflite").write_bytes(studio_tflite)
    result = _run_block(home, studio)
    assert result.returncode == 0, result.stderr
    run, rows = _rows(home / "output" / "deploy.zip")
    assert run["tflite"]["model"] == "trained.tflite" and run["tflite"]["compared"] == len(rows) == 12
    assert all(row["tflite_predicted"] in helpers.OUTPUT_ORDER for row in rows)
    # Its own maps beside the Keras maps (Studio's default, "Models to explain: both").
    assert run["parameters"]["explain"] == "both" and run["tflite"]["maps"]["total"]["maps"] >= 10
    assert all(row["tflite_overlay"] for row in rows if not row["tflite_map_withheld"])


@pytest.mark.parametrize("fault", ["missing", "garbage"])
def test_a_bad_trained_tflite_in_studio_is_a_warning_and_the_job_completes(fault, studio, tmp_path, model_zip):
    home = tmp_path / "home"
    home = helpers.studio_home(tmp_path, studio, model_zip, studio.api_key, tflite_models=_tflite_metadata(home))
    if fault == "garbage":
        (home / "input" / "trained.tflite").write_bytes(b"\x00" * 64)
    result = _run_block(home, studio)
    assert result.returncode == 0, result.stderr
    run, rows = _rows(home / "output" / "deploy.zip")
    path = home / "input" / "trained.tflite"
    problem = f"{path}: TFLite model not found" if fault == "missing" else f"{path}: not a readable TFLite model ("
    assert run["tflite"]["problem"].startswith(problem)
    assert any(w.startswith(problem) and w.endswith("the TFLite columns are empty") for w in run["warnings"])
    assert helpers.closing_warnings(result.stdout) == run["warnings"], "the log ends with the warnings"
    assert len(rows) == 12 and all(row["tflite_predicted"] == "" for row in rows)


@pytest.mark.parametrize("activation", [None, "sigmoid"], ids=["regression", "binary"])
def test_regression_and_binary_models_are_compared_too(activation, tmp_path):
    model = helpers.single_output_cnn(activation, k=tf_keras)
    model.save(tmp_path / "model.h5")
    (tmp_path / "model.tflite").write_bytes(helpers.tflite_file(model, None))
    rng = np.random.default_rng(5)
    labels = ["0.25", "0.5", "1.5"] if activation is None else ["no", "yes", "yes"]
    samples = [
        (f"testing/{i}.jpg", label, helpers.jpeg(rng.integers(0, 256, (40, 48, 3), dtype=np.uint8)))
        for i, label in enumerate(labels)
    ]
    export = helpers.write_export(tmp_path / "export.zip", samples)
    argv = ["--model", tmp_path / "model.h5", "--dataset", export, "--tflite", tmp_path / "model.tflite"]
    assert main([*map(str, argv), "--out", str(tmp_path / "out")]) == 0
    run, rows = _rows(tmp_path / "out" / "deploy.zip")
    assert run["tflite"]["disagreements"] == 0 and run["tflite"]["compared"] == 3
    for row in rows:
        assert row["agrees"] == "True"
        if activation is None:
            assert float(row["tflite_error"]) == pytest.approx(float(row["error"]), abs=1e-4)
            assert float(row["tflite_predicted"]) == pytest.approx(float(row["predicted"]), rel=1e-3)
        else:
            assert row["tflite_predicted"] == row["predicted"]
            assert float(row["tflite_confidence"]) == pytest.approx(float(row["confidence"]), abs=1e-4)


# --- The TFLite model's own maps beside the Keras model's (--explain both, the default) ---


def _results(zip_path) -> tuple[dict, list[dict]]:
    """results.json's run and rows (numbers as numbers)."""
    with zipfile.ZipFile(zip_path) as archive:
        results = json.loads(archive.read("results.json"))
    return results["run"], results["results"]


def test_each_image_gets_the_int8_model_s_own_map_beside_the_keras_map(models, jobs):
    result, deploy = jobs["int8"]
    assert result.returncode == 0, result.stderr
    run, rows = _results(deploy)
    drawn = [row for row in rows if not row["tflite_map_withheld"]]
    assert len(drawn) >= 114, "the int8 twin gives LiteRT's outputs on nearly every image"
    with zipfile.ZipFile(deploy) as archive:
        for row in drawn:
            keras = cv2.imdecode(np.frombuffer(archive.read(row["overlay"]), np.uint8), cv2.IMREAD_COLOR)
            int8 = cv2.imdecode(np.frombuffer(archive.read(row["tflite_overlay"]), np.uint8), cv2.IMREAD_COLOR)
            assert int8.shape == keras.shape, "the same layout and size as the Keras picture"
            assert row["tflite_overlay"].startswith(row["overlay"].rsplit("/", 1)[0] + "/")
    # Each map is the int8 model's own: recomputed with the Python API on its twin, and the agreement
    # recomputed from the two maps by the reference measure.
    from tests.test_agreement import _reference

    keras = Explainer(load_model(SHAPES / "model.h5"), SHAPE_CLASSES, resize_mode="fit-short")
    twin = Explainer(load_model(models["int8"]), SHAPE_CLASSES, resize_mode="fit-short")
    with zipfile.ZipFile(SHAPES / "export.zip") as archive:
        for row in drawn[:6]:
            image = cv2.imdecode(np.frombuffer(archive.read(row["source"]), np.uint8), cv2.IMREAD_COLOR)[..., ::-1]
            a, b = keras.explain([np.ascontiguousarray(image)])[0], twin.explain([np.ascontiguousarray(image)])[0]
            assert [row["tflite_peak_x"], row["tflite_peak_y"]] == list(b.peak)
            assert row["tflite_faithfulness"] == pytest.approx(b.faithfulness, abs=1e-3)
            assert row["map_agreement"] == pytest.approx(_reference(a.cam, b.cam), abs=1e-5)
    agreement = run["tflite"]["maps"]
    scored = [row["map_agreement"] for row in drawn if row["map_agreement"] is not None]
    assert agreement["total"]["maps"] == len(scored)
    assert agreement["total"]["elsewhere"] == sum(a < 0.5 for a in scored)
    assert agreement["total"]["share"] <= 0.15, "a well calibrated int8 model looks where the float one does"
    assert not any("looks elsewhere" in w for w in run["warnings"])
    assert f"int8 maps: agree with the Keras maps on {len(scored) - agreement['total']['elsewhere']} of " in (
        result.stdout
    )


def test_a_badly_calibrated_int8_model_is_caught_looking_elsewhere(jobs, browser, tmp_path):
    result, deploy = jobs["bad"]
    assert result.returncode == 0, result.stderr
    run, rows = _results(deploy)
    elsewhere = [row for row in rows if row["map_agreement"] is not None and row["map_agreement"] < 0.5]
    assert len(elsewhere) / len(rows) >= 0.5, "its maps moved with its answers"
    assert run["tflite"]["maps"]["total"]["elsewhere"] == len(elsewhere)
    warning = next(w for w in run["warnings"] if "looks elsewhere" in w)
    assert warning.startswith(f"the int8 model looks elsewhere than the Keras model on {len(elsewhere)} of ")
    assert helpers.closing_warnings(result.stdout) == run["warnings"]
    page, problems = open_report(browser, deploy, tmp_path / "unzipped")
    table = page.locator("#tflite table").first.inner_text()
    assert "looks elsewhere" in table and "mean agreement" in table
    page.select_option("#outcome", "elsewhere")
    assert page.locator("#shown").inner_text() == f"({len(elsewhere)} of {len(rows)} shown)"
    figures = page.locator("#gallery figure")
    assert figures.count() == min(len(elsewhere), 100)  # a page of cards
    assert all("int8 looks elsewhere" in figures.nth(i).inner_text() for i in range(0, figures.count(), 10))
    figures.first.locator("a").click()
    maps = page.locator("#detail-maps figure")
    assert maps.count() >= 2 and "the int8 model's own map: agreement" in maps.last.inner_text()
    page.wait_for_selector("#detail-fields dt")  # the row's fields come from its chunk
    assert "map agreement" in page.locator("#detail-fields").inner_text()
    assert problems == []


def test_explain_keras_draws_no_tflite_maps_and_explain_tflite_explains_it_alone(models, browser, tmp_path):
    assert (
        main([*map(str, JOB), "--tflite", str(models["int8"]), "--explain", "keras", "--out", str(tmp_path / "k")]) == 0
    )
    run, rows = _rows(tmp_path / "k" / "deploy.zip")
    assert run["tflite"]["compared"] == 120 and run["tflite"]["maps"] == {}
    assert all(row["tflite_overlay"] == "" and row["map_agreement"] == "" for row in rows)
    assert (
        main([*map(str, JOB), "--tflite", str(models["int8"]), "--explain", "tflite", "--out", str(tmp_path / "t")])
        == 0
    )
    run, rows = _rows(tmp_path / "t" / "deploy.zip")
    assert run["model"] == "int8.tflite" and run["tflite"]["model"] == "LiteRT"
    assert run["parameters"]["explain"] == "tflite"
    withheld = [row for row in rows if row["tflite_map_withheld"]]
    assert all(row["overlay"] == "" and row["peak_x"] == "" for row in withheld), "no map that is not the device's"
    assert all(row["overlay"] for row in rows if not row["tflite_map_withheld"])
    # Without a Keras model the comparison is the twin against LiteRT, and the report names it so.
    assert run["tflite"]["against"] == "twin" and run["tflite"]["withheld"] == len(withheld)
    page, problems = open_report(browser, tmp_path / "t" / "deploy.zip", tmp_path / "unzipped")
    compared, agree = run["tflite"]["compared"], 1 - run["tflite"]["disagreements"] / run["tflite"]["compared"]
    title = page.locator("#tflite-title").inner_text()
    twin = "The int8 model's twin (its maps are shown) against the model on LiteRT"
    assert title.startswith(f"{twin}: the same answer on {agree:.1%} of {compared}"), title
    cards = page.locator("#cards").inner_text()
    assert f"{agree:.1%}\ntwin against LiteRT (int8)" in cards and "twin / LiteRT (int8) disagreements" in cards
    assert ("maps withheld (twin not LiteRT)" in cards) == bool(withheld)
    assert page.locator("#tflite th").first.inner_text() == "twin \\ LiteRT (int8)"
    page.select_option("#outcome", "disagree")
    assert "twin and LiteRT (int8) disagree" in page.locator("#outcome").inner_text()
    assert "Keras" not in page.locator("body").inner_text(), "no Keras model was run"
    assert problems == []


def test_a_studio_project_without_a_keras_model_gets_its_tflite_model_explained(
    studio, tmp_path, studio_tflite, export_zip
):
    home = tmp_path / "home"
    home = helpers.studio_home(tmp_path, studio, None, studio.api_key, tflite_models=_tflite_metadata(home))
    (home / "input" / "trained.tflite").write_bytes(studio_tflite)
    result = _run_block(home, studio)
    assert result.returncode == 0, result.stderr
    helpers.check_deploy_zip(home / "output" / "deploy.zip", export_zip)
    run, rows = _rows(home / "output" / "deploy.zip")
    missing = f"trained.h5.zip is missing (a project without a Keras model): explaining {home}/input/trained.tflite"
    assert missing in result.stdout
    assert run["model"] == "trained.tflite" and run["tflite"]["model"] == "LiteRT" and len(rows) == 12
    assert not any("/learn-data/" in r.path for r in studio.requests), "nothing downloaded"


def test_an_api_key_run_downloads_the_project_s_tflite_model_beside_or_alone(
    studio, tmp_path, model_zip, studio_tflite, export_zip
):
    studio.tflite, studio.faults.polls_until_done = studio_tflite, 1
    int8 = f"model-{emu.PROJECT_ID}-tflite-int8.tflite"
    for keras in (True, False):
        studio.model_zip = model_zip if keras else None
        out = tmp_path / f"out-{keras}"
        result = helpers.run_with_key(studio, "--out", out, "--work-dir", tmp_path / f"work-{keras}")
        assert result.returncode == 0, result.stderr
        helpers.check_deploy_zip(out / "deploy.zip", export_zip)
        helpers.assert_key_kept_secret(studio, result.stdout + result.stderr, out / "deploy.zip")
        run, rows = _rows(out / "deploy.zip")
        if keras:
            assert run["model"] == f"model-{emu.PROJECT_ID}-{emu.LEARN_ID}.zip" and run["tflite"]["model"] == int8
            assert run["tflite"]["maps"]["total"]["maps"] >= 10
            assert all(row["tflite_overlay"] for row in rows if not row["tflite_map_withheld"])
        else:
            assert "the project has no Keras model (Studio API: downloading the model failed: HTTP 404" in result.stdout
            assert run["model"] == int8 and run["tflite"]["model"] == "LiteRT"


def test_keras_layers_named_on_the_command_line_are_the_tflite_model_s_too(models, tmp_path):
    """`--layer re_lu_1` names a Keras layer; in the TFLite file it is `sequential/re_lu_1`."""
    argv = [*map(str, JOB), "--tflite", str(models["int8"]), "--layer", "re_lu_1", "--faithfulness", "0"]
    assert main([*argv, "--out", str(tmp_path)]) == 0
    run, rows = _results(tmp_path / "deploy.zip")
    assert run["layer"] == "re_lu_1" and run["tflite"]["maps"]["total"]["maps"] >= 100
    assert all(row["tflite_overlay"] for row in rows if not row["tflite_map_withheld"])
    twin = Explainer(load_model(models["int8"]), SHAPE_CLASSES, layer="re_lu_1")
    assert twin.layer_name == "sequential/re_lu_1", "a TFLite layer is found by its name without its scopes"
