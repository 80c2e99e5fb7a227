"""Image preparation: any mode to RGB, EXIF orientation, size into [min_pixels, max_pixels].

Runs in worker processes; an image is re-encoded only when something changed, so clean inputs
keep their original bytes. Also the blank image of the `blank` mixing policy and vision-token counts.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass

from PIL import Image, ImageOps

# Qwen2.5-VL: 14-pixel patches merged 2x2, so sizes are multiples of 28 and one token covers 28x28.
PATCH_FACTOR = 28
QWEN_MIN_PIXELS = 56 * 56
QWEN_MAX_PIXELS = 28 * 28 * 1280
MAX_ASPECT_RATIO = 200  # Qwen2.5-VL's processor refuses anything more elongated

_ORIENTATION_TAG = 0x0112


@dataclass(frozen=True)
class ImageOptions:
    """How images are normalised (recipe key `images`)."""

    min_pixels: int = QWEN_MIN_PIXELS
    max_pixels: int = QWEN_MAX_PIXELS
    min_side: int = PATCH_FACTOR
    jpeg_quality: int = 95


@dataclass(frozen=True)
class PreparedImage:
    data: bytes
    width: int
    height: int
    changed: bool


class ImageError(ValueError):
    """An image that cannot be decoded or used; the row is rejected with this message."""


def target_size(width: int, height: int, opts: ImageOptions) -> tuple[int, int]:
    """The size an image of `width x height` is brought to (itself when already within bounds)."""
    if width <= 0 or height <= 0:
        raise ImageError(f"image has an empty size {width}x{height}")
    if max(width, height) / min(width, height) > MAX_ASPECT_RATIO:
        raise ImageError(f"aspect ratio {width}x{height} exceeds {MAX_ASPECT_RATIO}:1")
    pixels = width * height
    scale = 1.0
    if pixels > opts.max_pixels:
        scale = math.sqrt(opts.max_pixels / pixels)
    elif pixels < opts.min_pixels:
        scale = math.sqrt(opts.min_pixels / pixels)
    if min(width, height) * scale < opts.min_side:
        scale = opts.min_side / min(width, height)
    if scale == 1.0:
        return width, height
    round_ = math.floor if scale < 1 else math.ceil
    return max(opts.min_side, int(round_(width * scale))), max(opts.min_side, int(round_(height * scale)))


def _to_rgb(img: Image.Image) -> Image.Image:
    """RGB from any mode; transparency is composed on white (what a reader of the page would see)."""
    if img.mode == "RGB":
        return img
    if img.mode == "P":
        img = img.convert("RGBA")
    if img.mode in ("RGBA", "LA", "PA") or (img.mode in ("L", "RGB") and "transparency" in img.info):
        img = img.convert("RGBA")
        background = Image.new("RGB", img.size, (255, 255, 255))
        background.paste(img, mask=img.getchannel("A"))
        return background
    return img.convert("RGB")


def prepare_image(data: bytes, opts: ImageOptions = ImageOptions()) -> PreparedImage:
    """Decode, fix orientation and mode, resize into bounds; raise `ImageError` when undecodable."""
    try:
        with Image.open(io.BytesIO(data)) as src:
            fmt = src.format or "PNG"
            src.load()
            img = src
            orientation = img.getexif().get(_ORIENTATION_TAG, 1)
            changed = False
            if orientation not in (None, 1):
                img = ImageOps.exif_transpose(img)
                changed = True
            size = target_size(img.width, img.height, opts)
            if size != img.size and img.mode in ("L", "RGB") and "transparency" not in img.info:
                # Resize first where the mode allows it: fewer channels to interpolate.
                img = img.resize(size, Image.Resampling.BICUBIC)
                changed = True
            if img.mode != "RGB" or "transparency" in img.info:
                img = _to_rgb(img)
                changed = True
            if size != img.size:
                img = img.resize(size, Image.Resampling.BICUBIC)
                changed = True
            if not changed:
                return PreparedImage(data, img.width, img.height, False)
            out = io.BytesIO()
            if fmt == "JPEG":
                img.save(out, format="JPEG", quality=opts.jpeg_quality)
            else:
                # Level 3: about half the time of the default 6 for about the same size on figures.
                img.save(out, format="PNG", compress_level=3)
            return PreparedImage(out.getvalue(), img.width, img.height, True)
    except ImageError:
        raise
    except Exception as exc:  # PIL raises many types for bad files; all mean "cannot use this image"
        raise ImageError(f"image cannot be decoded ({type(exc).__name__}: {exc})") from exc


def prepare_images(images: list[bytes], opts: ImageOptions) -> tuple[list[PreparedImage] | None, str | None]:
    """Worker entry: all images of one row, or the first error message (a row is kept or dropped whole)."""
    out = []
    for i, data in enumerate(images):
        try:
            out.append(prepare_image(data, opts))
        except ImageError as exc:
            return None, f"image {i}: {exc}"
    return out, None


def image_size(data: bytes) -> tuple[int, int]:
    """(width, height) from the header only, without decoding pixels."""
    with Image.open(io.BytesIO(data)) as img:
        return img.size


def blank_image(size: int = PATCH_FACTOR, color: tuple[int, int, int] = (255, 255, 255)) -> bytes:
    """PNG of a plain square; the default 28x28 is the smallest image Qwen2.5-VL accepts."""
    out = io.BytesIO()
    Image.new("RGB", (size, size), color).save(out, format="PNG")
    return out.getvalue()


def vision_tokens(
    width: int,
    height: int,
    min_pixels: int = QWEN_MIN_PIXELS,
    max_pixels: int = QWEN_MAX_PIXELS,
    patch: int = 14,
    merge: int = 2,
) -> int:
    """Vision tokens a Qwen2-VL-style processor (Qwen2.5-VL: patch 14, Qwen3-VL: patch 16; both merge
    2x2) spends on an image: its smart_resize to multiples of patch x merge within [min_pixels,
    max_pixels], then one token per (patch x merge)^2 pixels."""
    factor = patch * merge
    h_bar = round(height / factor) * factor
    w_bar = round(width / factor) * factor
    if h_bar * w_bar > max_pixels:
        beta = math.sqrt((height * width) / max_pixels)
        h_bar = max(factor, math.floor(height / beta / factor) * factor)
        w_bar = max(factor, math.floor(width / beta / factor) * factor)
    elif h_bar * w_bar < min_pixels:
        beta = math.sqrt(min_pixels / (height * width))
        h_bar = math.ceil(height * beta / factor) * factor
        w_bar = math.ceil(width * beta / factor) * factor
    return (h_bar // factor) * (w_bar // factor)


@dataclass(frozen=True)
class VisionSettings:
    """How a processor turns an image into vision tokens: pixel bounds, patch size, merge size."""

    min_pixels: int
    max_pixels: int
    patch: int = 14
    merge: int = 2

    def tokens(self, width: int, height: int) -> int:
        return vision_tokens(width, height, self.min_pixels, self.max_pixels, self.patch, self.merge)


#: Published Qwen2.5-VL processor settings (what the engines use when nothing narrows the bounds).
PROCESSOR_DEFAULTS = VisionSettings(56 * 56, 28 * 28 * 16384)


def family_vision_defaults(family: str | None) -> VisionSettings:
    """The published processor settings of a supported model family (`vlmrl.tiny.SUPPORTED`: Qwen3-VL
    has 16-pixel patches where Qwen2.5-VL has 14), for a model whose processor is not on this machine;
    Qwen2.5-VL's for an unknown family."""
    from vlmrl.tiny import SUPPORTED

    f = SUPPORTED.get(family or "")
    if f is None:
        return PROCESSOR_DEFAULTS
    return VisionSettings(f.min_pixels, f.max_pixels, f.patch_size, f.merge_size)


def vision_settings(processor: object, default: VisionSettings = PROCESSOR_DEFAULTS) -> VisionSettings:
    """The settings of a (Qwen2-VL style) processor's image processor, read from it: pixel bounds
    (`min_pixels`/`max_pixels` or `size.shortest_edge`/`longest_edge`), `patch_size`, `merge_size`;
    `default` for what it lacks (all of it without a processor)."""
    ip = getattr(processor, "image_processor", None)
    if ip is None:
        return default
    size = getattr(ip, "size", None) or {}
    return VisionSettings(
        int(getattr(ip, "min_pixels", None) or size.get("shortest_edge") or default.min_pixels),
        int(getattr(ip, "max_pixels", None) or size.get("longest_edge") or default.max_pixels),
        int(getattr(ip, "patch_size", None) or default.patch),
        int(getattr(ip, "merge_size", None) or default.merge),
    )
