"""Every image mode PIL opens a photo in is decoded to the right 8-bit RGB values, checked against a
reference decode of the same samples, and counted by the data check."""

import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from facemask.data.photo_index import (
    ALPHA_BACKGROUND,
    DataReport,
    index_eval_photos,
    index_train_photos,
    read_photo,
)

from .conftest import PORTRAIT


@pytest.fixture(scope="module")
def portrait() -> np.ndarray:
    """The portrait at 96 x 112, as uint8 RGB."""
    return np.asarray(Image.open(PORTRAIT).convert("RGB").resize((96, 112), Image.Resampling.BICUBIC))


def grey_of(rgb: np.ndarray) -> np.ndarray:
    return np.asarray(Image.fromarray(rgb).convert("L"))


def alpha_ramp(rgb: np.ndarray) -> Image.Image:
    """Alpha from 0 (transparent, left) to 255 (opaque, right)."""
    return Image.fromarray(
        np.broadcast_to(np.linspace(0, 255, rgb.shape[1]).round().astype(np.uint8), rgb.shape[:2]).copy()
    )


def sixteen_bit(rgb: np.ndarray) -> np.ndarray:
    """Grey on the 16-bit scale, its low byte not a copy of the high one (as in a real 16-bit photo)."""
    noise = np.arange(rgb.shape[1]) % 97 - 48
    return np.clip(grey_of(rgb).astype(np.int64) * 257 + noise, 0, 65535).astype(np.uint16)


def cmyk(rgb: np.ndarray) -> Image.Image:
    """The photo in CMYK with real black (K) ink, from 1 - max(r, g, b)."""
    black = 255 - rgb.max(axis=2, keepdims=True).astype(np.float64)
    ink = np.where(black < 255, (255 - rgb - black) / np.maximum(255 - black, 1) * 255, 0)
    samples = np.concatenate([ink, black], axis=2).round().astype(np.uint8)
    return Image.frombytes("CMYK", (rgb.shape[1], rgb.shape[0]), samples.tobytes())


def with_alpha(image: Image.Image, rgb: np.ndarray) -> Image.Image:
    image.putalpha(alpha_ramp(rgb))
    return image


#: mode -> (the photo in that mode, the file format that keeps it)
MAKE = {
    "1": (lambda rgb: Image.fromarray(grey_of(rgb) > 127), "PNG"),
    "L": (lambda rgb: Image.fromarray(grey_of(rgb)), "PNG"),
    "LA": (lambda rgb: with_alpha(Image.fromarray(grey_of(rgb)), rgb), "PNG"),
    "P": (lambda rgb: Image.fromarray(rgb).quantize(64), "PNG"),
    "PA": (lambda rgb: with_alpha(Image.fromarray(rgb).quantize(64), rgb), "TIFF"),
    "RGB": (lambda rgb: Image.fromarray(rgb), "PNG"),
    "RGBA": (lambda rgb: with_alpha(Image.fromarray(rgb), rgb), "PNG"),
    "CMYK": (cmyk, "JPEG"),
    "YCbCr": (lambda rgb: Image.fromarray(rgb).convert("YCbCr"), "TIFF"),
    "I;16": (
        lambda rgb: Image.frombytes(
            "I;16", (rgb.shape[1], rgb.shape[0]), sixteen_bit(rgb).astype("<u2").tobytes()
        ),
        "PNG",
    ),
    "I;16B": (
        lambda rgb: Image.frombytes(
            "I;16B", (rgb.shape[1], rgb.shape[0]), sixteen_bit(rgb).astype(">u2").tobytes()
        ),
        "TIFF",
    ),
    "I": (lambda rgb: Image.fromarray(sixteen_bit(rgb).astype(np.int32)), "TIFF"),
    "F": (lambda rgb: Image.fromarray((grey_of(rgb) / 255).astype(np.float32)), "TIFF"),
}


def photo_in_mode(rgb: np.ndarray, mode: str, path: Path) -> Path:
    """Save the photo in `mode` at `path` (any suffix: PIL opens files by their content)."""
    make, file_format = MAKE[mode]
    image = make(rgb)
    assert image.mode == mode
    image.save(path, format=file_format)
    return path


def composite(colour: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    share = alpha[..., None] / 255
    return colour * share + np.array(ALPHA_BACKGROUND, dtype=np.float64) * (1 - share)


def ycbcr_to_rgb(s: np.ndarray) -> np.ndarray:
    """JPEG's (JFIF, full-range ITU-R BT.601) YCbCr to RGB."""
    y, cb, cr = s[..., 0], s[..., 1] - 128, s[..., 2] - 128
    return np.stack([y + 1.402 * cr, y - 0.344136 * cb - 0.714136 * cr, y + 1.772 * cb], axis=-1)


def reference_rgb(image: Image.Image) -> np.ndarray:
    """What the photo's samples, as PIL opens them in their own mode, mean in 8-bit RGB (floats)."""
    s = np.asarray(image).astype(np.float64)
    palette = (
        np.array(image.getpalette() or [0], dtype=np.float64).reshape(-1, 3)[:256]
        if "P" in image.mode
        else None
    )
    grey = {"1": s * 255, "L": s, "I;16": s / 257, "I;16B": s / 257, "I": s / 257, "F": s * 255}
    if image.mode in grey:
        return np.repeat(grey[image.mode][..., None], 3, axis=2)
    references = {
        "LA": lambda: composite(s[..., :1].repeat(3, axis=2), s[..., 1]),
        "P": lambda: palette[s.astype(int)],
        "PA": lambda: composite(palette[s[..., 0].astype(int)], s[..., 1]),
        "RGB": lambda: s,
        "RGBA": lambda: composite(s[..., :3], s[..., 3]),
        "CMYK": lambda: (255 - s[..., :3]) * (255 - s[..., 3:]) / 255,
        "YCbCr": lambda: ycbcr_to_rgb(s),
    }
    return np.clip(references[image.mode](), 0, 255)


def decoding_error(path: Path) -> float:
    """The largest difference, in grey levels, between read_photo's pixels and the reference decode."""
    with Image.open(path) as image:
        reference = reference_rgb(image)
    decoded = np.asarray(read_photo(path))
    assert decoded.dtype == np.uint8 and decoded.shape == reference.shape
    return float(np.abs(decoded - reference).max())


@pytest.mark.parametrize("mode", list(MAKE))
def test_each_image_mode_decodes_to_the_reference_rgb_values(portrait, tmp_path, mode):
    path = photo_in_mode(portrait, mode, tmp_path / "photo.png")
    assert Image.open(path).mode == mode
    assert decoding_error(path) <= 1.0  # the rounding of PIL's fixed-point conversions


def test_a_16_bit_photo_decodes_as_its_8_bit_copy_not_clipped_to_white(portrait, tmp_path):
    deep = read_photo(photo_in_mode(portrait, "I;16", tmp_path / "deep.png"))
    shallow = read_photo(photo_in_mode(portrait, "L", tmp_path / "shallow.png"))
    assert np.array_equal(np.asarray(deep), np.asarray(shallow))


@pytest.mark.parametrize(
    ("mode", "samples"), [("I", [0, 100, 255]), ("F", [0.0, 100.0, 255.0]), ("I", [0, 25700, 65535])]
)
def test_integer_and_float_photos_are_read_on_the_scale_that_holds_their_values(tmp_path, mode, samples):
    path = tmp_path / "photo.tif"
    Image.fromarray(np.array([samples] * 3, dtype=np.int32 if mode == "I" else np.float32)).save(path)
    assert np.asarray(read_photo(path))[0, :, 0].tolist() == [0, 100, 255]


def test_transparent_pixels_show_the_fixed_background(tmp_path):
    Image.new("RGBA", (40, 40), (200, 10, 10, 0)).save(tmp_path / "clear.png")
    assert np.asarray(read_photo(tmp_path / "clear.png"))[0, 0].tolist() == list(ALPHA_BACKGROUND)


@pytest.mark.parametrize("mode", [m for m in MAKE if m != "RGB"])
def test_the_data_check_accepts_each_mode_and_counts_its_conversion(demo_dir, portrait, tmp_path, mode):
    data = shutil.copytree(demo_dir, tmp_path / "data")
    target = next(sorted((data / "train" / "images").iterdir())[0].glob("mask3.*"))
    target.unlink()
    photo_in_mode(portrait, mode, target.with_suffix(".png"))
    report = DataReport()
    index_train_photos(data, (30, 60), report)
    index_eval_photos(data, report)
    assert report.to_dict()["converted_to_rgb"] == {mode: 1}
