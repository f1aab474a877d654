"""Audio projects in Studio: the features, labels and DSP metadata fetched through the official client
from the local emulator (its answers checked by the client's own models), in API-key mode and as
Studio runs the block (--metadata)."""

import csv
import io
import json
import zipfile

import edgeimpulse_api as ei
import numpy as np
import pytest
import requests

from gradcam.cli import main
from gradcam.edge.layout import mel_centres
from tests import audio, helpers
from tests import studio_emulator as emu
from tests.helpers import ROOT

WINDOWS_PER_SAMPLE, INCREASE_MS = 2, 500


@pytest.fixture(scope="module")
def keywords():
    data = audio.clips(24, seed=11)
    return data, audio.features(data)


def _model_zip(kind: str) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.write(ROOT / "tests" / "fixtures" / f"keywords_{kind}.h5", "model.h5")
    return out.getvalue()


def _project(keywords, labels: np.ndarray | None = None, **options) -> emu.AudioProject:
    """24 windows, two per sample (ids 500, 501, ...), labels one-hot unless given; each sample's
    audio its first window's clip, but for sample 503, which Studio does not serve."""
    data, x = keywords
    samples = [(500 + i, WINDOWS_PER_SAMPLE) for i in range(len(x) // WINDOWS_PER_SAMPLE)]
    wavs = {sample: audio.wav_bytes(data.audio[2 * i]) for i, (sample, _) in enumerate(samples) if sample != 503}
    y = audio.labels_onehot(data) if labels is None else labels
    return emu.AudioProject(
        audio.npy_bytes(x),
        audio.npy_bytes(y),
        samples,
        audio.MFE_PARAMETERS,
        audio.FRAMES,
        audio.FILTERS,
        increase_ms=INCREASE_MS,
        wavs=wavs,
        **options,
    )


def _studio(keywords, kind: str = "2d", **options) -> emu.Emulator:
    return emu.Emulator(b"", _model_zip(kind), classes=audio.CLASSES, audio=_project(keywords, **options))


def _rows(zip_path) -> list[dict]:
    with zipfile.ZipFile(zip_path) as archive:
        return list(csv.DictReader(io.StringIO(archive.read("results.csv").decode())))


def test_the_emulators_audio_answers_parse_with_the_official_models(keywords):
    with _studio(keywords) as studio:
        p, headers = f"{studio.host}/v1/api/{emu.PROJECT_ID}", {"x-api-key": studio.api_key}
        impulse = ei.GetImpulseResponse.parse_obj(requests.get(f"{p}/impulse", headers=headers, timeout=10).json())
        assert [b.type for b in impulse.impulse.dsp_blocks] == ["mfe"]
        url = f"{p}/dsp/{emu.DSP_ID}/metadata?category=testing"
        meta = ei.DSPMetadataResponse.parse_obj(requests.get(url, headers=headers, timeout=10).json())
        assert meta.window_count == 24 and meta.output_config.shape.width == audio.FRAMES
        x = requests.get(f"{p}/dsp-data/{emu.DSP_ID}/x/testing", headers=headers, timeout=10).content
        assert np.load(io.BytesIO(x)).shape == (24, audio.FRAMES * audio.FILTERS)


def _check_windows(rows: list[dict], data: audio.Clips) -> None:
    """Each row's sample and window from the DSP metadata; its peak time in its burst, counted from
    the sample's start; its peak band's frequency that of its mel filter."""
    centres = mel_centres(audio.FILTERS, 0, audio.RATE / 2)
    frame_ms = 1000 / audio.FRAMES
    hits = []
    for i, (row, (first, last)) in enumerate(zip(rows, data.bursts * 1000 / audio.RATE, strict=True)):
        start = (i % WINDOWS_PER_SAMPLE) * INCREASE_MS
        assert (row["sample_id"], row["start_ms"], row["end_ms"]) == (str(500 + i // 2), str(start), str(start + 1000))
        assert row["source"] == f"sample-{500 + i // 2}.{start}-{start + 1000}ms"
        assert float(row["peak_hz"]) == pytest.approx(centres[int(row["peak_filter"])], abs=0.05)
        if row["correct"] == "True":
            hits.append(start + first - frame_ms <= int(row["peak_ms"]) <= start + last + frame_ms)
    assert len(hits) >= 20 and np.mean(hits) >= 0.85


def test_an_audio_project_with_an_api_key(keywords, tmp_path):
    with _studio(keywords) as studio:
        result = helpers.run_with_key(studio, "--out", tmp_path / "out", "--work-dir", tmp_path / "work")
        assert result.returncode == 0, result.stderr
        zip_path = tmp_path / "out" / "deploy.zip"
        helpers.assert_key_kept_secret(studio, result.stdout + result.stderr, zip_path, exported=False)
    assert "the model reads the features of MFE (mfe, id 31, 99 frames x 40)" in result.stdout
    assert "downloading the testing features of MFE (mfe)" in result.stdout
    assert "explaining: 1/24 windows" in result.stdout
    assert result.stdout.count("HTTP 404") == 1, "one line for the sample whose audio Studio does not serve"
    rows = _rows(zip_path)
    _check_windows(rows, keywords[0])
    assert {row["audio"] for row in rows if row["sample_id"] == "503"} == {""}
    assert rows[0]["audio"] == rows[1]["audio"] == "audio/sample-500.wav"
    with zipfile.ZipFile(zip_path) as archive:
        assert json.loads(archive.read("results.json"))["run"]["method"] == "hirescam"
        assert archive.read("audio/sample-501.wav") == audio.wav_bytes(keywords[0].audio[2])
        assert sorted(n for n in archive.namelist() if n.startswith("audio/")) == [
            f"audio/sample-{500 + i}.wav" for i in range(12) if i != 3
        ]


def test_the_report_plays_each_window_and_marks_its_peak(keywords, tmp_path, browser):
    with _studio(keywords) as studio:
        args = ["--api-key", studio.api_key, "--host", studio.host, "--out", str(tmp_path)]
        assert main([*args, "--work-dir", str(tmp_path / "work")]) == 0
    page, problems = helpers.open_report(browser, tmp_path / "deploy.zip", tmp_path / "unzipped")
    cards = page.locator("#gallery figure")
    assert cards.count() == 24
    rows = {row["overlay"]: row for row in _rows(tmp_path / "deploy.zip")}
    checked = 0
    for i in range(cards.count()):
        card = cards.nth(i)
        row = rows[card.locator("img").get_attribute("src")]
        start, end, peak = (int(row[k]) for k in ("start_ms", "end_ms", "peak_ms"))
        assert f"{start}–{end} ms · peak at {peak} ms" in card.inner_text()
        box = card.locator(".spectrogram").bounding_box()
        mark = card.locator(".mark").bounding_box()
        assert mark["x"] - box["x"] == pytest.approx((peak - start) / (end - start) * box["width"], abs=1.5)
        player = card.locator("audio")
        if row["audio"]:
            assert player.get_attribute("src") == f"{row['audio']}#t={start / 1000:g},{end / 1000:g}"
            checked += 1
        else:
            assert player.count() == 0
    assert checked == 22, "every window whose sample's audio Studio served"
    duration = page.evaluate(
        "async () => { const a = document.querySelector('#gallery audio'); a.preload = 'auto'; a.load();"
        " await new Promise((ok) => a.addEventListener('loadedmetadata', ok, {once: true})); return a.duration; }"
    )
    assert duration == pytest.approx(1.0, abs=0.01), "the WAV in deploy.zip loads in the page"
    assert problems == []


def test_an_audio_project_as_studio_runs_the_block(keywords, tmp_path, capsys):
    impulse = {
        "inputBlocks": [{"type": "time-series", "windowSizeMs": 1000, "windowIncreaseMs": INCREASE_MS}],
        "dspBlocks": [{"type": "mfe", "metadata": {"outputConfig": {"type": "spectrogram"}}}],
        "learnBlocks": [{"id": emu.LEARN_ID, "type": "keras", "dsp": [emu.DSP_ID]}],
    }
    with _studio(keywords, "1d") as studio:
        home = helpers.studio_home(
            tmp_path, studio, _model_zip("1d"), studio.api_key, classes=audio.CLASSES, impulse=impulse
        )
        code = main(["--metadata", str(home / "input" / "deployment-metadata.json")])
        output = capsys.readouterr()
        assert code == 0, output.err
    rows = _rows(home / "output" / "deploy.zip")
    assert len(rows) == 24 and {row["peak_filter"] for row in rows} == {""}, "a 1-D model: time only"
    assert [row["start_ms"] for row in rows[:4]] == ["0", "500", "0", "500"]


def test_four_column_labels_from_studio_give_their_own_times(keywords, tmp_path, capsys):
    data, _ = keywords
    labels = audio.labels_4col(data)
    labels[:, 1] = 900 + np.arange(len(labels))
    with _studio(keywords, labels=labels) as studio:
        args = ["--api-key", studio.api_key, "--host", studio.host, "--out", str(tmp_path)]
        assert main([*args, "--work-dir", str(tmp_path / "work")]) == 0
    rows = _rows(tmp_path / "deploy.zip")
    assert [row["sample_id"] for row in rows[:3]] == ["900", "901", "902"]
    assert [row["true_label"] for row in rows] == [audio.CLASSES[label] for label in data.labels]


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (
            {"features": b"<html>not npy</html>"},
            "error: Studio API: downloading the features failed: the answer is not an npy file",
        ),
    ],
)
def test_what_an_audio_project_cannot_give_is_one_line(keywords, tmp_path, capsys, options, message):
    project = _project(keywords)
    for name, value in options.items():
        setattr(project, name, value)
    with emu.Emulator(b"", _model_zip("1d"), classes=audio.CLASSES, audio=project) as studio:
        args = ["--api-key", studio.api_key, "--host", studio.host, "--out", str(tmp_path)]
        assert main([*args, "--work-dir", str(tmp_path / "work")]) == 2
    err = capsys.readouterr().err
    assert err.startswith(message) and err.count("\n") == 1, err
    assert not (tmp_path / "deploy.zip").exists()


def test_all_categories_are_the_training_then_the_testing_windows(keywords, tmp_path):
    with _studio(keywords, "1d") as studio:
        args = ["--api-key", studio.api_key, "--host", studio.host, "--out", str(tmp_path), "--category", "all"]
        assert main([*args, "--work-dir", str(tmp_path / "work")]) == 0
        paths = [r.path.split("?")[0] for r in studio.requests if "/dsp-data/" in r.path]
    rows = _rows(tmp_path / "deploy.zip")
    assert [row["category"] for row in rows] == ["training"] * 24 + ["testing"] * 24
    assert [row["sample_id"] for row in rows[::2]] == [str(10500 + i) for i in range(12)] + [
        str(500 + i) for i in range(12)
    ]
    assert paths == [
        f"/v1/api/{emu.PROJECT_ID}/dsp-data/{emu.DSP_ID}/{xy}/{c}" for c in ("training", "testing") for xy in "xy"
    ]
