"""Edge Impulse export (zip or extracted folder) -> labelled samples, read safely.

The label of a sample comes from `info.labels`; the file-name prefix (`car.IMG_1.jpg.x.ingestion-y.jpg`)
is only a fallback for files that `info.labels` does not list. Object boxes come from the entry's
`boundingBoxes`, or from a `bounding_boxes.labels` file in the image's folder (Edge Impulse's
object detection format). Zips are read in place, never
extracted: an entry that would escape the folder (`../x`, an absolute path, a link) makes the
whole zip an error, since such a zip is not an Edge Impulse export.
"""

from __future__ import annotations

import json
import re
import stat
import zipfile
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from gradcam.choices import CATEGORIES
from gradcam.engine.fomo import Box
from gradcam.errors import DATASET_EXPECTED, GradcamError, check_choice, not_found

BOX_FILE = "bounding_boxes.labels"
_NOT_SAMPLES = ("info.labels", "README.txt", BOX_FILE)
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp")
_FALLBACK_LABEL = re.compile(r"^(-?\d+(?:\.\d+)?|[^.]+)\.")


@dataclass(frozen=True)
class Sample:
    """One image of the dataset: its path inside the dataset and its true label (None: unlabeled)."""

    path: str
    label: str | None
    category: str
    boxes: tuple[Box, ...] | None = None  # objects in the image (file pixels); None: no boxes listed
    named: bool = False  # the label was taken from the file name: info.labels does not list the file


@dataclass
class Dataset:
    """The samples to explain, the ones passed over with their reasons, and a way to read bytes."""

    source: Path
    samples: list[Sample]
    skipped: list[tuple[str, str]] = field(default_factory=list)
    _zip: zipfile.ZipFile | None = None

    def read(self, sample: Sample) -> bytes:
        if self._zip is not None:
            return self._zip.read(sample.path)
        return (self.source / sample.path).read_bytes()

    def close(self) -> None:
        if self._zip is not None:
            self._zip.close()

    def __enter__(self) -> Dataset:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def labels(self) -> list[str]:
        """The distinct true labels, sorted as Edge Impulse orders classes; of the object boxes when
        no image has a label (an object detection dataset)."""
        labels = {s.label for s in self.samples if s.label is not None}
        return sorted(labels or {box.label for s in self.samples for box in s.boxes or ()})


def fallback_label(name: str) -> str | None:
    """The label encoded in an uploader-friendly file name (`car.IMG_1.jpg...`, `12.5.x.jpg`)."""
    match = _FALLBACK_LABEL.match(name)
    return match.group(1) if match else None


def _check_entry(source: Path, info: zipfile.ZipInfo) -> None:
    name = info.filename
    parts = PurePosixPath(name.replace("\\", "/")).parts
    if name.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:", name) or ".." in parts:
        raise GradcamError(f"{source}: unsafe entry {name!r} escapes the dataset folder; refusing this zip")
    if stat.S_ISLNK(info.external_attr >> 16):
        raise GradcamError(f"{source}: entry {name!r} is a symbolic link; refusing this zip")


def _label_of(entry: dict) -> tuple[str | None, str | None]:
    """(label, reason to skip) from an info.labels entry's `label` object."""
    label = entry.get("label") or {"type": "unlabeled"}
    kind = label.get("type")
    if kind == "label":
        return str(label.get("label")), None
    if kind == "unlabeled":
        return None, None
    return None, f"label type {kind!r} is not supported (single-label images only)"


def _boxes(source: Path, where: str, listed) -> tuple[Box, ...] | None:
    """Boxes from a `boundingBoxes` list; None when there are none (the image is unlabeled)."""
    if not listed:
        return None
    try:
        return tuple(
            Box(str(b["label"]), float(b["x"]), float(b["y"]), float(b["width"]), float(b["height"])) for b in listed
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise GradcamError(
            f"{source}: {where}: a bounding box needs label, x, y, width and height (bad or missing {exc})"
        ) from None


def _box_files(source: Path, files: list[str], read) -> dict[str, tuple[Box, ...] | None]:
    """Image path -> boxes, from the `bounding_boxes.labels` files of the dataset's folders."""
    found = {}
    for path in files:
        if PurePosixPath(path).name != BOX_FILE:
            continue
        try:
            listed = json.loads(read(path))["boundingBoxes"]
            items = listed.items()
        except (ValueError, UnicodeDecodeError, KeyError, TypeError, AttributeError):
            raise GradcamError(
                f"{source}: {path} is not a bounding box file (expected JSON with a 'boundingBoxes' object)"
            ) from None
        folder = PurePosixPath(path).parent
        for name, boxes in items:
            image = (folder / name).as_posix().removeprefix("./")
            found[image] = _boxes(source, f"{path}, {name}", boxes)
    return found


def _category_of(path: str, entry: dict | None = None) -> str:
    if entry and entry.get("category"):
        return str(entry["category"])
    return PurePosixPath(path).parts[0] if "/" in path else "testing"


def _wanted(category: str, wanted: str) -> bool:
    return wanted == "all" or category == wanted


def _collect(
    source: Path, files: list[str], info_labels: dict | None, category: str, read
) -> tuple[list[Sample], list[tuple[str, str]]]:
    """Samples from info.labels (authoritative), then image files it does not list (name fallback).
    read(path) -> bytes of a file of the dataset."""
    present = set(files)
    box_files = _box_files(source, files, read)
    samples: list[Sample] = []
    skipped: list[tuple[str, str]] = []
    listed: set[str] = set()
    for entry in (info_labels or {}).get("files", []):
        path = str(entry.get("path", "")).removeprefix("./")
        listed.add(path)
        sample_category = _category_of(path, entry)
        if not _wanted(sample_category, category):
            continue
        label, reason = _label_of(entry)
        if path not in present:
            reason = "listed in info.labels but missing from the dataset"
        elif not path.lower().endswith(IMAGE_SUFFIXES):
            reason = f"not an image (expected one of {', '.join(IMAGE_SUFFIXES)})"
        if reason:
            skipped.append((path, reason))
        else:
            boxes = _boxes(source, path, entry["boundingBoxes"]) if "boundingBoxes" in entry else box_files.get(path)
            samples.append(Sample(path, label, sample_category, boxes))
    for path in sorted(present - listed):
        name = PurePosixPath(path).name
        if name in _NOT_SAMPLES or not _wanted(_category_of(path), category):
            continue
        if not path.lower().endswith(IMAGE_SUFFIXES):
            skipped.append((path, f"not an image (expected one of {', '.join(IMAGE_SUFFIXES)})"))
            continue
        # An image listed in a bounding_boxes.labels file is an object detection sample: its name
        # holds no class.
        label = None if path in box_files else fallback_label(name)
        samples.append(Sample(path, label, _category_of(path), box_files.get(path), named=label is not None))
    if not samples:
        raise GradcamError(_nothing_usable(source, category, skipped, _categories(files, info_labels)))
    return samples, skipped


def _categories(files: list[str], info_labels: dict | None) -> Counter:
    """How many image files each category holds."""
    entries = {str(e.get("path", "")).removeprefix("./"): e for e in (info_labels or {}).get("files", [])}
    images = [path for path in files if path.lower().endswith(IMAGE_SUFFIXES)]
    return Counter(_category_of(path, entries.get(path)) for path in images)


def _nothing_usable(source: Path, category: str, skipped: list[tuple[str, str]], categories: Counter) -> str:
    """Why a dataset has no image to explain, and what it holds instead."""
    others = {name: count for name, count in categories.items() if name != category}
    if others and not skipped:
        held = ", ".join(f"{count} {name}" for name, count in sorted(others.items()))
        choices = " or ".join([name for name in sorted(others) if name in CATEGORIES] + ["all"])
        return f"{source}: no {category} images found (it holds {held} images: use --category {choices})"
    if skipped:
        found = "; ".join(f"{path}: {reason}" for path, reason in skipped[:3])
        more = f"; and {len(skipped) - 3} more" if len(skipped) > 3 else ""
        return f"{source}: no usable {category} image (found {found}{more}); expected an Edge Impulse export"
    return f"{source}: no {category} images found (expected an Edge Impulse export)"


def _parse_info_labels(source: Path, text: bytes | None) -> dict | None:
    if text is None:
        return None
    try:
        info = json.loads(text)
    except (ValueError, UnicodeDecodeError) as exc:
        raise GradcamError(f"{source}: info.labels is not valid JSON ({exc})") from None
    if not isinstance(info, dict) or not isinstance(info.get("files"), list):
        raise GradcamError(f"{source}: info.labels has no 'files' list")
    return info


def _open_zip(source: Path, category: str) -> Dataset:
    try:
        archive = zipfile.ZipFile(source)
    except (zipfile.BadZipFile, OSError) as exc:
        raise GradcamError(f"{source}: not a readable zip file ({exc})") from None
    infos = archive.infolist()
    for info in infos:
        _check_entry(source, info)
    files = [i.filename for i in infos if not i.is_dir()]
    info_text = archive.read("info.labels") if "info.labels" in files else None
    samples, skipped = _collect(source, files, _parse_info_labels(source, info_text), category, archive.read)
    return Dataset(source, samples, skipped, archive)


def _walk(root: Path) -> Iterator[str]:
    for path in sorted(root.rglob("*")):
        if path.is_symlink() and not path.resolve().is_relative_to(root.resolve()):
            raise GradcamError(f"{path}: link points outside the dataset folder")
        if path.is_file():
            yield path.relative_to(root).as_posix()


def open_dataset(source: str | Path, category: str = "testing") -> Dataset:
    """Open an Edge Impulse export zip or folder and list the samples of `category`."""
    source = Path(source)
    check_choice("category", category, CATEGORIES)
    if source.is_dir():
        info_file = source / "info.labels"
        info_text = info_file.read_bytes() if info_file.is_file() else None
        files = list(_walk(source))
        info = _parse_info_labels(source, info_text)
        samples, skipped = _collect(source, files, info, category, lambda path: (source / path).read_bytes())
        return Dataset(source, samples, skipped)
    if not source.exists():
        raise GradcamError(not_found(source, "dataset", DATASET_EXPECTED))
    return _open_zip(source, category)
