from __future__ import annotations

import base64
import io
import os
import struct
import time
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from arpo.errors import InvalidImageError, InvalidOptionError
from arpo.tools import images
from arpo.tools.images import (
    DEFAULT_MAX_PIXELS,
    IMAGE_SUFFIXES,
    MIN_SIDE,
    decode_base64_image,
    decode_data_url,
    encode_png,
    image_to_data_url,
    load_image,
    load_image_file,
    open_image_file,
    thumbnail,
)

# --------------------------------------------------------------------------- helpers


def _noise(size: tuple[int, int] = (64, 48), seed: int = 0) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8))


def _png_bytes(image: Image.Image, **params: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", **params)
    return buffer.getvalue()


def _save(image: Image.Image, path: Path, **params: object) -> Path:
    image.save(path, **params)
    return path


def _patch_png_size(png: bytes, width: int, height: int) -> bytes:
    """Rewrite the IHDR width/height (and its CRC) without touching the pixel data."""
    assert png[12:16] == b"IHDR"
    ihdr = struct.pack(">II", width, height) + png[24:29]
    crc = struct.pack(">I", zlib.crc32(b"IHDR" + ihdr) & 0xFFFFFFFF)
    return png[:16] + ihdr + crc + png[33:]


def _pixels(image: Image.Image) -> np.ndarray:
    return np.asarray(image, dtype=np.int32)


# --------------------------------------------------------------------------- paths: errors


def test_missing_file_names_path_and_says_what_to_pass(tmp_path: Path) -> None:
    path = tmp_path / "nope.jpg"
    with pytest.raises(InvalidImageError) as info:
        load_image(path)
    message = str(info.value)
    assert "nope.jpg" in message
    assert "not found" in message
    assert "Pass the path of an existing" in message


def test_missing_file_given_as_str(tmp_path: Path) -> None:
    with pytest.raises(InvalidImageError, match=r"nope\.png.*not found"):
        load_image(str(tmp_path / "nope.png"))


def test_directory_is_refused(tmp_path: Path) -> None:
    with pytest.raises(InvalidImageError) as info:
        load_image(tmp_path)
    message = str(info.value)
    assert str(tmp_path) in message
    assert "directory" in message
    assert "Pass the path of an image file" in message


def test_empty_path_string_is_refused() -> None:
    with pytest.raises(InvalidImageError, match=r"path is empty.*Pass the path"):
        load_image("  ")


def test_permission_error_message_without_needing_a_non_root_user(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = _save(_noise(), tmp_path / "locked.png")

    real_open = os.open

    def refuse(name: object, *args: object, **kwargs: object) -> int:
        if Path(name) == path:  # type: ignore[arg-type]
            raise PermissionError(13, "Permission denied")
        return real_open(name, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(images.os, "open", refuse)
    with pytest.raises(InvalidImageError, match=r"locked\.png.*permission denied.*readable"):
        load_image(path)


def test_fifo_is_refused_without_hanging(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe.png"
    os.mkfifo(fifo)
    started = time.perf_counter()
    with pytest.raises(InvalidImageError, match=r"pipe\.png.*not a regular file \(a named pipe\)"):
        load_image(fifo)
    assert time.perf_counter() - started < 1.0


def test_device_is_refused() -> None:
    with pytest.raises(InvalidImageError, match=r"not a regular file \(a device\)"):
        load_image("/dev/null")


def test_symlinks_are_followed_unless_asked_not_to(tmp_path: Path) -> None:
    target = _save(_noise(), tmp_path / "real.png")
    link = tmp_path / "link.png"
    link.symlink_to(target)
    assert load_image(link).size == (64, 48)
    with open_image_file(link) as handle:
        assert handle.read(8) == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(InvalidImageError, match="symbolic link, and links are not followed"):
        open_image_file(link, follow_symlinks=False)


def test_load_image_file_decodes_an_open_handle(tmp_path: Path) -> None:
    original = _noise()
    path = _save(original, tmp_path / "a.png")
    with open_image_file(path) as handle:
        loaded = load_image_file(handle, repr(str(path)))
        assert not handle.closed, "the caller owns the handle"
    assert np.array_equal(_pixels(loaded), _pixels(original))
    assert load_image_file(io.BytesIO(_png_bytes(original)), "memory").size == (64, 48)
    empty = tmp_path / "empty.png"
    empty.write_bytes(b"")
    with open(empty, "rb") as handle, pytest.raises(InvalidImageError, match="it is empty"):
        load_image_file(handle, repr(str(empty)))
    with pytest.raises(InvalidImageError, match=r"label-x.*not a supported image format"):
        load_image_file(io.BytesIO(b"not an image"), "label-x")


def test_image_suffixes_come_from_the_format_table() -> None:
    for suffix in (".png", ".jpg", ".jpeg", ".webp", ".gif", ".bmp", ".tif", ".tiff", ".avif"):
        assert suffix in IMAGE_SUFFIXES
    assert all(s == s.lower() and s.startswith(".") for s in IMAGE_SUFFIXES)
    assert len(set(IMAGE_SUFFIXES)) == len(IMAGE_SUFFIXES)
    Image.init()
    known = Image.registered_extensions()
    for suffix in IMAGE_SUFFIXES:  # each suffix names a format we decode (where Pillow has it)
        if suffix in known:
            assert known[suffix] in images._ALLOWED_FORMATS, suffix
    assert ".eps" not in IMAGE_SUFFIXES and ".svg" not in IMAGE_SUFFIXES


def test_text_file_named_png_is_not_an_image(tmp_path: Path) -> None:
    path = tmp_path / "notes.png"
    path.write_text("these are not pixels\n")
    with pytest.raises(InvalidImageError) as info:
        load_image(path)
    message = str(info.value)
    assert "notes.png" in message
    assert "not a supported image format" in message
    assert "PNG" in message


def test_empty_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "empty.png"
    path.write_bytes(b"")
    with pytest.raises(InvalidImageError, match=r"empty\.png.*it is empty.*Pass a non-empty"):
        load_image(path)


def test_exotic_formats_are_not_decoded(tmp_path: Path) -> None:
    path = tmp_path / "page.eps"
    path.write_bytes(b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 100 100\nshowpage\n")
    with pytest.raises(InvalidImageError, match="not a supported image format"):
        load_image(path)


@pytest.mark.parametrize(("fmt", "suffix"), [("PNG", "png"), ("JPEG", "jpg")])
def test_truncated_image_is_refused(tmp_path: Path, fmt: str, suffix: str) -> None:
    buffer = io.BytesIO()
    _noise((128, 128)).save(buffer, format=fmt)
    data = buffer.getvalue()
    path = tmp_path / f"half.{suffix}"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(InvalidImageError) as info:
        load_image(path)
    message = str(info.value)
    assert f"half.{suffix}" in message
    assert "truncated or corrupt" in message
    assert "Re-export or re-download" in message


# --------------------------------------------------------------------------- size limits


def test_decompression_bomb_is_refused_from_header_quickly(tmp_path: Path) -> None:
    bomb = _patch_png_size(_png_bytes(Image.new("L", (16, 16))), 20_000, 20_000)
    path = tmp_path / "bomb.png"
    path.write_bytes(bomb)
    saved_limit = Image.MAX_IMAGE_PIXELS
    start = time.perf_counter()
    with pytest.raises(InvalidImageError) as info:
        load_image(path)
    assert time.perf_counter() - start < 1.0
    message = str(info.value)
    assert "bomb.png" in message
    assert "20000x20000" in message
    assert f"{DEFAULT_MAX_PIXELS:,}" in message
    assert "Downscale" in message
    assert "ARPO_MAX_IMAGE_PIXELS" in message
    assert saved_limit == Image.MAX_IMAGE_PIXELS


def test_bomb_beyond_pillows_own_limit_gets_our_message() -> None:
    # 100000 x 100000 is past Pillow's hard limit, which would raise its own error on open.
    bomb = _patch_png_size(_png_bytes(Image.new("1", (16, 16))), 100_000, 100_000)
    with pytest.raises(InvalidImageError, match=r"100000x100000 .*ARPO_MAX_IMAGE_PIXELS"):
        load_image(bomb)
    # Raising our limit past Pillow's lets decoding start (this fake then proves truncated).
    with pytest.raises(InvalidImageError, match="truncated or corrupt"):
        load_image(bomb, max_pixels=10**12)


def test_max_pixels_is_honoured() -> None:
    data = _png_bytes(_noise((100, 100)))
    with pytest.raises(InvalidImageError, match=r"100x100 = 10,000 pixels.*limit of 5,000"):
        load_image(data, max_pixels=5_000)
    assert load_image(data, max_pixels=10_000).size == (100, 100)


def test_our_limit_governs_not_pillows_global(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)
    image = load_image(_png_bytes(_noise((64, 64))))
    assert image.size == (64, 64)
    assert Image.MAX_IMAGE_PIXELS == 100


@pytest.mark.parametrize("size", [(1, 1), (15, 200), (200, 15)])
def test_too_small_is_refused_with_the_minimum(tmp_path: Path, size: tuple[int, int]) -> None:
    path = _save(Image.new("RGB", size), tmp_path / "tiny.png")
    with pytest.raises(InvalidImageError) as info:
        load_image(path)
    message = str(info.value)
    assert "tiny.png" in message
    assert f"{size[0]}x{size[1]}" in message
    assert f"at least {MIN_SIDE} px" in message
    assert "Pass a larger image" in message


def test_minimum_side_is_accepted() -> None:
    assert load_image(Image.new("RGB", (MIN_SIDE, MIN_SIDE))).size == (MIN_SIDE, MIN_SIDE)


# --------------------------------------------------------------------------- colour modes


def test_rgb_png_round_trips_exactly(tmp_path: Path) -> None:
    original = _noise()
    image = load_image(_save(original, tmp_path / "noise.png"))
    assert image.mode == "RGB"
    assert np.array_equal(_pixels(image), _pixels(original))


def test_palette_with_transparency_becomes_white(tmp_path: Path) -> None:
    image = Image.new("P", (32, 32), 0)
    image.putpalette([0, 0, 0, 255, 0, 0] + [0, 0, 0] * 254)
    image.paste(1, (0, 0, 16, 32))
    loaded = load_image(_save(image, tmp_path / "pal.png", transparency=0))
    assert loaded.mode == "RGB"
    assert loaded.getpixel((4, 4)) == (255, 0, 0)
    assert loaded.getpixel((24, 4)) == (255, 255, 255)


def test_palette_without_transparency(tmp_path: Path) -> None:
    image = _noise((32, 32)).convert("P", palette=Image.Palette.ADAPTIVE)
    loaded = load_image(_save(image, tmp_path / "pal.png"))
    assert loaded.mode == "RGB"
    assert np.array_equal(_pixels(loaded), _pixels(image.convert("RGB")))


def test_cmyk_jpeg_converts_to_rgb(tmp_path: Path) -> None:
    image = Image.new("CMYK", (32, 32), (0, 255, 255, 0))
    loaded = load_image(_save(image, tmp_path / "cmyk.jpg", quality=95))
    assert loaded.mode == "RGB"
    red, green, blue = loaded.getpixel((16, 16))
    assert red > 240 and green < 15 and blue < 15


def test_rgba_transparent_pixels_become_white(tmp_path: Path) -> None:
    image = Image.new("RGBA", (32, 32), (255, 0, 0, 255))
    image.paste((0, 0, 255, 0), (16, 0, 32, 16))
    image.paste((0, 0, 0, 128), (16, 16, 32, 32))
    loaded = load_image(_save(image, tmp_path / "rgba.png"))
    assert loaded.mode == "RGB"
    assert loaded.getpixel((4, 4)) == (255, 0, 0)
    assert loaded.getpixel((24, 4)) == (255, 255, 255)
    assert all(abs(channel - 127) <= 1 for channel in loaded.getpixel((24, 24)))


def test_la_transparent_pixels_become_white(tmp_path: Path) -> None:
    image = Image.new("LA", (32, 32), (0, 255))
    image.paste((0, 0), (16, 0, 32, 32))
    loaded = load_image(_save(image, tmp_path / "la.png"))
    assert loaded.getpixel((4, 4)) == (0, 0, 0)
    assert loaded.getpixel((24, 4)) == (255, 255, 255)


def test_pa_image_is_flattened() -> None:
    image = Image.new("PA", (32, 32))
    image.putpalette([0, 255, 0] * 256)
    loaded = load_image(image)
    assert loaded.mode == "RGB"
    assert loaded.getpixel((4, 4)) == (255, 255, 255)


def test_one_bit_image(tmp_path: Path) -> None:
    image = Image.new("1", (32, 32), 0)
    image.paste(1, (0, 0, 16, 32))
    loaded = load_image(_save(image, tmp_path / "bits.png"))
    assert loaded.mode == "RGB"
    assert loaded.getpixel((4, 4)) == (255, 255, 255)
    assert loaded.getpixel((24, 4)) == (0, 0, 0)


def test_greyscale_image(tmp_path: Path) -> None:
    image = Image.new("L", (32, 32), 77)
    loaded = load_image(_save(image, tmp_path / "grey.png"))
    assert loaded.mode == "RGB"
    assert loaded.getpixel((0, 0)) == (77, 77, 77)


def test_16_bit_png_gradient_is_stretched_to_full_range(tmp_path: Path) -> None:
    row = np.linspace(1000, 5000, 64).astype(np.uint16)
    image = Image.fromarray(np.tile(row, (32, 1)))
    assert image.mode == "I;16"
    loaded = load_image(_save(image, tmp_path / "deep.png"))
    assert loaded.mode == "RGB"
    values = _pixels(loaded)[0, :, 0]
    assert values[0] == 0
    assert values[-1] == 255
    assert np.all(np.diff(values) >= 0)
    assert len(set(values.tolist())) > 32  # a gradient, not clipped to a few levels


@pytest.mark.parametrize("dtype", [">u2", "<u2", "<i4", "<f4"])
def test_high_depth_modes_are_stretched(dtype: str) -> None:
    values = np.tile(np.linspace(-3, 40_000, 50), (20, 1))
    if dtype.endswith("u2"):
        values = np.abs(values)
    image = Image.fromarray(values.astype(dtype))
    assert image.mode in ("I;16B", "I;16", "I", "F")
    loaded = load_image(image)
    pixels = _pixels(loaded)[:, :, 0]
    assert pixels.min() == 0
    assert pixels.max() == 255


def test_float_image_with_nan_and_flat_16_bit() -> None:
    values = np.tile(np.linspace(0.0, 1.0, 32, dtype=np.float32), (32, 1))
    values[0, 0] = np.nan
    assert _pixels(load_image(Image.fromarray(values)))[5].max() == 255
    flat = Image.fromarray(np.full((32, 32), 65535, dtype=np.uint16))
    assert load_image(flat).getpixel((0, 0)) == (255, 255, 255)


# --------------------------------------------------------------------------- orientation, frames


def test_exif_orientation_is_applied(tmp_path: Path) -> None:
    image = Image.new("RGB", (40, 20), (255, 0, 0))
    image.paste((0, 0, 255), (20, 0, 40, 20))
    exif = Image.Exif()
    exif[0x0112] = 6  # stored rotated: display needs a 90 degree clockwise turn
    loaded = load_image(_save(image, tmp_path / "phone.jpg", exif=exif, quality=95))
    assert loaded.size == (20, 40)
    top, bottom = loaded.getpixel((10, 5)), loaded.getpixel((10, 35))
    assert top[0] > 200 and top[2] < 60
    assert bottom[2] > 200 and bottom[0] < 60


@pytest.mark.parametrize("suffix", ["gif", "webp"])
def test_animated_image_gives_first_frame(tmp_path: Path, suffix: str) -> None:
    frames = [Image.new("RGB", (32, 32), colour) for colour in [(255, 0, 0), (0, 255, 0)]]
    path = tmp_path / f"anim.{suffix}"
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=100, lossless=True)
    with Image.open(path) as check:
        assert check.n_frames == 2
    loaded = load_image(path)
    assert loaded.mode == "RGB"
    red, green, _ = loaded.getpixel((16, 16))
    assert red > 240 and green < 15


def test_pil_input_is_not_modified() -> None:
    original = Image.new("RGBA", (32, 32), (0, 0, 0, 0))
    loaded = load_image(original)
    assert loaded is not original
    assert original.mode == "RGBA"
    assert loaded.getpixel((0, 0)) == (255, 255, 255)


def test_unsupported_source_type() -> None:
    with pytest.raises(InvalidImageError, match=r"given as int.*pass a file path"):
        load_image(123)  # type: ignore[arg-type]


# --------------------------------------------------------------------------- bytes and base64


def test_raw_bytes_input() -> None:
    original = _noise()
    data = _png_bytes(original)
    for source in (data, bytearray(data), memoryview(data)):
        assert np.array_equal(_pixels(load_image(source)), _pixels(original))


def test_empty_bytes_are_refused() -> None:
    with pytest.raises(InvalidImageError, match=r"given as bytes \(0 bytes\).*empty.*Pass"):
        load_image(b"")


def test_non_image_bytes_are_refused() -> None:
    with pytest.raises(InvalidImageError, match=r"given as bytes \(5 bytes\).*not a supported"):
        load_image(b"hello")


def test_decode_base64_raw_with_whitespace_and_no_padding() -> None:
    original = _noise((20, 17))
    text = base64.b64encode(_png_bytes(original)).decode().rstrip("=")
    wrapped = "\n".join(text[i : i + 76] for i in range(0, len(text), 76))
    loaded = decode_base64_image(f"  {wrapped}\n")
    assert np.array_equal(_pixels(loaded), _pixels(original))


def test_decode_base64_urlsafe_alphabet() -> None:
    original = _noise((40, 40), seed=3)
    text = base64.urlsafe_b64encode(_png_bytes(original)).decode()
    assert np.array_equal(_pixels(decode_base64_image(text)), _pixels(original))


@pytest.mark.parametrize("text", ["!!!not base64!!!", "abcde", "data:image/png;base64,a$b"])
def test_bad_base64_is_refused(text: str) -> None:
    with pytest.raises(InvalidImageError) as info:
        decode_base64_image(text)
    message = str(info.value)
    assert "is not valid base64" in message
    assert "Pass the base64 of a PNG" in message


def test_non_ascii_base64_is_refused() -> None:
    with pytest.raises(InvalidImageError, match=r"not valid base64.*non-ASCII"):
        decode_base64_image("iVBORw0KGgo€€€")


def test_base64_of_non_image_is_refused() -> None:
    text = base64.b64encode(b"just some text").decode()
    with pytest.raises(InvalidImageError, match=r"given as base64 \(20 chars\).*not a supported"):
        decode_base64_image(text)


@pytest.mark.parametrize(
    "url", ["data:text/plain;base64,aGk=", "data:image/png,rawdata", "http://x/y.png", ""]
)
def test_decode_data_url_rejects_non_image_urls(url: str) -> None:
    with pytest.raises(InvalidImageError) as info:
        decode_data_url(url)
    message = str(info.value)
    assert "not an image data URL" in message
    assert "data:image/<type>;base64,<data>" in message


def test_decode_data_url_accepts_parameters_and_case() -> None:
    assert decode_data_url("DATA:image/PNG;name=x.png;base64,aGk=") == b"hi"


def test_data_url_round_trip_png() -> None:
    original = _noise()
    url = image_to_data_url(original)
    assert url.startswith("data:image/png;base64,")
    for loaded in (load_image(url), decode_base64_image(url)):
        assert np.array_equal(_pixels(loaded), _pixels(original))


@pytest.mark.parametrize(("fmt", "mime"), [("JPEG", "image/jpeg"), ("WEBP", "image/webp")])
def test_data_url_lossy_formats(fmt: str, mime: str) -> None:
    original = Image.new("RGBA", (64, 32), (10, 200, 30, 255))
    url = image_to_data_url(original, fmt=fmt, quality=95)  # type: ignore[arg-type]
    assert url.startswith(f"data:{mime};base64,")
    loaded = load_image(url)
    assert loaded.size == (64, 32)
    assert np.abs(_pixels(loaded) - np.array([10, 200, 30])).max() <= 8


def test_data_url_max_side_downscales_keeping_aspect() -> None:
    url = image_to_data_url(_noise((200, 100)), max_side=50)
    assert load_image(url).size == (50, 25)


def test_data_url_rejects_bad_options() -> None:
    with pytest.raises(InvalidOptionError, match="GIF"):
        image_to_data_url(_noise(), fmt="GIF")  # type: ignore[arg-type]
    with pytest.raises(InvalidOptionError, match="quality"):
        image_to_data_url(_noise(), fmt="JPEG", quality=0)


def test_data_url_is_refused_when_too_small_after_decode() -> None:
    url = image_to_data_url(Image.new("RGB", (4, 4)))
    with pytest.raises(InvalidImageError, match=r"data URL \(image/png.*at least 16 px"):
        load_image(url)


# --------------------------------------------------------------------------- encoding


def test_encode_png_is_deterministic_and_strips_metadata() -> None:
    first = _noise(seed=7)
    second = Image.fromarray(np.asarray(first).copy())
    second.info.update({"dpi": (300, 300), "comment": "hello", "exif": b"Exif\x00\x00junk"})
    data = encode_png(first)
    assert data == encode_png(first)
    assert data == encode_png(second)
    assert b"tEXt" not in data and b"eXIf" not in data and b"pHYs" not in data
    assert np.array_equal(_pixels(load_image(data)), _pixels(first))


def test_encode_png_converts_modes_png_cannot_hold() -> None:
    data = encode_png(Image.new("CMYK", (16, 16), (0, 0, 0, 0)))
    assert Image.open(io.BytesIO(data)).mode == "RGB"


# --------------------------------------------------------------------------- thumbnail


def test_thumbnail_keeps_aspect_and_never_upscales() -> None:
    image = _noise((300, 120))
    small = thumbnail(image, 100)
    assert small.size == (100, 40)
    same = thumbnail(image, 1000)
    assert same.size == (300, 120)
    assert same is not image
    assert thumbnail(_noise((120, 300)), 30).size == (12, 30)
    assert image.size == (300, 120)


def test_thumbnail_rejects_non_positive_side() -> None:
    with pytest.raises(InvalidOptionError, match="max_side must be at least 1"):
        thumbnail(_noise(), 0)
