"""Camera-sized photos: JPEG sizes read from the header, reduced decoding, and a model input that
matches the full decode's within resampling tolerance."""

import struct

import cv2
import numpy as np
import pytest

from gradcam.edge import images
from gradcam.engine.preprocess import ImageSpec, preprocess
from gradcam.job.inputs import DECODE_MARGIN


def photo(width: int = 4000, height: int = 3000, seed: int = 0) -> np.ndarray:
    """A camera-sized RGB image: smooth colour fields, a disc and sensor noise."""
    rng = np.random.default_rng(seed)
    image = cv2.resize(
        rng.integers(0, 256, (30, 40, 3), dtype=np.uint8), (width, height), interpolation=cv2.INTER_CUBIC
    )
    cv2.circle(image, (width * 3 // 8, height * 2 // 5), height // 7, (255, 40, 0), -1)
    return np.clip(image + rng.normal(0, 12, image.shape), 0, 255).astype(np.uint8)


def jpeg(image: np.ndarray, *flags: int) -> bytes:
    return cv2.imencode(".jpg", cv2.cvtColor(image, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 92, *flags])[
        1
    ].tobytes()


def with_orientation(data: bytes, orientation: int) -> bytes:
    """The JPEG with an EXIF APP1 segment holding only the orientation tag (0x0112)."""
    tiff = b"II*\x00" + struct.pack("<IHHHIHHI", 8, 1, 0x0112, 3, 1, orientation, 0, 0)
    payload = b"Exif\x00\x00" + tiff
    return data[:2] + b"\xff\xe1" + struct.pack(">H", len(payload) + 2) + payload + data[2:]


@pytest.fixture(scope="module")
def big():
    image = photo()
    return image, jpeg(image)


def test_jpeg_size_is_read_from_the_header():
    small = photo(320, 240)
    assert images.jpeg_size(jpeg(small)) == (320, 240)
    assert images.jpeg_size(jpeg(photo(97, 131), cv2.IMWRITE_JPEG_PROGRESSIVE, 1)) == (97, 131)
    assert images.jpeg_size(with_orientation(jpeg(small), 6)) == (320, 240), "as stored"
    assert images.jpeg_size(cv2.imencode(".png", small)[1].tobytes()) is None
    assert images.jpeg_size(jpeg(small)[:20]) is None


def test_a_large_jpeg_is_decoded_reduced_but_never_below_min_side(big):
    _image, data = big
    for min_side, shape in [(0, (3000, 4000)), (1024, (1500, 2000)), (768, (750, 1000)), (500, (375, 500))]:
        decoded = images.decode(data, min_side)
        assert decoded.image.shape == (*shape, 3)
        assert decoded.original == (4000, 3000)


def test_a_turned_photo_reports_its_size_as_displayed():
    data = with_orientation(jpeg(photo(800, 600)), 6)  # 6: turn 90 degrees clockwise to display
    full, reduced = images.decode(data), images.decode(data, 200)
    assert full.image.shape == (800, 600, 3) and full.original == (600, 800)
    assert reduced.image.shape == (200, 150, 3) and reduced.original == (600, 800)


def test_other_formats_are_decoded_in_full():
    image = photo(900, 700)
    decoded = images.decode(cv2.imencode(".png", cv2.cvtColor(image, cv2.COLOR_RGB2BGR))[1].tobytes(), 100)
    np.testing.assert_array_equal(decoded.image, image)
    assert decoded.original == (900, 700)
    assert images.decode(b"not an image", 100) is None


def test_downscale_caps_the_long_side():
    image = photo(1000, 600)
    assert images.downscale(image, 500).shape == (300, 500, 3)
    assert images.downscale(image, 0) is image and images.downscale(image, 2000) is image


@pytest.mark.parametrize("mode", ["squash", "fit-short", "fit-long"])
@pytest.mark.parametrize("size", [96, 160])
@pytest.mark.parametrize("max_side", [1024, 64])
def test_the_model_input_matches_the_full_decode(big, mode, size, max_side):
    """As the job decodes (at least max(--max-overlay-size, DECODE_MARGIN x the model's size)):
    within 2 grey levels of the full decode, 0.2 on average."""
    _image, data = big
    spec = ImageSpec(size, size, False, mode, "0..1")
    reduced = images.decode(data, max(max_side, DECODE_MARGIN * size))
    assert reduced.image.shape[1] < 4000
    full_input, _ = preprocess(images.decode(data).image, spec)
    reduced_input, _ = preprocess(reduced.image, spec)
    difference = np.abs(full_input - reduced_input)
    assert difference.max() <= 2.5 / 255 and difference.mean() <= 0.2 / 255
