"""Image preparation: every mode to RGB, EXIF orientation, size bounds, untouched bytes kept."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from vlmrl.data.images import (
    ImageError,
    ImageOptions,
    blank_image,
    prepare_image,
    target_size,
    vision_tokens,
)


def _encode(img: Image.Image, fmt: str = "PNG", **kw) -> bytes:
    out = io.BytesIO()
    img.save(out, format=fmt, **kw)
    return out.getvalue()


def _decode(data: bytes) -> Image.Image:
    return Image.open(io.BytesIO(data))


@pytest.mark.parametrize("mode", ["P", "L", "LA", "RGBA", "CMYK", "1", "I;16"])
def test_any_mode_becomes_rgb(mode):
    src = Image.new("RGB", (80, 60), (10, 200, 30)).convert(mode)
    fmt = "JPEG" if mode == "CMYK" else ("TIFF" if mode == "I;16" else "PNG")
    out = prepare_image(_encode(src, fmt))
    img = _decode(out.data)
    assert img.mode == "RGB" and out.changed and img.size == (80, 60)


def test_transparency_composes_on_white():
    src = Image.new("RGBA", (60, 60), (255, 0, 0, 0))
    img = _decode(prepare_image(_encode(src)).data)
    assert img.getpixel((5, 5)) == (255, 255, 255)


def test_exif_orientation_is_applied():
    src = Image.new("RGB", (120, 60), (0, 0, 255))
    exif = src.getexif()
    exif[0x0112] = 6  # rotate 90 degrees when displayed
    out = prepare_image(_encode(src, "JPEG", exif=exif.tobytes()))
    assert (out.width, out.height) == (60, 120) and out.changed
    assert _decode(out.data).getexif().get(0x0112, 1) in (1, None)


def test_clean_image_keeps_its_bytes():
    data = _encode(Image.new("RGB", (100, 80), (1, 2, 3)))
    out = prepare_image(data)
    assert out.data is data and not out.changed


def test_resize_into_bounds():
    opts = ImageOptions(min_pixels=56 * 56, max_pixels=200 * 200, min_side=28)
    big = prepare_image(_encode(Image.new("RGB", (1000, 500))), opts)
    assert big.width * big.height <= 200 * 200 and big.changed
    assert abs(big.width / big.height - 2) < 0.05
    small = prepare_image(_encode(Image.new("RGB", (10, 10))), opts)
    assert small.width * small.height >= 56 * 56
    thin = target_size(400, 10, opts)
    assert min(thin) >= 28
    with pytest.raises(ImageError, match="aspect ratio"):
        target_size(5000, 10, opts)


def test_corrupt_bytes_raise_image_error():
    with pytest.raises(ImageError, match="cannot be decoded"):
        prepare_image(b"\x89PNG\r\n\x1a\nnot really a png")
    with pytest.raises(ImageError):
        prepare_image(b"")


def test_vision_tokens_match_transformers_smart_resize():
    from transformers.models.qwen2_vl.image_processing_qwen2_vl import smart_resize

    for w, h in [(28, 28), (640, 480), (3000, 2000), (57, 1000), (100, 30)]:
        rh, rw = smart_resize(h, w, factor=28, min_pixels=56 * 56, max_pixels=28 * 28 * 1280)
        assert vision_tokens(w, h) == (rh // 28) * (rw // 28)
    assert vision_tokens(*_decode(blank_image()).size) == 4  # the blank image's cost
