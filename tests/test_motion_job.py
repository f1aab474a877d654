"""The job on models without convolutions (motion and sensors), in every mode: offline features, Studio's
deployment (the real motion and IMU projects, through the emulator), an API key, and the Python API."""

import csv
import io
import json
import logging
import re
import zipfile

import cv2
import numpy as np
import pytest

from gradcam import Explainer
from gradcam.cli import main
from gradcam.edge.features import spread_rows
from gradcam.job.run import explain_dataset
from gradcam.job.sensors import BAR_PX, FOR, GAP_PX, LABEL_PX, LANE_PX, TRACE_PX
from tests import audio, helpers, motion
from tests import studio_emulator as emu
from tests.fixtures.make_motion_family import Member

REAL = helpers.ROOT.parent / "shared" / "real"
needs_real = pytest.mark.skipif(not REAL.is_dir(), reason="../shared/real (Edge Impulse's real files) is absent")
SPECTRAL = Member("wide", "spectral-analysis", "distractor")
RAW = Member("wide", "raw", "distractor")
MISLABELLED = (1, 5, 9)  # windows whose label is the next class: the model's answer is a mistake there


def _rows(zip_path) -> tuple[list[dict], dict, zipfile.ZipFile]:
    archive = zipfile.ZipFile(zip_path)
    rows = list(csv.DictReader(io.StringIO(archive.read("results.csv").decode())))
    return rows, json.loads(archive.read("results.json")), archive


def _picture(archive: zipfile.ZipFile, name: str) -> np.ndarray:
    return cv2.cvtColor(cv2.imdecode(np.frombuffer(archive.read(name), np.uint8), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)


@pytest.fixture(scope="module")
def spectral_run(tmp_path_factory):
    """30 windows of spectral features, 3 of them mislabelled, explained offline: (deploy.zip, windows, X)."""
    folder = tmp_path_factory.mktemp("spectral")
    data = motion.windows(30, 77)
    x = motion.features(data, "spectral-analysis")
    labels = motion.labels_4col(data)
    labels[list(MISLABELLED), 0] = labels[list(MISLABELLED), 0] % 3 + 1
    np.save(folder / "X_testing.npy", x)
    np.save(folder / "y_testing.npy", labels)
    config = dict(motion.SPECTRAL_OPTIONS, type="spectral-analysis", axes=motion.AXES, frequency=motion.FREQUENCY)
    (folder / "dsp.json").write_text(json.dumps(config | {"window_size_ms": 2000, "implementation_version": 4}))
    argv = ["--model", SPECTRAL.path, "--features", folder / "X_testing.npy", "--labels", folder / "y_testing.npy"]
    argv += ["--classes", ",".join(motion.CLASSES), "--dsp-config", folder / "dsp.json", "--out", folder / "out"]
    result = helpers.run_main(*argv)
    assert result.returncode == 0, result.stderr
    return folder / "out" / "deploy.zip", data, x, result.stdout


def test_every_window_is_explained_and_each_class_weighs_its_own_band(spectral_run):
    zip_path, data, _, log = spectral_run
    rows, document, _ = _rows(zip_path)
    assert (
        "attributions from 16 windows of the data; deletions to each feature's median over 30" in log
        and "the 63 features of spectral-analysis, by axis: accX, accY, accZ" in log
    )
    assert len(rows) == 30 and {r["correct"] for r in rows} == {"True", "False"}
    wrong = [r for r in rows if r["correct"] == "False"]
    assert sorted(int(r["sample_id"]) - 1000 for r in wrong) == list(MISLABELLED)
    assert all(r["overlay"].startswith("incorrect/") and r["true_class_overlay"] for r in wrong)
    weights = document["run"]["weights"]
    assert document["run"]["method"] == "expected-gradients" and weights["note"] is None
    assert len(weights["groups"]) == 63 and weights["groups"][21] == "accY RMS"
    spacing = motion.FREQUENCY / motion.FFT_LENGTH
    for c in weights["classes"]:
        # The band that holds the class's frequency (2, 6 or 12 Hz), on accY, weighs most.
        k = round(motion.HERTZ[motion.CLASSES.index(c["class"])] / spacing)
        band = f"accY Spectral Power {round(k * spacing - spacing / 2, 2)} - {round(k * spacing + spacing / 2, 2)} Hz"
        assert max(c["shares"], key=c["shares"].get) == band, (c["class"], band)
        assert sum(v for g, v in c["shares"].items() if g.startswith("accY")) >= 0.8
    assert {c["class"] for c in weights["mistakes"]} == {
        motion.CLASSES[(label % 3)] for label in data.labels[list(MISLABELLED)]
    }


def test_the_top_feature_is_the_python_apis(spectral_run):
    """Each row's peak_feature is the feature with the most attribution as the Python API gives it, with
    the same references (16 windows, evenly spread) and baseline (the median over the windows)."""
    zip_path, data, x, _ = spectral_run
    rows, _, _ = _rows(zip_path)
    references = spread_rows(x, 16)
    explainer = Explainer.from_file(SPECTRAL.path, motion.CLASSES, baseline=np.median(x, axis=0), references=references)
    maps = explainer.maps(x.reshape(30, -1, 1, 1), np.full(30, -1, np.int32))
    layout = motion.spectral(data.signals[0])[1]
    names = [f"{axis} {kind}" for axis in motion.AXES for kind in layout]
    by_id = {int(r["sample_id"]) - 1000: r for r in rows}
    for i, m in enumerate(maps):
        assert by_id[i]["peak_feature"] == names[int(np.argmax(m.cam))]
        assert float(by_id[i]["faithfulness"]) == pytest.approx(m.faithfulness, abs=1e-4)


def test_a_windows_picture_has_its_lanes_and_its_bars(spectral_run):
    zip_path, _, _, _ = spectral_run
    rows, _, archive = _rows(zip_path)
    right = next(r for r in rows if r["correct"] == "True")
    picture = _picture(archive, right["overlay"])
    lanes = 3 * (LANE_PX + GAP_PX) - GAP_PX
    bars = (8 + 1) * BAR_PX + 6
    assert picture.shape[:2] == (lanes + bars, LABEL_PX + 21 * 28)  # 21 features per axis, 28 px each
    chart = picture[lanes:].astype(int)
    first_bar = chart[BAR_PX + 3 : 2 * BAR_PX - 3, picture.shape[1] // 2 :]
    assert (np.abs(first_bar - FOR).sum(axis=2) < 40).any(), "the top feature's bar, for the class, to the right"
    assert (picture[:lanes, :LABEL_PX] > 200).mean() > 0.9, "the axes' names on white"
    # A mistake's picture of its true class: the same lanes, its own bars.
    wrong = next(r for r in rows if r["correct"] == "False")
    assert _picture(archive, wrong["true_class_overlay"]).shape == picture.shape


def test_the_report_shows_what_each_class_weighs(browser, spectral_run, tmp_path):
    zip_path, _, _, _ = spectral_run
    page, problems = helpers.open_report(browser, zip_path, tmp_path / "report")
    assert page.locator("#weights-section").is_visible()
    table = page.locator("#weights table").first.locator("tr")
    assert table.count() == 1 + 3 and "accY Spectral Power" in table.nth(1).inner_text()
    page.select_option("#outcome", "incorrect")
    assert page.locator("#gallery figure").count() == len(MISLABELLED)
    page.locator("#gallery figure a").first.click()
    page.wait_for_selector("#detail-fields dt")  # the row's fields come from its chunk
    assert "weighs most" in page.locator("#detail").inner_text()
    assert page.locator("#detail-maps img").count() == 2
    assert problems == []


def test_raw_samples_are_drawn_as_signals_from_the_python_api(tmp_path):
    data = motion.windows(12, 78)
    np.save(tmp_path / "X.npy", motion.features(data, "raw"))
    np.save(tmp_path / "y.npy", motion.labels_4col(data))
    summary = explain_dataset(
        RAW.path,
        out=tmp_path / "out",
        features=tmp_path / "X.npy",
        labels=tmp_path / "y.npy",
        classes=motion.CLASSES,
        dsp_block="raw",
        axes=motion.AXES,
        layout="panel",
    )
    assert summary.info.tally.correct == 12 and summary.info.totals.weights.groups == tuple(motion.AXES)
    rows, _, archive = _rows(summary.zip_path)
    assert all(r["peak_feature"].startswith(("accX step", "accY step", "accZ step")) for r in rows)
    accy = [r for r in rows if r["peak_feature"].startswith("accY")]
    assert len(accy) >= 10, [r["peak_feature"] for r in rows]
    picture = _picture(archive, rows[0]["overlay"])
    lane = picture[:LANE_PX, LABEL_PX:]
    assert (lane.max(axis=2) < 90).any(), "the signal's dark trace"


def test_features_that_do_not_fit_the_model_are_one_line(tmp_path):
    np.save(tmp_path / "X.npy", np.zeros((4, 50), np.float32))
    result = helpers.run_main("--model", SPECTRAL.path, "--features", tmp_path / "X.npy", "--out", tmp_path / "out")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1] == (
        f"error: {tmp_path / 'X.npy'}: windows of 50 values; the model takes 63: the features of another DSP block?"
    )
    result = helpers.run_main("--model", SPECTRAL.path, "--axes", "x,y", "--out", tmp_path / "out")
    assert result.returncode == 2 and "--axes and --dsp-config go with --features" in result.stderr


def _real_project(name: str, axes: int) -> tuple[emu.AudioProject, dict, bytes]:
    """A real motion project (its metadata, its Keras model) serving the real CBOR samples' features, as its
    Syntiant IMU block would compute them (tests/motion.py), each sample one window."""
    meta = json.loads((REAL / f"{name}-metadata.json").read_text())
    values, labels, names = motion.cbor_samples(REAL / "imu-testing-cbor.zip")
    x = motion.syntiant(values, axes)
    classes = meta["classes"]
    index = [classes.index(label) if label in classes else i % len(classes) for i, label in enumerate(labels)]
    y = np.stack([np.array(index) + 1, 600 + np.arange(len(x)), np.zeros(len(x)), np.full(len(x), 2000)], 1)
    block = meta["impulse"]["dspBlocks"][0]
    project = emu.AudioProject(
        audio.npy_bytes(x),
        audio.npy_bytes(y.astype(np.int32)),
        [(600 + i, 1) for i in range(len(x))],
        block["metadata"]["dspConfig"]["options"],
        x.shape[1],
        1,
        dsp_type="syntiant-imu",
        window_ms=2000,
        increase_ms=200,
        frequency=100,
        axes=names[:axes],
        output="flat",
        version=1,
    )
    return project, meta, (REAL / f"{name}-trained.h5.zip").read_bytes()


@needs_real
@pytest.mark.parametrize(("name", "axes"), [("imu", 9), ("motion", 3)])
def test_real_motion_projects_run_in_studio(name, axes, tmp_path, capsys, caplog):
    """The real IMU (9 axes, 1,808 features) and motion (3 axes, 608) projects, Dense only, deployed: 40
    real samples' windows, each one explained; the Syntiant block's padding never weighs."""
    project, meta, model_zip = _real_project(name, axes)
    caplog.set_level(logging.INFO, "gradcam")
    with emu.Emulator(b"", model_zip, classes=meta["classes"], audio=project) as studio:
        home = helpers.studio_home(
            tmp_path, studio, model_zip, studio.api_key, classes=meta["classes"], impulse=meta["impulse"]
        )
        code = main(["--metadata", str(home / "input" / "deployment-metadata.json")])
        assert code == 0, capsys.readouterr().err
    features = 200 * axes + 8
    assert f"the {features} features of syntiant-imu, by axis: {', '.join(project.axes)}" in caplog.text
    rows, document, archive = _rows(home / "output" / "deploy.zip")
    assert len(rows) == 40 and all(r["faithfulness"] for r in rows)
    assert all(r["peak_feature"].split(" at ")[0] in project.axes and r["peak_feature"].endswith(" ms") for r in rows)
    assert document["run"]["weights"]["groups"] == project.axes
    picture = _picture(archive, rows[0]["overlay"])
    assert picture.shape[0] > axes * LANE_PX
    if name == "imu":  # the stand-in for Syntiant's scaling gives the real model 38 of 40
        assert sum(r["correct"] == "True" for r in rows) >= 36


@needs_real
def test_a_real_motion_project_with_an_api_key(tmp_path):
    project, meta, model_zip = _real_project("imu", 9)
    with emu.Emulator(b"", model_zip, classes=meta["classes"], audio=project) as studio:
        result = helpers.run_with_key(studio, "--out", tmp_path / "out", "--work-dir", tmp_path / "work")
        assert result.returncode == 0, result.stderr
        helpers.assert_key_kept_secret(studio, result.stdout + result.stderr, tmp_path / "out" / "deploy.zip", False)
    rows, document, _ = _rows(tmp_path / "out" / "deploy.zip")
    assert len(rows) == 40 and document["run"]["method"] == "expected-gradients"


def test_spectral_windows_get_their_raw_signal_from_studio(tmp_path, caplog):
    """With an API key: the spectral features and, for each sample, its raw data through the official
    client (RawDataApi.get_sample), drawn above each axis's cells; a sample Studio does not serve is
    drawn without it, said once."""
    data = motion.windows(12, 79)
    x = motion.features(data, "spectral-analysis")
    y = motion.labels_4col(data)
    y[:, 1] = 900 + np.arange(12)
    raw = {900 + i: data.signals[i] for i in range(12) if i != 4}
    project = emu.AudioProject(
        audio.npy_bytes(x),
        audio.npy_bytes(y),
        [(900 + i, 1) for i in range(12)],
        motion.SPECTRAL_OPTIONS,
        x.shape[1],
        1,
        dsp_type="spectral-analysis",
        window_ms=2000,
        increase_ms=2000,
        frequency=motion.FREQUENCY,
        axes=motion.AXES,
        output="flat",
        raw=raw,
    )
    model_zip = io.BytesIO()
    with zipfile.ZipFile(model_zip, "w") as archive:
        archive.write(SPECTRAL.path, "model.h5")
    caplog.set_level(logging.INFO, "gradcam")
    with emu.Emulator(b"", model_zip.getvalue(), classes=motion.CLASSES, audio=project) as studio:
        result = helpers.run_with_key(studio, "--out", tmp_path / "out", "--work-dir", tmp_path / "work")
        assert result.returncode == 0, result.stderr
        served = [r.path for r in studio.requests if re.fullmatch(r".*/raw-data/\d+", r.path)]
    assert len(served) == 12, "each sample's raw data fetched once"
    assert result.stdout.count("its windows are drawn without their raw signal") == 1
    rows, document, archive = _rows(tmp_path / "out" / "deploy.zip")
    assert sum(r["correct"] == "True" for r in rows) == 12 and document["run"]["weights"]["note"] is None
    for row in rows:
        picture = _picture(archive, row["overlay"])
        trace = picture[:TRACE_PX, LABEL_PX:]  # accX's raw signal, above its cells
        drawn = (trace.max(axis=2) < 120).any()
        assert drawn == (row["sample_id"] != "904"), row["sample_id"]
    # The trace follows the signal: its darkest row per column rises and falls as accY's values do.
    first = next(r for r in rows if r["sample_id"] == "900")
    lane = _picture(archive, first["overlay"])[TRACE_PX + LANE_PX + GAP_PX : 2 * TRACE_PX + LANE_PX + GAP_PX, LABEL_PX:]
    columns = np.linspace(0, lane.shape[1] - 1, 125).astype(int)
    heights = -lane[:, columns].min(axis=2).argmin(axis=0)
    assert np.corrcoef(heights, data.signals[0][:, 1])[0, 1] > 0.8


def test_the_int8_model_that_ships_is_explained_beside_and_alone(spectral_run, tmp_path):
    """The Dense model's int8 TFLite conversion (int8 in and out, as Studio builds it): beside the Keras
    model, its own attributions (its twin's) on every window, agreeing with the Keras ones; alone, it is
    explained through its twin, checked against LiteRT on every window."""
    import tf_keras

    zip_path, _, x, _ = spectral_run
    folder = zip_path.parents[1]
    tflite = tmp_path / "dense-int8.tflite"
    model = tf_keras.models.load_model(SPECTRAL.path, compile=False)
    tflite.write_bytes(helpers.tflite_file(model, x.astype(np.float32)))
    args = ["--features", folder / "X_testing.npy", "--labels", folder / "y_testing.npy"]
    args += ["--classes", ",".join(motion.CLASSES), "--dsp-config", folder / "dsp.json"]
    result = helpers.run_main("--model", SPECTRAL.path, *args, "--tflite", tflite, "--out", tmp_path / "beside")
    assert result.returncode == 0, result.stderr
    rows, document, _ = _rows(tmp_path / "beside" / "deploy.zip")
    assert all(r["agrees"] == "True" and r["tflite_overlay"] for r in rows)
    agreement = [float(r["map_agreement"]) for r in rows]
    assert np.mean(agreement) > 0.9 and document["run"]["tflite"]["maps"]["total"]["maps"] == 30, agreement
    alone = helpers.run_main("--model", tflite, *args, "--out", tmp_path / "alone")
    assert alone.returncode == 0, alone.stderr
    assert "LiteRT (int8): agrees with the twin whose maps are shown on 30 of 30 images" in alone.stdout
    rows, document, _ = _rows(tmp_path / "alone" / "deploy.zip")
    assert document["run"]["method"] == "expected-gradients" and all(r["peak_feature"] for r in rows)
