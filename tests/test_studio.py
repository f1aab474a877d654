"""Studio: the API client against a local emulator, the two ways of starting, and every fault."""

import io
import itertools
import json
import time
import zipfile

import edgeimpulse_api as ei
import pytest
import requests

from gradcam.cli import main
from gradcam.edge.download import download
from gradcam.edge.impulse import choose_learn_block
from gradcam.edge.studio import StudioClient
from gradcam.errors import GradcamError
from tests import helpers
from tests import studio_emulator as emu
from tests.helpers import OUTPUT_ORDER


def _api_get(studio, path):
    return requests.get(studio.host + path, headers={"x-api-key": studio.api_key}, timeout=10).json()


def test_emulator_responses_parse_with_the_official_models(studio):
    p = f"/v1/api/{emu.PROJECT_ID}"
    ei.ListProjectsResponse.parse_obj(_api_get(studio, "/v1/api/projects"))
    ei.GetImpulseResponse.parse_obj(_api_get(studio, f"{p}/impulse"))
    ei.DSPConfigResponse.parse_obj(_api_get(studio, f"{p}/dsp/{emu.DSP_ID}"))
    ei.KerasModelMetadataResponse.parse_obj(_api_get(studio, f"{p}/training/keras/{emu.LEARN_ID}/metadata"))
    studio.tflite = b"TFL3"
    ids = [d.id for d in ei.ProjectDownloadsResponse.parse_obj(_api_get(studio, f"{p}/downloads")).downloads]
    assert ids == ["tflite-h5", "tflite-int8"]
    started = requests.post(
        f"{studio.host}{p}/jobs/export/original", json={}, headers={"x-api-key": studio.api_key}, timeout=10
    )
    job = ei.StartJobResponse.parse_obj(started.json())
    for _ in range(studio.faults.polls_until_done):
        status = ei.GetJobResponse.parse_obj(_api_get(studio, f"{p}/jobs/{job.id}/status"))
    assert status.job.finished_successful is True
    ei.LogStdoutResponse.parse_obj(_api_get(studio, f"{p}/jobs/{job.id}/stdout"))
    export = ei.ExportGetUrlResponse.parse_obj(_api_get(studio, f"{p}/export/get-url"))
    assert export.created >= status.job.created


def test_local_run_with_an_api_key(studio, export_zip, tmp_path):
    studio.image = {**studio.image, "resizeMethod": "nearest", "cropAnchor": "bottom-right"}
    result = helpers.run_with_key(studio, "--out", tmp_path / "out", "--work-dir", tmp_path / "work")
    assert result.returncode == 0, result.stderr
    helpers.check_deploy_zip(tmp_path / "out" / "deploy.zip", export_zip)
    with zipfile.ZipFile(tmp_path / "out" / "deploy.zip") as archive:
        parameters = json.loads(archive.read("results.json"))["run"]["parameters"]
    assert (parameters["resize_method"], parameters["crop_anchor"]) == ("nearest", "bottom-right"), "the impulse's"
    assert "learn block Transfer learning (keras-transfer-image, id 19)" in result.stdout
    assert "export job 100 still running" in result.stdout, "a long export shows it is alive"
    helpers.assert_key_kept_secret(studio, result.stdout + result.stderr, tmp_path / "out" / "deploy.zip")


def test_skip_dataset_download_reuses_the_earlier_export(studio, tmp_path, capsys):
    args = [
        "--api-key",
        studio.api_key,
        "--host",
        studio.host,
        "--out",
        str(tmp_path),
        "--work-dir",
        str(tmp_path / "w"),
    ]
    assert main([*args, "--skip-dataset-download"]) == 2
    assert "no earlier export at" in capsys.readouterr().err
    assert main(args) == 0
    exports = sum(r.path.endswith("/jobs/export/original") for r in studio.requests)
    assert main([*args, "--skip-dataset-download"]) == 0
    assert sum(r.path.endswith("/jobs/export/original") for r in studio.requests) == exports


def _client(studio, **options) -> StudioClient:
    return StudioClient(studio.api_key, studio.host, poll_max=0.2, **options)


def test_server_errors_and_rate_limits_are_retried(studio, tmp_path):
    studio.faults.server_errors = 3
    studio.faults.rate_limited = 2
    client = _client(studio)
    assert client.project_id() == emu.PROJECT_ID
    api = [r for r in studio.requests if r.server == "api"]
    assert len(api) == 6  # 3 x 503, 2 x 429, then the answer
    gaps = [b.at - a.at for a, b in itertools.pairwise(api[3:])]
    assert min(gaps) >= 0.9, "Retry-After: 1 is honoured"


def test_failed_export_job_reports_its_last_log_lines(studio, tmp_path):
    studio.faults.job_fails = True
    with pytest.raises(GradcamError, match=r"export job 100 failed; its last log lines: .*storage quota exceeded"):
        _client(studio).export_dataset(emu.PROJECT_ID, tmp_path / "e.zip", timeout=30)


def test_stale_export_is_not_accepted(studio, tmp_path):
    studio.faults.stale_export = 2
    path = _client(studio).export_dataset(emu.PROJECT_ID, tmp_path / "e.zip", timeout=30)
    assert zipfile.ZipFile(path).namelist()
    assert sum(r.path.endswith("/export/get-url") for r in studio.requests) == 3
    studio.faults.stale_export = -1
    with pytest.raises(GradcamError, match="Studio offers only an export from 2020-01-01.*older than the export job"):
        _client(studio).export_dataset(emu.PROJECT_ID, tmp_path / "e.zip", timeout=3)


def test_truncated_download_is_retried_then_an_error(studio, tmp_path, export_zip):
    studio.faults.truncated_downloads = 1
    path = _client(studio).export_dataset(emu.PROJECT_ID, tmp_path / "e.zip", timeout=30)
    assert path.read_bytes() == export_zip
    studio.faults.truncated_downloads = -1
    half, size = len(export_zip) // 2, len(export_zip)
    with pytest.raises(GradcamError) as error:
        _client(studio).export_dataset(emu.PROJECT_ID, tmp_path / "e.zip", timeout=30)
    assert str(error.value) == f"the export download was cut short (got {half} of {size} bytes); tried 3 times"


def test_a_download_that_is_not_a_zip_is_retried_then_an_error(studio, tmp_path, export_zip):
    studio.faults.corrupt_downloads = 1
    assert _client(studio).export_dataset(emu.PROJECT_ID, tmp_path / "e.zip", timeout=30).read_bytes() == export_zip
    studio.faults.corrupt_downloads = -1
    with pytest.raises(GradcamError) as error:
        _client(studio).export_dataset(emu.PROJECT_ID, tmp_path / "e.zip", timeout=30)
    assert str(error.value) == (
        f"the downloaded export is not a zip file that opens ({len(export_zip)} bytes); tried 3 times"
    )


def test_a_refused_download_says_the_http_status(studio, tmp_path):
    signed = _api_get(studio, f"/v1/api/{emu.PROJECT_ID}/export/get-url")["url"]
    with pytest.raises(GradcamError) as error:
        download(signed.split("?")[0], tmp_path / "e.zip", timeout=5, attempts=2)
    assert str(error.value) == "the export download failed: HTTP 403 Forbidden; tried 2 times"


def test_slow_response_times_out_and_is_retried_never_hangs(studio):
    studio.faults.slow_seconds, studio.faults.slow_count = 3.0, 1
    assert _client(studio, timeout=0.5).project_id() == emu.PROJECT_ID
    studio.faults.slow_count = -1
    start = time.monotonic()
    with pytest.raises(GradcamError, match="Studio API: listing projects failed: .*timed out"):
        _client(studio, timeout=0.5, retries=2).project_id()
    assert time.monotonic() - start < 20


def test_wrong_key_is_a_clear_error_without_the_key(studio):
    wrong = "ei_wrong_key_0000"
    with pytest.raises(GradcamError) as info:
        StudioClient(wrong, studio.host).project_id()
    assert "HTTP 401" in str(info.value) and "is the API key valid" in str(info.value)
    assert wrong not in str(info.value)


def test_export_with_an_escaping_entry_is_refused(export_zip, model_zip, tmp_path, capsys):
    evil = io.BytesIO(export_zip)
    with zipfile.ZipFile(evil, "a") as z:
        z.writestr("../evil.jpg", b"x")
    with emu.Emulator(evil.getvalue(), model_zip, classes=list(OUTPUT_ORDER)) as studio:
        code = main(
            ["--api-key", studio.api_key, "--host", studio.host, "--out", str(tmp_path), "--work-dir", str(tmp_path)]
        )
    assert code == 2
    assert "unsafe entry '../evil.jpg' escapes the dataset folder" in capsys.readouterr().err
    assert not (tmp_path / "deploy.zip").exists()


def test_the_keras_image_block_is_chosen_not_the_first():
    blocks = [
        (7, "keras-visual-anomaly", "Anomaly"),
        (9, "keras-object-detection", "FOMO"),
        (19, "keras", "Classifier"),
    ]
    assert choose_learn_block(blocks) == (19, "keras", "Classifier")
    assert choose_learn_block(blocks[:2]) == (9, "keras-object-detection", "FOMO")
    with pytest.raises(
        GradcamError,
        match=r"no Keras classification, regression or object detection block \(found: Anomaly \(keras-visual",
    ):
        choose_learn_block(blocks[:1])
