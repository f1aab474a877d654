"""Where each class looks, and shortcuts: the running sums and the measure on made-up maps, checked
against independent computations (no TensorFlow)."""

import numpy as np
import pytest

from gradcam.job import looks
from gradcam.job.looks import ClassLooks, View, heat_inside, hottest_region

FRAME = (64, 64)
INPUT = (64, 64)


def _blob(x: float, y: float, sigma: float = 3.0) -> np.ndarray:
    ys, xs = np.mgrid[0 : FRAME[0], 0 : FRAME[1]] + 0.5
    return np.exp(-((xs - x) ** 2 + (ys - y) ** 2) / (2 * sigma**2)).astype(np.float32)


def _image(rng: np.random.Generator, patch: tuple[int, int, int, int] | None = None) -> np.ndarray:
    """A random textured image; `patch` (x0, y0, x1, y1) painted the same in every image."""
    image = rng.integers(0, 256, (*FRAME, 3)).astype(np.uint8)
    if patch:
        x0, y0, x1, y1 = patch
        image[y0:y1, x0:x1] = 40
    return image


def test_the_hottest_region_is_the_brute_force_one():
    rng = np.random.default_rng(0)
    for _ in range(20):
        heat = rng.random(FRAME).astype(np.float32) ** 4
        size, step = 8, 4
        sums = {
            (x, y): heat[y : y + size, x : x + size].sum()
            for y in range(0, FRAME[0] - size + 1, step)
            for x in range(0, FRAME[1] - size + 1, step)
        }
        assert hottest_region(heat, size) == max(sums, key=sums.get)
    assert hottest_region(np.zeros(FRAME, np.float32), 8) is None


def test_heat_inside_boxes_equals_a_pixel_by_pixel_count():
    rng = np.random.default_rng(1)
    heat = rng.random(FRAME)
    boxes = ((3.2, 5.0, 20.7, 18.4), (15.0, 10.0, 30.0, 40.5))
    inside = total = 0.0
    covered = 0
    for y in range(FRAME[0]):
        for x in range(FRAME[1]):
            total += heat[y, x]
            if any(x0 <= x + 0.5 < x1 and y0 <= y + 0.5 < y1 for x0, y0, x1, y1 in boxes):
                inside += heat[y, x]
                covered += 1
    share, area = heat_inside(heat, boxes)
    assert share == pytest.approx(inside / total) and area == pytest.approx(covered / heat.size)


def _run(views: list[View]) -> looks.Looks:
    summaries = ClassLooks(FRAME, INPUT)
    for view in views:
        summaries.add(view)
    return summaries.result()


def test_a_class_whose_maps_sit_on_an_unchanging_patch_is_flagged_and_moving_objects_are_not():
    rng = np.random.default_rng(2)
    patch = (4, 4, 12, 12)
    marked = [View("logo", _blob(8, 8), _image(rng, patch)) for _ in range(30)]
    moving = [View("ball", _blob(*rng.uniform(8, 56, 2)), _image(rng)) for _ in range(30)]
    still_but_varied = [View("centre", _blob(32, 32), _image(rng)) for _ in range(30)]
    found = _run(marked + moving + still_but_varied)
    by_name = {look.name: look for look in found.classes}
    assert [look.name for look in found.shortcuts] == ["logo"]
    logo = by_name["logo"]
    assert logo.candidate.share == 1.0 and logo.candidate.stillness < 0.05
    x0, y0, x1, y1 = logo.candidate.region.box
    assert x0 < patch[2] and patch[0] < x1 and y0 < patch[3] and patch[1] < y1, "overlaps the patch"
    assert by_name["ball"].candidate.share < 0.3
    assert by_name["centre"].candidate.share == 1.0 and by_name["centre"].candidate.stillness > 0.9
    assert logo.images == 30 and np.allclose(logo.heat, _blob(8, 8), atol=1e-6)


def test_fewer_than_min_images_are_never_flagged():
    rng = np.random.default_rng(3)
    patch = (4, 4, 12, 12)
    found = _run([View("logo", _blob(8, 8), _image(rng, patch)) for _ in range(looks.MIN_IMAGES - 1)])
    assert found.shortcuts == [] and found.classes[0].candidate.share == 1.0


def test_the_mean_image_and_the_mistakes_by_true_class():
    rng = np.random.default_rng(4)
    images = [_image(rng) for _ in range(4)]
    views = [View("a", _blob(10, 10), image, "b", _blob(50, 50)) for image in images[:3]]
    views.append(View("a", _blob(10, 10), images[3]))
    found = _run(views)
    [a] = found.classes
    [b] = found.mistakes
    expected = np.clip(np.rint(np.mean(images, axis=0)), 0, 255).astype(np.uint8)
    np.testing.assert_array_equal(a.image, expected)
    assert (a.images, b.name, b.images) == (4, "b", 3)
    np.testing.assert_allclose(b.heat, _blob(50, 50), atol=1e-6)
    np.testing.assert_array_equal(b.image, np.clip(np.rint(np.mean(images[:3], axis=0)), 0, 255).astype(np.uint8))


def test_a_class_whose_maps_miss_its_boxes_is_flagged_outside():
    rng = np.random.default_rng(5)
    box = ((40.0, 40.0, 56.0, 56.0),)
    elsewhere = [View("off", _blob(10, 10), _image(rng), boxes=box) for _ in range(12)]
    on = [View("on", _blob(48, 48), _image(rng), boxes=box) for _ in range(12)]
    found = _run(elsewhere + on)
    by_name = {look.name: look for look in found.classes}
    assert [look.name for look in found.outside] == ["off"]
    expected = np.mean([heat_inside(view.heat, box)[0] for view in on])
    assert by_name["on"].heat_in_boxes == pytest.approx(expected) and by_name["on"].box_area == pytest.approx(0.0625)
    assert by_name["on"].boxed == 12


def test_a_letterboxs_padding_is_no_artefact():
    """fit-long pads with the same black in every image: maps that keep landing on its edge are not a
    shortcut, as the padding is no part of any image; a logo inside the picture still is."""
    rng = np.random.default_rng(6)
    seen = np.zeros(FRAME, bool)
    seen[12:52] = True  # a wide picture letterboxed: black bars above and below

    def padded(image: np.ndarray) -> np.ndarray:
        image[~seen] = 0
        return image

    edge = [View("edge", _blob(32, 10), padded(_image(rng)), seen=seen) for _ in range(20)]
    logo = [View("logo", _blob(8, 20), padded(_image(rng, (4, 16, 12, 24))), seen=seen) for _ in range(20)]
    found = _run(edge + logo)
    by_name = {look.name: look for look in found.classes}
    assert by_name["edge"].candidate.share == 1.0 and by_name["edge"].candidate.stillness > 0.9
    assert [look.name for look in found.shortcuts] == ["logo"]
