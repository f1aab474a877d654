"""Camera-sized and turned photos: decoded in full as displayed, the model's input resized from the
whole image whatever the overlay's size, the picture shown capped."""

import struct

import cv2
import numpy as np
import pytest
import pyvips

from gradcam.edge import images
from gradcam.edge.dataset import Sample
from gradcam.engine.preprocess import preprocess
from gradcam.explainer import Explainer
from gradcam.job.inputs import ImageInputs
from tests.helpers import SHAPE_CLASSES, SHAPES


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


def test_a_turned_photo_is_decoded_as_displayed():
    data = with_orientation(jpeg(photo(800, 600)), 6)  # 6: turn 90 degrees clockwise to display
    assert images.decode(data).shape == (800, 600, 3)


def test_other_formats_are_decoded_in_full():
    image = photo(900, 700)
    np.testing.assert_array_equal(images.decode(cv2.imencode(".png", image[..., ::-1])[1].tobytes()), image)
    assert images.decode(b"not an image") is None


def test_downscale_caps_the_long_side():
    image = photo(1000, 600)
    assert images.downscale(image, 500).shape == (300, 500, 3)
    assert images.downscale(image, 0) is image and images.downscale(image, 2000) is image


class _Files:
    def __init__(self, data: bytes):
        self.data = data

    def read(self, _sample) -> bytes:
        return self.data


@pytest.mark.parametrize("max_side", [1024, 0])
def test_the_model_input_is_the_whole_image_s_whatever_the_overlay_size(big, max_side):
    """The job's input equals the block's preprocessing of the full decode, exactly, for a capped
    overlay (1024) and a full-size one (0); the picture is capped, the file's size kept."""
    _image, data = big
    explainer = Explainer.from_file(SHAPES / "model.h5", SHAPE_CLASSES, resize_mode="fit-short")
    prepared = ImageInputs(_Files(data), explainer, max_side).prepare(Sample("testing/big.jpg", "circle", "testing"))
    expected, _ = preprocess(images.decode(data), explainer.spec)
    np.testing.assert_array_equal(prepared.inputs, expected)
    assert prepared.original == (4000, 3000)
    assert prepared.image.shape == ((768, 1024, 3) if max_side else (3000, 4000, 3))


def _libvips(data: bytes) -> np.ndarray:
    """The file as libvips (Studio's sharp) reads it: turned upright, alpha dropped, 8-bit sRGB."""
    image = pyvips.Image.new_from_buffer(data, "").autorot()
    image = image[: image.bands - 1] if image.hasalpha() else image
    image = image.colourspace("srgb").cast("uchar")
    pixels = np.ndarray((image.height, image.width, image.bands), np.uint8, image.write_to_memory())
    return np.repeat(pixels, 3, axis=2) if image.bands == 1 else pixels


def _formats() -> dict[str, bytes]:
    rgb, bgr = photo(320, 240), photo(320, 240)[..., ::-1]
    gray = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    fine = np.random.default_rng(0).integers(0, 257, rgb.shape).astype(np.uint16)  # the low byte
    return {
        "turned jpeg (EXIF 6)": with_orientation(jpeg(rgb), 6),
        "upside-down jpeg (EXIF 3)": with_orientation(jpeg(rgb), 3),
        "grayscale jpeg": cv2.imencode(".jpg", gray)[1].tobytes(),
        "grayscale png": cv2.imencode(".png", gray)[1].tobytes(),
        "rgba png": cv2.imencode(".png", np.dstack([bgr, np.full(gray.shape, 128, np.uint8)]))[1].tobytes(),
        "16-bit png": cv2.imencode(".png", bgr.astype(np.uint16) * 257 + fine)[1].tobytes(),
        "16-bit grayscale png": cv2.imencode(".png", gray.astype(np.uint16) * 257)[1].tobytes(),
    }


@pytest.mark.parametrize("name", list(_formats()))
def test_the_pixels_are_libvips_s(name):
    """The photos Studio ingests in other forms decode to libvips's pixels, exactly."""
    data = _formats()[name]
    np.testing.assert_array_equal(images.decode(data), _libvips(data))
