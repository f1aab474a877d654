"""A model fed by two DSP blocks (tests/fixtures/make_audio_family.py: MFCC 99 x 16 then MFE 99 x 40,
5,544 features in rows of 7, so rows straddle frames and the two blocks): offline with one --features
file per block, and with an API key against the emulator, each map carried back to each block's
frames, checked against where the burst lies."""

import csv
import io
import json
import logging
import zipfile

import cv2
import numpy as np
import pytest

from gradcam.cli import main
from gradcam.job.features import GAP_PX
from gradcam.job.run import explain_dataset
from tests import audio, helpers
from tests import studio_emulator as emu
from tests.fixtures.make_audio_family import TWO_BLOCK_CEPSTRA, TWO_BLOCKS, two_block_features

CLASSES = audio.CLASSES
FRAME_MS = 1000 / audio.FRAMES
SHAPES = f"{audio.FRAMES}x{TWO_BLOCK_CEPSTRA},{audio.FRAMES}x{audio.FILTERS}"


@pytest.fixture(scope="module")
def windows(tmp_path_factory):
    folder = tmp_path_factory.mktemp("two-blocks")
    data = audio.clips(60, seed=7)
    mfcc, mfe = two_block_features(data)
    np.save(folder / "X_mfcc.npy", mfcc)
    np.save(folder / "X_mfe.npy", mfe)
    np.save(folder / "y_testing.npy", audio.labels_4col(data))
    return folder, data, (mfcc, mfe)


def _rows(zip_path) -> tuple[list[dict], zipfile.ZipFile]:
    archive = zipfile.ZipFile(zip_path)
    return list(csv.DictReader(io.StringIO(archive.read("results.csv").decode()))), archive


def _in_burst(rows: list[dict], data: audio.Clips) -> list[bool]:
    bursts = data.bursts * 1000 / audio.RATE
    return [
        first - FRAME_MS <= int(row["peak_ms"]) <= last + FRAME_MS
        for row, (first, last) in zip(rows, bursts, strict=True)
        if row["correct"] == "True"
    ]


def test_each_map_is_carried_back_to_the_block_and_frame_of_the_burst(windows, tmp_path, browser):
    folder, data, _ = windows
    files = [str(folder / "X_mfcc.npy"), str(folder / "X_mfe.npy")]
    args = ["--model", str(TWO_BLOCKS), "--features", *files, "--feature-shapes", SHAPES]
    args += ["--labels", str(folder / "y_testing.npy"), "--classes", ",".join(CLASSES), "--out", str(tmp_path)]
    assert main(args) == 0
    rows, archive = _rows(tmp_path / "deploy.zip")
    assert len(rows) == 60 and sum(row["correct"] == "True" for row in rows) >= 57
    assert {row["peak_block"] for row in rows} <= {"X_mfcc.npy", "X_mfe.npy"}
    hits = _in_burst(rows, data)
    print("peak in the burst", np.mean(hits), "blocks", {row["peak_block"] for row in rows})
    assert np.mean(hits) >= 0.85
    picture = cv2.imdecode(np.frombuffer(archive.read(rows[0]["overlay"]), np.uint8), cv2.IMREAD_COLOR)
    # Two panels: MFCC 16 cepstra x 10 px, a gap, MFE 40 filters x 4 px; 99 frames x 4 px across.
    assert picture.shape[:2] == (16 * 10 + GAP_PX + 40 * 4, audio.FRAMES * 4)
    page, problems = helpers.open_report(browser, tmp_path / "deploy.zip", tmp_path / "unzipped")
    page.locator("#gallery figure a").first.click()
    row = next(r for r in rows if r["source"] == page.locator("#detail-title").inner_text())
    assert (
        f"frame {row['peak_frame']} of {row['peak_block']}, {row['peak_ms']} ms" in page.locator("#detail").inner_text()
    )
    assert problems == []


def test_several_features_files_need_each_blocks_shape(windows, tmp_path, capsys):
    folder, _, _ = windows
    files = [str(folder / "X_mfcc.npy"), str(folder / "X_mfe.npy")]
    base = ["--model", str(TWO_BLOCKS), "--features", *files, "--classes", ",".join(CLASSES), "--out", str(tmp_path)]
    assert main(base) == 2
    assert capsys.readouterr().err == (
        "error: 2 features files: give each DSP block's frames x columns, in the same order "
        "(--feature-shapes 49x13,99x40)\n"
    )
    assert main([*base, "--feature-shapes", "99x16"]) == 2
    assert capsys.readouterr().err.endswith("--feature-shapes gives 1 shapes for 2 --features files\n")
    assert main([*base, "--feature-shapes", "99x40,99x16"]) == 2
    assert "X_mfcc.npy: windows of 1584 values; its DSP block gives 99 frames x 40 = 3960" in capsys.readouterr().err


def _project(windows, first: str = "mfcc", output: str = "spectrogram") -> emu.AudioProject:
    _, data, (mfcc, mfe) = windows
    samples = [(500 + i, 1) for i in range(len(mfcc))]
    parameters = {"num_cepstral": TWO_BLOCK_CEPSTRA, "frame_length": 0.02, "frame_stride": 0.01}
    mfe_block = emu.DspOutput("mfe", "MFE", audio.FRAMES, audio.FILTERS, audio.npy_bytes(mfe), audio.MFE_PARAMETERS)
    mfe_block.output = output
    return emu.AudioProject(
        audio.npy_bytes(mfcc),
        audio.npy_bytes(audio.labels_onehot(data)),
        samples,
        parameters,
        audio.FRAMES,
        TWO_BLOCK_CEPSTRA,
        dsp_type=first,
        increase_ms=1000,
        more=[mfe_block],
    )


def _model_zip() -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.write(TWO_BLOCKS, "model.h5")
    return out.getvalue()


def test_an_api_key_run_fetches_every_blocks_features_in_the_impulses_order(windows, tmp_path):
    _, data, _ = windows
    with emu.Emulator(b"", _model_zip(), classes=CLASSES, audio=_project(windows)) as studio:
        result = helpers.run_with_key(studio, "--out", tmp_path / "out", "--work-dir", tmp_path / "work")
        assert result.returncode == 0, result.stderr
        fetched = [r.path for r in studio.requests if "/dsp-data/" in r.path and "/x/" in r.path]
    assert "the model reads the features of MFCC (mfcc, id 31, 99 frames x 16)" in result.stdout
    assert "the model reads the features of MFE (mfe, id 32, 99 frames x 40)" in result.stdout
    assert [path.split("/")[-3] for path in fetched] == [str(emu.DSP_ID), str(emu.DSP_ID + 1)]
    rows, _ = _rows(tmp_path / "out" / "deploy.zip")
    assert np.mean(_in_burst(rows, data)) >= 0.85
    centres = audio.mel_points()[1:-1]
    for row in rows:
        assert row["peak_block"] in ("MFCC", "MFE")
        if row["peak_block"] == "MFE" and row["peak_filter"]:
            assert float(row["peak_hz"]) == pytest.approx(centres[int(row["peak_filter"])], abs=0.05)
        if row["peak_block"] == "MFCC":
            assert row["peak_hz"] == "", "cepstra are not frequencies"


def test_a_block_without_frames_is_refused_in_one_line(windows, tmp_path, capsys):
    project = _project(windows, output="flat")
    with emu.Emulator(b"", _model_zip(), classes=CLASSES, audio=project) as studio:
        args = ["--api-key", studio.api_key, "--host", studio.host, "--out", str(tmp_path)]
        assert main([*args, "--work-dir", str(tmp_path / "work")]) == 2
    err = capsys.readouterr().err
    assert err == (
        "error: the learn block Classifier takes the features of 2 DSP blocks, and the metadata of MFE (mfe, id 32) "
        "gives no frames x columns shape: a map cannot be carried back to its features\n"
    )


REAL = helpers.ROOT.parent / "shared" / "real"


@pytest.mark.skipif(not REAL.is_dir(), reason="../shared/real (Edge Impulse's real files) is absent")
def test_a_real_three_block_project_runs_as_studio_runs_the_block(tmp_path, capsys, caplog):
    """The real acoustic anomaly project (MFCC 49x13 + MFE 99x40 + spectrogram 99x65 = 11,032 features,
    Reshape(1576, 7), Conv1D): its metadata, Keras model and float32 trained.tflite (explained beside),
    with synthetic features of each block's shape (the project ships none)."""
    meta = json.loads((REAL / "acoustic-multidsp-metadata.json").read_text())
    rng = np.random.default_rng(0)
    shapes = [(49, 13), (99, 40), (99, 65)]
    x = [rng.uniform(0, 1, (8, frames * columns)).astype(np.float32) for frames, columns in shapes]
    options = [block["metadata"]["dspConfig"]["options"] for block in meta["impulse"]["dspBlocks"]]
    more = [
        emu.DspOutput(kind, name, *shape, audio.npy_bytes(values), params)
        for kind, name, shape, values, params in zip(
            ("mfe", "spectrogram"), ("MFE", "Spectrogram"), shapes[1:], x[1:], options[1:], strict=True
        )
    ]
    labels = np.eye(2, dtype=np.float32)[np.arange(8) % 2]
    project = emu.AudioProject(
        audio.npy_bytes(x[0]),
        audio.npy_bytes(labels),
        [(700 + i, 1) for i in range(8)],
        options[0],
        49,
        13,
        dsp_type="mfcc",
        increase_ms=1000,
        more=more,
    )
    model_zip = (REAL / "acoustic-multidsp-trained.h5.zip").read_bytes()
    caplog.set_level(logging.INFO, "gradcam")
    with emu.Emulator(b"", model_zip, classes=meta["classes"], audio=project) as studio:
        home = tmp_path / "home"
        tflite = [{"modelPath": str(home / "input" / "trained.tflite"), "details": {"modelType": "float32"}}]
        home = helpers.studio_home(
            tmp_path,
            studio,
            model_zip,
            studio.api_key,
            classes=meta["classes"],
            impulse=meta["impulse"],
            tflite_models=tflite,
        )
        (home / "input" / "trained.tflite").write_bytes((REAL / "acoustic-multidsp-trained.tflite").read_bytes())
        code = main(["--metadata", str(home / "input" / "deployment-metadata.json")])
        output = capsys.readouterr()
        assert code == 0, output.err
    assert "the model reads the features of Spectrogram (spectrogram, id 33, 99 frames x 65)" in caplog.text
    rows, archive = _rows(home / "output" / "deploy.zip")
    assert len(rows) == 8 and {row["peak_block"] for row in rows} <= {"MFCC", "MFE", "Spectrogram"}
    # The float32 TFLite model's own maps beside: it answers as the Keras model, on LiteRT and its twin.
    assert all(row["agrees"] == "True" and row["tflite_map_withheld"] == "" for row in rows)
    assert all(float(row["map_agreement"]) > 0.9 for row in rows), [row["map_agreement"] for row in rows]
    picture = cv2.imdecode(np.frombuffer(archive.read(rows[0]["overlay"]), np.uint8), cv2.IMREAD_COLOR)
    # Three panels, 13 x 13 px, 40 x 4 px and 65 x 3 px high, with two gaps; 49 x 8 = 392 px across.
    assert picture.shape[:2] == (13 * 13 + 40 * 4 + 65 * 3 + 2 * GAP_PX, 396)


def test_the_python_api_takes_one_features_file_per_block(windows, tmp_path):
    folder, data, _ = windows
    summary = explain_dataset(
        TWO_BLOCKS,
        out=tmp_path,
        features=[folder / "X_mfcc.npy", folder / "X_mfe.npy"],
        feature_shapes=[(audio.FRAMES, TWO_BLOCK_CEPSTRA), (audio.FRAMES, audio.FILTERS)],
        labels=folder / "y_testing.npy",
        classes=CLASSES,
        overlays="mistakes",
    )
    assert summary.info.tally.correct >= 57
    rows, _ = _rows(tmp_path / "deploy.zip")
    assert np.mean(_in_burst(rows, data)) >= 0.85
