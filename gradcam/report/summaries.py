"""The class summaries as results.json's `run` gives them: where each class looks (images and audio
windows), and what each class weighs (models explained at their input features)."""

from __future__ import annotations

from gradcam.job.looks import ClassLook, Looks
from gradcam.job.weights import ClassWeights, Weights
from gradcam.report.numbers import rounded


def _look(look: ClassLook, tile: str) -> dict:
    return {"class": look.name, "images": look.images, "tile": tile}


def class_looks(looks: Looks | None, tiles: dict[tuple[str, str], str]) -> dict:
    """Where each class looks (its tile, the region its maps land on most, the share of its images
    there, the stillness of its pixels, whether it is flagged, the heat inside its boxes), the same for
    the mistakes by true class, and the flagged classes."""
    if looks is None:
        return {}

    def explained(look: ClassLook) -> dict:
        candidate = look.candidate
        region = (
            None
            if candidate is None
            else dict(zip(("x", "y", "width", "height"), looks.in_input(candidate.region), strict=True))
        )
        return _look(look, tiles.get(("explained", look.name), "")) | {
            "region": region,
            "share": candidate and rounded(candidate.share),
            "stillness": candidate and rounded(candidate.stillness),
            "shortcut": look.flagged,
            "heat_in_boxes": rounded(look.heat_in_boxes),
            "box_area": rounded(look.box_area),
            "images_with_boxes": look.boxed,
        }

    classes = [explained(look) for look in looks.classes]
    return {
        "input": list(looks.input_size),
        "windows": looks.windows,  # windows of features: the input is their picture, time across
        "classes": classes,
        "mistakes": [_look(look, tiles.get(("mistakes", look.name), "")) for look in looks.mistakes],
        "shortcuts": [c for c in classes if c["shortcut"]],
        "outside_boxes": [look.name for look in looks.outside],
    }


def class_weights(weights: Weights) -> dict:
    """What each class weighs: per feature group, the mean share of the positive attribution."""

    def rows(items: list[ClassWeights]) -> list[dict]:
        return [
            {
                "class": c.name,
                "windows": c.windows,
                "shares": dict(zip(weights.groups, map(rounded, c.shares), strict=True)),
            }
            for c in items
        ]

    return {
        "groups": list(weights.groups),
        "classes": rows(weights.classes),
        "mistakes": rows(weights.mistakes),
        "note": weights.note,
    }
