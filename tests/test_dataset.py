"""Edge Impulse exports: labels from info.labels, safe zips, nothing silently dropped."""

import json
import os
import zipfile
from pathlib import PurePosixPath

import pytest

from gradcam.edge.dataset import fallback_label, open_dataset
from gradcam.errors import GradcamError
from tests.helpers import write_export


def test_info_labels_wins_over_the_file_name(tmp_path):
    export = write_export(
        tmp_path / "e.zip",
        [
            ("testing/car.IMG_1.jpg.3sfpk6le.ingestion-575c.jpg", "truck", b"x"),
            ("testing/436.jpg.516mqcnl.ingestion-575c.jpg", "car", b"x"),
            ("testing/12.5.jpg.abc.ingestion-1.jpg", "12.5", b"x"),
            ("testing/u.jpg", None, b"x"),
            ("training/bus.1.jpg", "bus", b"x"),
        ],
    )
    with open_dataset(export) as ds:
        labels = {PurePosixPath(s.path).name: s.label for s in ds.samples}
    assert labels == {
        "car.IMG_1.jpg.3sfpk6le.ingestion-575c.jpg": "truck",
        "436.jpg.516mqcnl.ingestion-575c.jpg": "car",
        "12.5.jpg.abc.ingestion-1.jpg": "12.5",
        "u.jpg": None,
    }
    with open_dataset(export, "all") as ds:
        assert len(ds.samples) == 5 and ds.labels == ["12.5", "bus", "car", "truck"]
    with open_dataset(export, "training") as ds:
        assert [s.label for s in ds.samples] == ["bus"]


def test_file_name_is_the_fallback():
    assert fallback_label("car.IMG_0042.jpg.3sfpk6le.ingestion-575c78d8b6-rch87.jpg") == "car"
    assert fallback_label("12.5.jpg.3sfpk6le.ingestion-575c.jpg") == "12.5"
    assert fallback_label("-3.jpg") == "-3"


def test_folder_without_info_labels_uses_names(tmp_path):
    (tmp_path / "testing").mkdir()
    (tmp_path / "testing" / "cat.1.jpg").write_bytes(b"x")
    (tmp_path / "testing" / "notes.txt").write_text("hi")
    ds = open_dataset(tmp_path)
    assert [(s.path, s.label) for s in ds.samples] == [("testing/cat.1.jpg", "cat")]
    assert ds.skipped == [("testing/notes.txt", "not an image (expected one of .jpg, .jpeg, .png, .bmp, .webp)")]


def test_extracted_folder_reads_like_the_zip(tmp_path):
    export = write_export(tmp_path / "e.zip", [("testing/a.jpg", "dog", b"abc")])
    folder = tmp_path / "unpacked"
    zipfile.ZipFile(export).extractall(folder)
    with open_dataset(export) as z, open_dataset(folder) as f:
        assert z.samples == f.samples
        assert z.read(z.samples[0]) == f.read(f.samples[0]) == b"abc"


def test_missing_unsupported_and_non_image_entries_are_skipped_with_reasons(tmp_path):
    path = tmp_path / "e.zip"
    files = [
        {"path": "testing/gone.jpg", "category": "testing", "label": {"type": "label", "label": "a"}},
        {"path": "testing/multi.jpg", "category": "testing", "label": {"type": "multi-label", "labels": []}},
        {"path": "testing/sound.wav", "category": "testing", "label": {"type": "label", "label": "a"}},
        {"path": "testing/ok.jpg", "category": "testing", "label": {"type": "label", "label": "a"}},
    ]
    with zipfile.ZipFile(path, "w") as z:
        for name in ("testing/multi.jpg", "testing/sound.wav", "testing/ok.jpg"):
            z.writestr(name, b"x")
        z.writestr("info.labels", json.dumps({"version": 1, "files": files}))
    with open_dataset(path) as ds:
        assert [s.path for s in ds.samples] == ["testing/ok.jpg"]
        reasons = dict(ds.skipped)
    assert reasons["testing/gone.jpg"] == "listed in info.labels but missing from the dataset"
    assert "label type 'multi-label' is not supported" in reasons["testing/multi.jpg"]
    assert reasons["testing/sound.wav"].startswith("not an image")


@pytest.mark.parametrize("name", ["../evil.jpg", "testing/../../evil.jpg", "/etc/evil.jpg", "C:/evil.jpg"])
def test_entries_escaping_the_folder_are_refused(tmp_path, name):
    path = write_export(tmp_path / "e.zip", [("testing/a.jpg", "a", b"x")], extra={name: b"x"})
    with pytest.raises(GradcamError, match=f"unsafe entry '{name}' escapes the dataset folder; refusing this zip"):
        open_dataset(path)


def test_symlink_entry_is_refused(tmp_path):
    path = tmp_path / "e.zip"
    with zipfile.ZipFile(path, "w") as z:
        info = zipfile.ZipInfo("testing/link.jpg")
        info.external_attr = 0o120777 << 16
        z.writestr(info, "/etc/passwd")
    with pytest.raises(GradcamError, match="'testing/link.jpg' is a symbolic link"):
        open_dataset(path)


def test_symlink_out_of_a_folder_is_refused(tmp_path):
    (tmp_path / "testing").mkdir()
    os.symlink("/etc/hostname", tmp_path / "testing" / "x.jpg")
    with pytest.raises(GradcamError, match="link points outside the dataset folder"):
        open_dataset(tmp_path)


def test_bad_datasets_are_clear_errors(tmp_path):
    with pytest.raises(GradcamError, match="nothing.zip: dataset not found"):
        open_dataset(tmp_path / "nothing.zip")
    (tmp_path / "corrupt.zip").write_bytes(b"PK\x03\x04 truncated")
    with pytest.raises(GradcamError, match="corrupt.zip: not a readable zip file"):
        open_dataset(tmp_path / "corrupt.zip")
    bad = tmp_path / "bad.zip"
    with zipfile.ZipFile(bad, "w") as z:
        z.writestr("info.labels", "{not json")
    with pytest.raises(GradcamError, match="bad.zip: info.labels is not valid JSON"):
        open_dataset(bad)
    with pytest.raises(GradcamError, match="category 'validation': expected one of testing, training, all"):
        open_dataset(bad, "validation")
