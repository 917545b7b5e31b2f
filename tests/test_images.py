"""Tests of styleforge.images: every input format and mode, EXIF orientation, alpha, decompression
bombs, unreadable files, and atomic self-describing outputs."""

from __future__ import annotations

import json
import os
import struct
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image, PngImagePlugin, features

from styleforge.errors import InputFileError, InvalidParameter
from styleforge.images import (
    METADATA_KEY,
    check_output_path,
    load_image,
    output_format,
    read_metadata,
    resize_long_side,
    save_image,
)


def _rgb_array(w: int = 12, h: int = 8, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size=(h, w, 3), dtype=np.uint8)


def _expected(array: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(array.astype(np.float32) / 255.0).permute(2, 0, 1)


def _check_rgb(loaded, h: int, w: int) -> None:
    assert loaded.rgb.shape == (3, h, w)
    assert loaded.rgb.dtype == torch.float32
    assert loaded.rgb.min() >= 0.0 and loaded.rgb.max() <= 1.0
    assert loaded.size == (h, w)


# --- formats -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "ext, options", [(".png", {}), (".bmp", {}), (".tif", {}), (".webp", {"lossless": True})]
)
def test_lossless_formats_round_trip_exactly(tmp_path: Path, ext: str, options: dict) -> None:
    if ext == ".webp" and not features.check("webp"):
        pytest.skip("Pillow built without WebP")
    array = _rgb_array()
    path = tmp_path / f"x{ext}"
    Image.fromarray(array).save(path, **options)
    loaded = load_image(path)
    _check_rgb(loaded, 8, 12)
    assert torch.equal(loaded.rgb, _expected(array))
    assert loaded.alpha is None and loaded.path == path


def test_jpeg(tmp_path: Path) -> None:
    array = np.zeros((16, 24, 3), np.uint8)
    array[..., 0] = 200
    array[..., 2] = 50
    path = tmp_path / "x.jpg"
    Image.fromarray(array).save(path, quality=95)
    loaded = load_image(path)
    _check_rgb(loaded, 16, 24)
    assert torch.allclose(loaded.rgb, _expected(array), atol=4 / 255)


def test_lossy_webp(tmp_path: Path) -> None:
    if not features.check("webp"):
        pytest.skip("Pillow built without WebP")
    array = np.full((16, 16, 3), (10, 120, 240), np.uint8)
    Image.fromarray(array).save(tmp_path / "x.webp", quality=90)
    loaded = load_image(tmp_path / "x.webp")
    _check_rgb(loaded, 16, 16)
    assert torch.allclose(loaded.rgb, _expected(array), atol=8 / 255)


def test_gif_first_frame(tmp_path: Path) -> None:
    red = Image.new("RGB", (10, 6), (255, 0, 0))
    blue = Image.new("RGB", (10, 6), (0, 0, 255))
    path = tmp_path / "anim.gif"
    red.save(path, save_all=True, append_images=[blue], duration=100, loop=0)
    with Image.open(path) as check:
        assert getattr(check, "n_frames", 1) == 2
    loaded = load_image(path)
    _check_rgb(loaded, 6, 10)
    assert torch.allclose(loaded.rgb[:, 0, 0], torch.tensor([1.0, 0.0, 0.0]), atol=2 / 255)
    assert torch.allclose(loaded.rgb, loaded.rgb[:, :1, :1].expand(3, 6, 10))


# --- EXIF orientation ----------------------------------------------------------------------------


@pytest.mark.parametrize("orientation, transposed", [(1, False), (3, False), (6, True), (8, True)])
def test_exif_orientation_is_applied(tmp_path: Path, orientation: int, transposed: bool) -> None:
    # A 48×32 (w×h) picture whose left half is white: after rotation the white half moves.
    array = np.zeros((32, 48, 3), np.uint8)
    array[:, :24] = 255
    image = Image.fromarray(array)
    exif = Image.Exif()
    exif[0x0112] = orientation
    path = tmp_path / "rotated.jpg"
    image.save(path, exif=exif.tobytes(), quality=95)
    loaded = load_image(path)
    if transposed:
        _check_rgb(loaded, 48, 32)
    else:
        _check_rgb(loaded, 32, 48)
    gray = loaded.rgb.mean(0)
    if orientation == 1:
        assert gray[:, :20].mean() > 0.9 and gray[:, 28:].mean() < 0.1
    elif orientation == 3:  # 180°: white on the right
        assert gray[:, 28:].mean() > 0.9 and gray[:, :20].mean() < 0.1
    elif orientation == 6:  # rotate 90° clockwise to display: the left half goes to the top
        assert gray[:20].mean() > 0.9 and gray[28:].mean() < 0.1
    else:  # 8: rotate 90° counter-clockwise: the left half goes to the bottom
        assert gray[28:].mean() > 0.9 and gray[:20].mean() < 0.1


# --- modes ---------------------------------------------------------------------------------------


def test_grayscale_becomes_rgb(tmp_path: Path) -> None:
    data = np.arange(48, dtype=np.uint8).reshape(6, 8) * 5
    Image.fromarray(data, "L").save(tmp_path / "g.png")
    loaded = load_image(tmp_path / "g.png")
    _check_rgb(loaded, 6, 8)
    expected = torch.from_numpy(data.astype(np.float32) / 255)
    for c in range(3):
        assert torch.equal(loaded.rgb[c], expected)


def test_palette_becomes_rgb(tmp_path: Path) -> None:
    image = Image.new("P", (5, 4))
    image.putpalette([255, 0, 0, 0, 255, 0, 0, 0, 255] + [0] * (256 * 3 - 9))
    image.putdata([0, 1, 2, 1, 0] * 4)
    image.save(tmp_path / "p.png")
    with Image.open(tmp_path / "p.png") as check:
        assert check.mode == "P"
    loaded = load_image(tmp_path / "p.png")
    _check_rgb(loaded, 4, 5)
    assert loaded.alpha is None
    assert torch.equal(loaded.rgb[:, 0, 0], torch.tensor([1.0, 0.0, 0.0]))
    assert torch.equal(loaded.rgb[:, 0, 1], torch.tensor([0.0, 1.0, 0.0]))
    assert torch.equal(loaded.rgb[:, 0, 2], torch.tensor([0.0, 0.0, 1.0]))


def test_palette_with_transparency_keeps_alpha(tmp_path: Path) -> None:
    image = Image.new("P", (4, 4))
    image.putpalette([255, 0, 0, 0, 255, 0] + [0] * (256 * 3 - 6))
    image.putdata([0, 1] * 8)
    image.save(tmp_path / "pt.png", transparency=1)
    loaded = load_image(tmp_path / "pt.png")
    _check_rgb(loaded, 4, 4)
    assert loaded.alpha is not None and loaded.alpha.shape == (1, 4, 4)
    assert loaded.alpha[0, 0, 0] == 1.0 and loaded.alpha[0, 0, 1] == 0.0


@pytest.mark.parametrize("ext", [".tif", ".jpg"])
def test_cmyk_becomes_rgb(tmp_path: Path, ext: str) -> None:
    image = Image.new("CMYK", (8, 6), (0, 255, 255, 0))  # pure red in CMYK
    path = tmp_path / f"c{ext}"
    image.save(path)
    with Image.open(path) as check:
        assert check.mode == "CMYK"
    loaded = load_image(path)
    _check_rgb(loaded, 6, 8)
    assert torch.allclose(loaded.rgb[:, 3, 4], torch.tensor([1.0, 0.0, 0.0]), atol=6 / 255)


def test_unsigned_32_bit_tiff_is_not_read_as_negative(tmp_path: Path) -> None:
    # Pillow writes "I" as signed 32-bit; turn the file's SampleFormat into 1 (unsigned) and a sample
    # into 3e9, which Pillow's signed "I" holds as a negative number.
    path = tmp_path / "u32.tif"
    Image.fromarray(np.array([[0, 2**31 - 1], [1000, 5]], np.int32)).save(path)
    data = path.read_bytes()
    signed = struct.pack("<HHIHH", 339, 3, 1, 2, 0)
    assert data.count(signed) == 1 and data.count(struct.pack("<i", 2**31 - 1)) == 1
    data = data.replace(signed, struct.pack("<HHIHH", 339, 3, 1, 1, 0))
    path.write_bytes(data.replace(struct.pack("<i", 2**31 - 1), struct.pack("<I", 3_000_000_000)))
    with Image.open(path) as check:
        assert check.mode == "I" and int(np.asarray(check).min()) < 0
    rgb = load_image(path).rgb.double()
    assert rgb[0].flatten().tolist() == pytest.approx(
        [0.0, 3e9 / (2**32 - 1), 1000 / (2**32 - 1), 5 / (2**32 - 1)], abs=1e-6
    )


@pytest.mark.parametrize("ext", [".png", ".tif"])
def test_16_bit_keeps_its_precision(tmp_path: Path, ext: str) -> None:
    data = np.array([[0x8000, 0x8001, 0], [65535, 200, 0x0100]], dtype=np.uint16)
    path = tmp_path / f"deep{ext}"
    Image.fromarray(data).save(path)
    with Image.open(path) as check:
        assert check.mode.startswith("I")
    loaded = load_image(path)
    _check_rgb(loaded, 2, 3)
    rgb = loaded.rgb.double()
    assert torch.equal(rgb[0], rgb[1]) and torch.equal(rgb[0], rgb[2])
    assert rgb[0, 0, 0].item() == pytest.approx(0x8000 / 65535, abs=1e-6)
    assert rgb[0, 1, 0].item() == pytest.approx(1.0) and rgb[0, 0, 2].item() == 0.0
    # Finer than 8 bits: neighbouring 16-bit values stay distinct.
    assert rgb[0, 0, 1] - rgb[0, 0, 0] == pytest.approx(1 / 65535, rel=1e-3)
    # Dark values are not mistaken for 8-bit data.
    assert rgb[0, 1, 1].item() == pytest.approx(200 / 65535, abs=1e-6)


def test_dark_16_bit_image_is_still_16_bit(tmp_path: Path) -> None:
    # Every value <= 255: the scale must come from the mode, not from the data.
    data = np.array([[10, 200], [255, 0]], dtype=np.uint16)
    Image.fromarray(data).save(tmp_path / "dark.png")
    loaded = load_image(tmp_path / "dark.png")
    assert loaded.rgb.max().item() == pytest.approx(255 / 65535, abs=1e-6)


@pytest.mark.parametrize("level", [1000, 60000], ids=["dark", "bright"])
def test_16_bit_png_loads_its_true_intensity(tmp_path: Path, level: int) -> None:
    # A dark 16-bit PNG stays dark (not stretched to its own maximum) and a bright one stays bright.
    data = np.full((4, 6), level, np.uint16)
    data[0, 0] = level + 7
    Image.fromarray(data).save(tmp_path / "deep.png")
    with Image.open(tmp_path / "deep.png") as check:
        assert check.mode == "I;16"
    rgb = load_image(tmp_path / "deep.png").rgb.double()
    assert rgb[0, 1, 1].item() == pytest.approx(level / 65535, abs=1e-6)
    assert rgb[0, 0, 0].item() == pytest.approx((level + 7) / 65535, abs=1e-6)


def _pgm16(path: Path, data: np.ndarray) -> Path:
    """A binary 16-bit PGM (maxval 65535, big-endian samples), which Pillow opens as mode "I"."""
    height, width = data.shape
    path.write_bytes(b"P5\n%d %d\n65535\n" % (width, height) + data.astype(">u2").tobytes())
    return path


@pytest.mark.parametrize("values", [[10, 200, 255, 0], [1000, 1100, 900, 0]], ids=["below-256", "dark"])
def test_16_bit_mode_i_is_scaled_by_the_full_16_bit_range(tmp_path: Path, values: list[int]) -> None:
    # Mode "I" (a 16-bit PGM here, a 16-bit PNG in older Pillow) whose values all fit in 8 bits is
    # still 16-bit data: 255 means 255/65535, not white.
    path = _pgm16(tmp_path / "dark.pgm", np.array(values, np.uint16).reshape(2, 2))
    with Image.open(path) as check:
        assert check.mode == "I"
    rgb = load_image(path).rgb.double()
    assert rgb[0].flatten().tolist() == pytest.approx([v / 65535 for v in values], abs=1e-6)


def test_16_bit_big_endian_tiff(tmp_path: Path) -> None:
    data = np.array([[1000, 65535], [0, 32768]], np.uint16)
    Image.frombytes("I;16B", (2, 2), data.astype(">u2").tobytes()).save(tmp_path / "be.tif")
    with Image.open(tmp_path / "be.tif") as check:
        assert check.mode == "I;16B"
    rgb = load_image(tmp_path / "be.tif").rgb.double()
    assert rgb[0].flatten().tolist() == pytest.approx((data.flatten() / 65535).tolist(), abs=1e-6)


def _tiff12(path: Path, data: np.ndarray) -> Path:
    """A little-endian greyscale TIFF with BitsPerSample 12 (samples packed MSB first, an even
    width), written by hand: Pillow reads such files but does not write them."""
    height, width = data.shape
    packed = bytearray()
    for row in data.tolist():
        for a, b in zip(row[::2], row[1::2]):
            packed += bytes([a >> 4, ((a & 15) << 4) | (b >> 8), b & 255])
    # (tag, type 3 = SHORT / 4 = LONG, value): size, bits, no compression, BlackIsZero, one strip.
    entries = [
        (256, 3, width),
        (257, 3, height),
        (258, 3, 12),
        (259, 3, 1),
        (262, 3, 1),
        (273, 4, 8 + 2 + 12 * 9 + 4),
        (277, 3, 1),
        (278, 3, height),
        (279, 4, len(packed)),
    ]
    ifd = struct.pack("<H", len(entries))
    for tag, kind, value in entries:
        ifd += struct.pack("<HHI", tag, kind, 1) + struct.pack(
            "<HH" if kind == 3 else "<I", *((value, 0) if kind == 3 else (value,))
        )
    path.write_bytes(b"II*\x00" + struct.pack("<I", 8) + ifd + struct.pack("<I", 0) + bytes(packed))
    return path


def test_12_bit_tiff_is_scaled_by_its_bits_per_sample(tmp_path: Path) -> None:
    # A 12-bit TIFF opens as "I;16" holding 0..4095: its white is 4095 (BitsPerSample), not 65535.
    data = np.array([[0, 4095], [1000, 2048]], np.uint16)
    path = _tiff12(tmp_path / "twelve.tif", data)
    with Image.open(path) as check:
        assert check.mode == "I;16" and np.array_equal(np.asarray(check), data)
    rgb = load_image(path).rgb.double()
    assert rgb[0].flatten().tolist() == pytest.approx((data.flatten() / 4095).tolist(), abs=1e-6)


def test_32_bit_tiff_is_scaled_by_the_32_bit_range(tmp_path: Path) -> None:
    # Mode "I" from a 32-bit signed TIFF: values above 65535 are not clipped to white.
    data = np.array([[72_000_000, 2**31 - 1], [0, -5]], np.int32)
    Image.fromarray(data).save(tmp_path / "deep32.tif")
    with Image.open(tmp_path / "deep32.tif") as check:
        assert check.mode == "I"
    rgb = load_image(tmp_path / "deep32.tif").rgb.double()
    assert rgb[0].flatten().tolist() == pytest.approx([72_000_000 / (2**31 - 1), 1.0, 0.0, 0.0], abs=1e-6)


def test_rgba_alpha_is_kept_and_put_back(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    array = rng.integers(0, 256, size=(8, 12, 4), dtype=np.uint8)
    array[0, 0, 3] = 0
    Image.fromarray(array, "RGBA").save(tmp_path / "a.png")
    loaded = load_image(tmp_path / "a.png")
    _check_rgb(loaded, 8, 12)
    assert loaded.alpha is not None and loaded.alpha.shape == (1, 8, 12)
    assert torch.equal(loaded.alpha[0], torch.from_numpy(array[..., 3].astype(np.float32) / 255))
    assert torch.equal(loaded.rgb, _expected(array[..., :3]))
    out = save_image(tmp_path / "out.png", loaded.rgb, alpha=loaded.alpha)
    with Image.open(out) as saved:
        assert saved.mode == "RGBA"
        assert np.array_equal(np.asarray(saved), array)


def test_alpha_is_resized_to_the_image(tmp_path: Path) -> None:
    alpha = torch.zeros(1, 4, 6)
    alpha[..., :3] = 1.0
    out = save_image(tmp_path / "o.png", torch.rand(3, 8, 12), alpha=alpha)
    with Image.open(out) as saved:
        assert saved.mode == "RGBA" and saved.size == (12, 8)
        a = np.asarray(saved)[..., 3]
        assert a[:, 0].min() == 255 and a[:, -1].max() == 0


def test_opaque_alpha_is_dropped(tmp_path: Path) -> None:
    array = np.dstack([_rgb_array(), np.full((8, 12), 255, np.uint8)])
    Image.fromarray(array, "RGBA").save(tmp_path / "opaque.png")
    assert load_image(tmp_path / "opaque.png").alpha is None


def test_alpha_is_dropped_for_jpeg(tmp_path: Path) -> None:
    out = save_image(tmp_path / "o.jpg", torch.rand(3, 8, 8), alpha=torch.zeros(1, 8, 8))
    with Image.open(out) as saved:
        assert saved.format == "JPEG" and saved.mode == "RGB"


# --- refused inputs ------------------------------------------------------------------------------


@pytest.mark.parametrize("limit", [100, 1000], ids=["error", "warning"])
def test_decompression_bomb_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, limit: int) -> None:
    Image.fromarray(_rgb_array(48, 32)).save(tmp_path / "big.png")  # 1536 px
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", limit)
    with pytest.raises(InputFileError) as info:
        load_image(tmp_path / "big.png", param="CONTENT")
    message = str(info.value)
    assert message.startswith("CONTENT:") and "decompression bomb" in message and str(limit) in message
    assert "\n" not in message


def _bad_files(tmp_path: Path) -> dict[str, Path]:
    good = tmp_path / "good.png"
    Image.fromarray(_rgb_array(32, 32)).save(good)
    data = good.read_bytes()
    files = {
        "empty": tmp_path / "empty.png",
        "truncated": tmp_path / "truncated.png",
        "text": tmp_path / "notes.png",
        "folder": tmp_path / "folder.png",
        "missing": tmp_path / "missing.png",
    }
    files["empty"].write_bytes(b"")
    files["truncated"].write_bytes(data[: len(data) // 2])
    files["text"].write_text("this is not an image\n")
    files["folder"].mkdir()
    return files


@pytest.mark.parametrize(
    "kind, problem",
    [
        ("empty", "not an image"),
        ("truncated", "could not be decoded"),
        ("text", "not an image"),
        ("folder", "folder"),
        ("missing", "does not exist"),
    ],
)
def test_unreadable_inputs(tmp_path: Path, kind: str, problem: str) -> None:
    path = _bad_files(tmp_path)[kind]
    with pytest.raises(InputFileError) as info:
        load_image(path, param="--style")
    message = str(info.value)
    assert message.startswith("--style:") and path.name in message and problem in message
    assert "\n" not in message
    assert info.value.exit_code == 2


# --- saving --------------------------------------------------------------------------------------


def test_save_is_atomic_and_leaves_no_temp_files(tmp_path: Path) -> None:
    out = tmp_path / "out" / "deep" / "x.png"
    result = save_image(out, torch.rand(1, 3, 8, 12))
    assert result == out and out.is_file()
    assert os.listdir(out.parent) == ["x.png"]
    with Image.open(out) as saved:
        assert saved.format == "PNG" and saved.size == (12, 8) and saved.mode == "RGB"


def test_failed_save_leaves_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(self, *args, **kwargs):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(Image.Image, "save", broken)
    folder = tmp_path / "outdir"
    with pytest.raises(RuntimeError, match="disk on fire"):
        save_image(folder / "x.png", torch.rand(3, 8, 8))
    assert not (folder / "x.png").exists()
    assert os.listdir(folder) == []


def test_failed_save_keeps_the_previous_output(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "x.png"
    save_image(out, torch.zeros(3, 8, 8))
    before = out.read_bytes()

    def broken(self, fp, *args, **kwargs):
        fp.write(b"partial")
        raise KeyboardInterrupt

    monkeypatch.setattr(Image.Image, "save", broken)
    with pytest.raises(KeyboardInterrupt):
        save_image(out, torch.ones(3, 8, 8))
    assert out.read_bytes() == before
    assert os.listdir(tmp_path) == ["x.png"]


def test_save_overwrites(tmp_path: Path) -> None:
    out = tmp_path / "x.png"
    out.write_text("old content")
    save_image(out, torch.ones(3, 4, 4))
    assert load_image(out).rgb.min() == 1.0
    save_image(out, torch.zeros(3, 4, 4))
    assert load_image(out).rgb.max() == 0.0
    assert os.listdir(tmp_path) == ["x.png"]


def test_save_quantises_and_clamps(tmp_path: Path) -> None:
    rgb = torch.tensor([[[-0.5, 0.5, 2.0]]]).expand(3, 1, 3)
    save_image(tmp_path / "x.png", rgb)
    with Image.open(tmp_path / "x.png") as saved:
        assert np.asarray(saved)[0, :, 0].tolist() == [0, 128, 255]


def test_metadata_round_trip(tmp_path: Path) -> None:
    metadata = {
        "config": {"size": 32, "optimizer": ["adam"], "lr": None},
        "losses": {"total": 1.5},
        "path": Path("a.png"),
    }
    out = save_image(tmp_path / "m.png", torch.rand(3, 4, 4), metadata=metadata)
    assert read_metadata(out) == {
        "config": {"size": 32, "optimizer": ["adam"], "lr": None},
        "losses": {"total": 1.5},
        "path": "a.png",
    }
    with Image.open(out) as saved:
        assert json.loads(saved.text[METADATA_KEY])["losses"]["total"] == 1.5


def test_read_metadata_absent(tmp_path: Path) -> None:
    plain = save_image(tmp_path / "plain.png", torch.rand(3, 4, 4))
    assert read_metadata(plain) is None
    jpeg = save_image(tmp_path / "m.jpg", torch.rand(3, 4, 4), metadata={"a": 1})
    assert read_metadata(jpeg) is None
    (tmp_path / "t.txt").write_text("x")
    assert read_metadata(tmp_path / "t.txt") is None


def _png_with_text(path: Path, text: str, *, chunk: str = "itxt") -> Path:
    """A tiny PNG whose ``styleforge`` text chunk (iTXt, tEXt or compressed zTXt) holds ``text``."""
    info = PngImagePlugin.PngInfo()
    if chunk == "itxt":
        info.add_itxt(METADATA_KEY, text)
    else:
        info.add_text(METADATA_KEY, text, zip=chunk == "ztxt")
    Image.fromarray(_rgb_array(4, 4)).save(path, pnginfo=info)
    return path


@pytest.mark.parametrize("chunk", ["itxt", "text", "ztxt"])
@pytest.mark.parametrize(
    "text",
    ["{not json", '{"config": {"size": 32}', "", "NaN-ish", "[" * 200_000],
    ids=["garbage", "truncated", "empty", "word", "nested-too-deep"],
)
def test_metadata_that_is_not_json_is_a_one_line_input_file_error(
    tmp_path: Path, text: str, chunk: str
) -> None:
    path = _png_with_text(tmp_path / "bad.png", text, chunk=chunk)
    with pytest.raises(InputFileError) as info:
        read_metadata(path, param="--from-image")
    message = str(info.value)
    assert message.startswith("--from-image: ") and str(path) in message and "\n" not in message
    assert "not valid JSON" in message and "styleforge" in message
    assert info.value.exit_code == 2 and info.value.param == "--from-image"
    with pytest.raises(InputFileError, match="^image: "):  # the default names an image
        read_metadata(path)


@pytest.mark.parametrize(
    "text, kind",
    [
        ("[1, 2]", "a list"),
        ('"config"', "a string"),
        ("5", "a number"),
        ("null", "null"),
        ("true", "a boolean"),
    ],
)
def test_metadata_that_is_json_but_not_an_object_is_refused(tmp_path: Path, text: str, kind: str) -> None:
    path = _png_with_text(tmp_path / "odd.png", text)
    with pytest.raises(InputFileError) as info:
        read_metadata(path, param="--from-image")
    message = str(info.value)
    assert message.startswith("--from-image: ") and str(path) in message and "\n" not in message
    assert f"is {kind}, not a JSON object" in message


def test_metadata_too_large_to_decompress_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Pillow refuses a compressed text chunk that inflates past MAX_TEXT_CHUNK with a ValueError.
    path = _png_with_text(tmp_path / "big.png", json.dumps({"pad": "x" * 5000}), chunk="ztxt")
    monkeypatch.setattr(PngImagePlugin, "MAX_TEXT_CHUNK", 1000)
    with pytest.raises(InputFileError) as info:
        read_metadata(path, param="--from-image")
    assert (
        str(path) in str(info.value)
        and "could not be read" in str(info.value)
        and "\n" not in str(info.value)
    )


def test_metadata_in_any_text_chunk_round_trips(tmp_path: Path) -> None:
    for chunk in ("itxt", "text", "ztxt"):
        path = _png_with_text(tmp_path / f"{chunk}.png", '{"a": [1, 2.5, null]}', chunk=chunk)
        assert read_metadata(path, param="--from-image") == {"a": [1, 2.5, None]}


@pytest.mark.parametrize(
    "name, fmt",
    [
        ("x.png", "PNG"),
        ("x.PNG", "PNG"),
        ("x.jpg", "JPEG"),
        ("x.jpeg", "JPEG"),
        ("x.webp", "WEBP"),
        ("x.bmp", "BMP"),
        ("x.tif", "TIFF"),
        ("x.tiff", "TIFF"),
    ],
)
def test_output_format_follows_the_extension(tmp_path: Path, name: str, fmt: str) -> None:
    if fmt == "WEBP" and not features.check("webp"):
        pytest.skip("Pillow built without WebP")
    assert output_format(name) == fmt
    out = save_image(tmp_path / name, torch.rand(3, 8, 8))
    with Image.open(out) as saved:
        assert saved.format == fmt


@pytest.mark.parametrize("name", ["x.xyz", "x", "x.png.txt"])
def test_unknown_extension(tmp_path: Path, name: str) -> None:
    with pytest.raises(InvalidParameter) as info:
        save_image(tmp_path / name, torch.rand(3, 4, 4), param="-o")
    message = str(info.value)
    assert message.startswith("-o:") and name in message and ".png" in message and ".jpg" in message
    assert os.listdir(tmp_path) == []


def test_check_output_path(tmp_path: Path) -> None:
    assert check_output_path(tmp_path / "new" / "x.png") == tmp_path / "new" / "x.png"
    folder = tmp_path / "folder.png"
    folder.mkdir()
    with pytest.raises(InvalidParameter, match="folder"):
        check_output_path(folder)
    with pytest.raises(InvalidParameter, match="^-o:"):
        check_output_path(tmp_path / "x.abc")
    assert not (tmp_path / "new").exists()  # validation creates nothing


# --- resizing ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "shape, size, expected",
    [
        ((3, 32, 48), 24, (3, 16, 24)),
        ((3, 48, 32), 24, (3, 24, 16)),
        ((3, 30, 30), 64, (3, 64, 64)),
        ((1, 3, 40, 20), 10, (1, 3, 10, 5)),
    ],
)
def test_resize_long_side_keeps_aspect(shape: tuple[int, ...], size: int, expected: tuple[int, ...]) -> None:
    image = torch.rand(*shape, generator=torch.Generator().manual_seed(0))
    out = resize_long_side(image, size)
    assert out.shape == expected
    assert out.min() >= 0.0 and out.max() <= 1.0


def test_resize_to_the_same_size_is_identity() -> None:
    image = torch.rand(3, 20, 30)
    assert torch.equal(resize_long_side(image, 30), image)


def test_resize_keeps_the_mean_colour() -> None:
    image = torch.full((3, 40, 60), 0.25)
    image[1] = 0.75
    out = resize_long_side(image, 15)
    assert torch.allclose(out[0], torch.tensor(0.25), atol=1e-4) and torch.allclose(
        out[1], torch.tensor(0.75), atol=1e-4
    )
