"""The container contract: main.py run exactly as Studio runs the block, in Studio's folder layout."""

import io
import json
import shutil
import subprocess
import sys
import types
import zipfile

from tests import helpers
from tests import studio_emulator as emu
from tests.helpers import ROOT


def _run_block(home, *extra):
    return helpers.run_main("--metadata", home / "input" / "deployment-metadata.json", *helpers.STUDIO_ARGS, *extra)


def test_studio_deployment_writes_only_deploy_zip(studio, tmp_path, export_zip, model_zip):
    resize = {"resizeMethod": "nearest", "cropAnchor": "top-left"}  # the impulse's image block, as the job takes it
    home = helpers.studio_home(tmp_path, studio, model_zip, studio.api_key, resize=resize)
    result = _run_block(home)
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in (home / "output").iterdir()) == ["deploy.zip"]
    helpers.check_deploy_zip(home / "output" / "deploy.zip", export_zip)
    with zipfile.ZipFile(home / "output" / "deploy.zip") as archive:
        parameters = json.loads(archive.read("results.json"))["run"]["parameters"]
    assert (parameters["resize_method"], parameters["crop_anchor"]) == ("nearest", "top-left")
    assert not any("/learn-data/" in r.path for r in studio.requests), "the mounted model is used, not downloaded"
    helpers.assert_key_kept_secret(studio, result.stdout + result.stderr, home / "output" / "deploy.zip")


def test_runner_layout_without_an_output_folder(studio, tmp_path, export_zip, model_zip):
    """`edge-impulse-blocks runner` extracts the build into ei-block-data/<project>/input/, mounts
    ei-block-data/<project> as /home and never creates output/: the block creates it."""
    home = helpers.studio_home(tmp_path / "ei-block-data" / str(emu.PROJECT_ID), studio, model_zip, studio.api_key)
    (home / "output").rmdir()
    result = _run_block(home)
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in (home / "output").iterdir()) == ["deploy.zip"]
    helpers.check_deploy_zip(home / "output" / "deploy.zip", export_zip)


def test_missing_model_is_downloaded(studio, tmp_path, export_zip):
    home = helpers.studio_home(tmp_path, studio, None, studio.api_key)
    result = _run_block(home)
    assert result.returncode == 0, result.stderr
    assert any(r.path.endswith(f"/learn-data/{emu.LEARN_ID}/model/tflite-h5") for r in studio.requests)
    helpers.check_deploy_zip(home / "output" / "deploy.zip", export_zip)


def test_no_api_key_explains_how_to_get_one(studio, tmp_path, model_zip):
    home = helpers.studio_home(tmp_path, studio, model_zip, None)
    result = _run_block(home)
    assert result.returncode == 2
    assert "no project.apiKey: enable 'privileged'" in result.stderr
    assert "create a development API key" in result.stderr
    assert list((home / "output").iterdir()) == []


def test_output_that_cannot_be_written_fails_before_the_work(studio, tmp_path, model_zip):
    home = helpers.studio_home(tmp_path, studio, model_zip, studio.api_key)
    shutil.rmtree(home / "output")
    (home / "output").write_text("a file where the folder should be")
    result = _run_block(home)
    assert result.returncode == 2
    assert f"error: output folder {home / 'output'} is not a folder\n" == result.stderr
    assert not any(r.path.endswith("/jobs/export/original") for r in studio.requests)


def test_malformed_metadata_names_the_field(tmp_path):
    path = tmp_path / "deployment-metadata.json"
    path.write_text(json.dumps({"version": 1, "project": {"id": 1}}))
    result = subprocess.run(
        [sys.executable, "main.py", "--metadata", path], cwd=ROOT, capture_output=True, text=True, timeout=600
    )
    assert result.returncode == 2
    assert (
        result.stderr.strip() == f"error: {path}: missing field 'folders' (expected Edge Impulse deployment metadata)"
    )


def test_list_layers_in_the_containers_layout_needs_no_network(tmp_path, model_zip):
    """`docker run -v ...:/home <image> --metadata /home/input/deployment-metadata.json --list-layers`:
    the mounted model's layers, no API key, no request."""
    home = helpers.studio_home(tmp_path, types.SimpleNamespace(host="127.0.0.1:9"), model_zip, api_key=None)
    result = subprocess.run(
        [sys.executable, "main.py", "--metadata", home / "input" / "deployment-metadata.json", "--list-layers"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].endswith("trained.h5.zip: layers with a 1-D or 2-D output (* = explained by --layer auto)")
    assert [line.split()[1] for line in lines if line.startswith("*")] == ["conv2d_4"]


def test_a_bad_layer_stops_the_block_before_the_export(studio, tmp_path, model_zip):
    """Studio's export can take many minutes: a parameter that does not fit the model fails first."""
    home = helpers.studio_home(tmp_path, studio, model_zip, studio.api_key)
    result = _run_block(home, "--layer", "model/no_such_layer")
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        "error: layer 'model/no_such_layer': no such layer in the model (run with --list-layers to see its layers)"
    ]
    assert not any(r.path.endswith("/jobs/export/original") for r in studio.requests)
    assert list((home / "output").iterdir()) == []


def test_labels_that_are_not_the_metadatas_classes_are_a_loud_warning(studio, tmp_path, model_zip, export_zip):
    """Studio's classes are the truth: an export label that differs from them (here in case) is named
    with its count and the class it may mean, in the log's last line and in the report."""
    classes = ["triangle", "Square", "circle"]
    home = helpers.studio_home(tmp_path, studio, model_zip, studio.api_key, classes=classes)
    result = _run_block(home)
    assert result.returncode == 0, result.stderr
    with zipfile.ZipFile(io.BytesIO(export_zip)) as export:
        files = json.loads(export.read("info.labels"))["files"]
    squares = sum(f["category"] == "testing" and f["label"]["label"] == "square" for f in files)
    warning = (
        f"{squares} images have a label that is not one of the model's classes (triangle, Square, circle): "
        f"'square' ({squares} images, did you mean 'Square'?); they count as incorrect"
    )
    with zipfile.ZipFile(home / "output" / "deploy.zip") as archive:
        warnings = json.loads(archive.read("results.json"))["run"]["warnings"]
    assert warnings[0] == warning
    assert helpers.closing_warnings(result.stdout) == warnings, "the log ends with the warnings, this one first"
