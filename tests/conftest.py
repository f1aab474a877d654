"""Shared fixtures: the Studio emulator with a small export and the shapes model in a studio zip."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import io
import json
import zipfile

import pytest
import tf_keras

from bench import browser as web
from tests import studio_emulator as emu
from tests.helpers import OUTPUT_ORDER, SHAPE_CLASSES, SHAPES


@pytest.fixture(scope="session")
def export_zip() -> bytes:
    """12 test and 3 training images of the shapes example, in Edge Impulse's export format."""
    with zipfile.ZipFile(SHAPES / "export.zip") as source:
        info = json.loads(source.read("info.labels"))
        testing = [f for f in info["files"] if f["category"] == "testing"][:12]
        training = [f for f in info["files"] if f["category"] == "training"][:3]
        out = io.BytesIO()
        with zipfile.ZipFile(out, "w") as target:
            for f in testing + training:
                target.writestr(f["path"], source.read(f["path"]))
            target.writestr("info.labels", json.dumps({"version": 1, "files": testing + training}))
    return out.getvalue()


@pytest.fixture(scope="session")
def model_zip(tmp_path_factory) -> bytes:
    """The shapes model with its outputs reordered to OUTPUT_ORDER, zipped as Studio serves it."""
    model = tf_keras.models.load_model(SHAPES / "model.h5", compile=False)
    kernel, bias = model.layers[-1].get_weights()
    order = [SHAPE_CLASSES.index(c) for c in OUTPUT_ORDER]
    model.layers[-1].set_weights([kernel[:, order], bias[order]])
    path = tmp_path_factory.mktemp("model") / "model.h5"
    model.save(path)
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as z:
        z.write(path, "model.h5")
    return out.getvalue()


@pytest.fixture
def studio(export_zip, model_zip):
    with emu.Emulator(export_zip, model_zip, classes=list(OUTPUT_ORDER)) as emulator:
        yield emulator


@pytest.fixture(scope="session")
def browser():
    reason = web.missing()
    if reason:
        pytest.skip(f"{reason}: browser tests skipped")
    with web.chromium() as launched:
        yield launched


# The longest test files first: --dist loadfile hands whole files to the workers in collection
# order, and a long file handed out last would leave one worker running it alone at the end.
LONGEST_FIRST = (
    "test_tflite.py",
    "test_twin.py",
    "test_block.py",
    "test_cli.py",
    "test_pointing.py",
    "test_offline_job.py",
    "test_detection.py",
    "test_cam.py",
)


def pytest_collection_modifyitems(items):
    def rank(item) -> int:
        name = item.path.name
        return LONGEST_FIRST.index(name) if name in LONGEST_FIRST else len(LONGEST_FIRST)

    items.sort(key=rank)
