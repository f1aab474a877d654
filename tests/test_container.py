"""The real image, built and run as Studio and `edge-impulse-blocks runner` run it (make test-container).

`docker run -v <home>:/home <image> --metadata /home/input/deployment-metadata.json <parameters>`,
with no output/ folder in <home> and the Studio emulator for the API. Needs a Docker daemon
(`../shared/tools/docker-up` starts one on these machines); skips with the reason otherwise.
"""

import shutil
import subprocess
import time
import zipfile

import pytest

from tests import docs, helpers
from tests import studio_emulator as emu
from tests.helpers import ROOT

pytestmark = [pytest.mark.container, pytest.mark.timeout(3600)]  # a cold build installs TensorFlow
BUILD = docs.readme_command("docker build")  # the README's: docker build -t <image> .
IMAGE = BUILD[BUILD.index("-t") + 1]
MAX_IMAGE_BYTES = 1.5e9
REPORT = ROOT / "test-artifacts" / "container.txt"


def _docker(*args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run(["docker", *args], capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def image():
    if shutil.which("docker") is None:
        pytest.skip("no docker command (../shared/tools/docker-up installs one)")
    info = _docker("info")
    if info.returncode != 0:
        pytest.skip(f"no Docker daemon answers: {(info.stderr.strip().splitlines() or ['?'])[-1]}")
    started = time.monotonic()
    # As the README says, with the host's network (these machines reach the registries only through it).
    build = _docker("build", "--network", "host", *BUILD[2:-1], str(ROOT), timeout=3600)
    assert build.returncode == 0, build.stdout[-3000:] + build.stderr[-3000:]
    size = int(_docker("image", "inspect", IMAGE, "--format", "{{.Size}}").stdout)
    REPORT.parent.mkdir(exist_ok=True)
    REPORT.write_text(f"image size: {size / 1e9:.2f} GB (built in {time.monotonic() - started:.0f}s)\n")
    return size


def test_the_image_is_at_most_1_5_gb(image):
    assert image <= MAX_IMAGE_BYTES, f"the image is {image / 1e9:.2f} GB"


def _run_streaming(command: list[str], marker: str) -> tuple[int, str, str, float | None]:
    """Run `command`; (exit code, stdout, stderr, seconds until a stdout line starting with `marker`)."""
    started, seen = time.monotonic(), None
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lines = []
    for line in process.stdout:
        lines.append(line)
        if seen is None and line.startswith(marker):
            seen = time.monotonic() - started
    stderr = process.stderr.read()
    return process.wait(timeout=600), "".join(lines), stderr, seen


def test_the_block_runs_in_the_runners_layout(image, studio, tmp_path, export_zip, model_zip):
    """As the runner mounts it: /home/input with the metadata and the model, no /home/output."""
    studio.faults.polls_until_done = 1  # the cold start measured is the container's, not the export's
    home = helpers.studio_home(tmp_path, studio, model_zip, studio.api_key, mounted_at="/home")
    (home / "output").rmdir()
    command = ["docker", "run", "--rm", "--network", "host", "-v", f"{home}:/home", IMAGE]
    command += ["--metadata", "/home/input/deployment-metadata.json", *helpers.STUDIO_ARGS]
    code, stdout, stderr, first_image = _run_streaming(command, "explaining: 1/")
    assert code == 0, stderr
    assert stderr == ""
    assert sorted(p.name for p in (home / "output").iterdir()) == ["deploy.zip"]
    helpers.check_deploy_zip(home / "output" / "deploy.zip", export_zip)
    assert f"project {emu.PROJECT_ID} (shapes)" in stdout
    assert "done: " in stdout and "wrote /home/output/deploy.zip" in stdout
    helpers.assert_key_kept_secret(studio, stdout + stderr, home / "output" / "deploy.zip")
    with zipfile.ZipFile(home / "output" / "deploy.zip") as archive:
        assert "index.html" in archive.namelist()
    assert first_image is not None, stdout
    with REPORT.open("a") as report:
        report.write(f"cold start (container start to first image explained): {first_image:.1f}s\n")


def test_a_bad_parameter_is_one_line_from_the_container(image, tmp_path):
    result = _docker("run", "--rm", "--network", "host", IMAGE, "--alpha", "1.5")
    assert result.returncode == 2
    assert result.stderr == "error: argument --alpha: 1.5 is out of range: expected a number from 0 to 1 (see --help)\n"


def test_the_readmes_docker_run_with_an_api_key(image, studio, tmp_path, export_zip):
    """The README's `docker run` word for word, but for the key, the emulator's host and the folder."""
    words = docs.readme_command("docker run")
    words = [w.replace("$PWD", str(tmp_path)).replace("ei_...", studio.api_key) for w in words]
    command = [*words[:2], "--network", "host", *words[2:], "--host", studio.host]
    result = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    helpers.check_deploy_zip(tmp_path / "out" / "deploy.zip", export_zip)
    helpers.assert_key_kept_secret(studio, result.stdout + result.stderr, tmp_path / "out" / "deploy.zip")
