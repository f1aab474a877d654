"""The measurements behind the shortcut thresholds (gradcam/job/looks.py): for every class of the
trained test models, the share of its images whose map lands on its most common region, the
stillness of the pixels there, and the heat inside its objects' boxes against the boxes' area.

- shortcut: the model trained with a logo on every circle (tests/fixtures/make_shortcut.py), on
  its own test set, and on the same images with the logo painted out;
- centred: objects always in the centre, of any colour and size (no shortcut);
- the bundled example and the three MobileNet fixtures, on their test sets (no shortcut).

    .venv/bin/python bench/shortcut_threshold.py
"""

from __future__ import annotations

import json
import sys
import tempfile
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from gradcam.job.run import explain_dataset  # noqa: E402
from tests import helpers  # noqa: E402
from tests.fixtures import make_shortcut  # noqa: E402

FIXTURES = ROOT / "tests" / "fixtures"


def cases(tmp: Path) -> dict[str, tuple[Path, Path]]:
    """name -> (model, export with boxes)."""
    found = {
        "shortcut": (FIXTURES / "shortcut_64.h5", make_shortcut.write_export(tmp / "shortcut.zip", "shortcut")),
        "centred": (FIXTURES / "centred_64.h5", make_shortcut.write_export(tmp / "centred.zip", "centred")),
    }
    clean = {
        "bundled example": (helpers.SHAPES / "model.h5", {"grey": True}),
        "mobilenetv2_96": (FIXTURES / "mobilenetv2_96.h5", {}),
        "mobilenetv1_96_gray": (FIXTURES / "mobilenetv1_96_gray.h5", {"luminance": True}),
        "mobilenetv2_160": (FIXTURES / "mobilenetv2_160.h5", {}),
    }
    for name, (model, options) in clean.items():
        export = helpers.boxed_export(tmp / f"{name}.zip", *helpers.shapes_test_set(**options))
        found[name] = (model, export)
    return found


def looks_of(model: Path, export: Path, out: Path) -> dict:
    """The run's `looks` in results.json."""
    summary = explain_dataset(model, export, out, resize_mode="fit-short", faithfulness=False, overlays="mistakes")
    with zipfile.ZipFile(summary.zip_path) as archive:
        return json.loads(archive.read("results.json"))["run"]["looks"]


def main() -> None:
    print(
        "| model | class | images | share on its region | stillness there | heat in boxes | boxes' area "
        "| lift | flagged |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for name, (model, export) in cases(Path(tmp)).items():
            found = looks_of(model, export, Path(tmp) / name)
            for c in found["classes"]:
                flags = ["shortcut"] * c["shortcut"] + ["outside its boxes"] * (c["class"] in found["outside_boxes"])
                print(
                    f"| {name} | {c['class']} | {c['images']} | {c['share']:.2f} | {c['stillness']:.2f} "
                    f"| {c['heat_in_boxes']:.2f} | {c['box_area']:.2f} | {c['heat_in_boxes'] / c['box_area']:.1f}x "
                    f"| {', '.join(flags) or '-'} |"
                )


if __name__ == "__main__":
    main()
