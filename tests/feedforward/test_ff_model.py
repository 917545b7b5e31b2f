"""A stylizer model's files and its use: bad folders in one line, batches equal single pictures,
tiles that meet the whole picture, files with their parameters."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import torch
from _helpers import write_image
from torch import Tensor

import styleforge
from styleforge.errors import InputFileError, InvalidParameter, ResourceError
from styleforge.feedforward import model as model_module
from styleforge.feedforward.model import MIN_TILE, inference_bytes, load_stylizer, save_stylizer
from styleforge.images import load_image, read_metadata, resize_long_side
from styleforge.nets.transformer import TransformerNet


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    net = TransformerNet(4, 1, seed=2)
    with torch.no_grad():  # contrast in the normalisations, so that their statistics matter
        for norm in net.norms():
            norm.weight.uniform_(0.5, 1.5, generator=torch.Generator().manual_seed(1))
    save_stylizer(tmp_path / "model", net, {"styles": [{"style": "a.png"}]})
    return tmp_path / "model"


def _error(path: Path) -> str:
    with pytest.raises(InputFileError) as caught:
        load_stylizer(path)
    assert "\n" not in str(caught.value)
    return str(caught.value)


def test_bad_model_folders_are_one_line_each(folder: Path, tmp_path: Path) -> None:
    assert _error(tmp_path / "none") == f"--model: {str(tmp_path / 'none')!r} does not exist"
    file = write_image(tmp_path / "x.png")
    assert "is not a folder; expected the -o folder of styleforge train-stylizer" in _error(file)
    (tmp_path / "empty").mkdir()
    assert "has no model.json; expected the -o folder of styleforge train-stylizer" in _error(
        tmp_path / "empty"
    )
    attrs = tmp_path / "attrs"
    attrs.mkdir()
    (attrs / "model.json").write_text(json.dumps({"format": "styleforge.attributes/1"}))
    assert "holds an attribute network (train-attrs), not a stylizer" in _error(attrs)
    (attrs / "model.json").write_text("{not json")
    assert "is not readable JSON" in _error(attrs)
    meta = json.loads((folder / "model.json").read_text())
    (folder / "model.json").write_text(json.dumps({**meta, "network": {"width": 8, "blocks": 1}}))
    assert "does not hold the network model.json describes" in _error(folder)
    (folder / "model.json").write_text(json.dumps(meta))
    (folder / "model.safetensors").write_bytes(b"\x00" * 10)
    assert "model.safetensors' cannot be read" in _error(folder)


def test_the_api_loads_a_model_and_stylises_tensors_in_batches(folder: Path) -> None:
    model = styleforge.load_stylizer(folder)
    x = torch.rand((3, 3, 24, 30), generator=torch.Generator().manual_seed(0))
    batch = model(x)
    assert batch.shape == x.shape and not batch.requires_grad
    for i in range(3):
        torch.testing.assert_close(model(x[i]), batch[i], rtol=1e-5, atol=1e-6)


class _Pointwise(torch.nn.Module):
    """A stand-in network whose output at a pixel depends on that pixel and the normalisation
    statistics alone: tiling it must give the whole picture exactly."""

    width = 4

    def __init__(self) -> None:
        super().__init__()
        self.fixed: list[Tensor] | None = None

    def forward(self, x: Tensor) -> Tensor:
        mean = self.fixed[0] if self.fixed is not None else x.mean((2, 3), keepdim=True)
        return (x - mean + 0.5).clamp(0, 1)

    def statistics(self, image: Tensor) -> list[Tensor]:
        return [image.mean((2, 3), keepdim=True)]

    @contextmanager
    def fixed_statistics(self, stats: list[Tensor]) -> Iterator[None]:
        self.fixed = stats
        yield
        self.fixed = None


def test_tiles_are_blended_into_the_whole_picture_with_its_statistics(folder: Path) -> None:
    model = load_stylizer(folder)
    model.net = _Pointwise()  # type: ignore[assignment]
    picture = torch.rand((3, 64, 48), generator=torch.Generator().manual_seed(3))
    stats = _Pointwise().statistics(resize_long_side(picture, 24)[None])
    with model.net.fixed_statistics(stats):
        expected = model.net(picture[None])[0]
    tiled = model._tiled(picture, 24)  # 3 x 2 tiles overlapping by 6 px, a 24 px copy's statistics
    torch.testing.assert_close(tiled, expected, rtol=1e-6, atol=1e-6)


def test_one_tile_is_the_whole_picture(folder: Path) -> None:
    model = load_stylizer(folder)
    picture = torch.rand((3, 40, 64), generator=torch.Generator().manual_seed(3))
    torch.testing.assert_close(model._tiled(picture, 64), model(picture), rtol=1e-4, atol=1e-4)


def test_the_tile_side_follows_the_memory_available(folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    model = load_stylizer(folder)
    assert model.tile_side((512, 512), "off") is None and model.tile_side((512, 512), "1000") is None
    assert model.tile_side((512, 700), "256") == 256
    with pytest.raises(
        InvalidParameter, match="--tile: '64' is not valid; expected auto, off or a tile side"
    ):
        model.tile_side((512, 512), "64")
    room = 2 * inference_bytes(4, 300, 300)
    monkeypatch.setattr(model_module, "available_memory", lambda device: room)
    assert model.tile_side((256, 256)) is None
    assert 290 <= model.tile_side((1000, 800)) <= 300
    monkeypatch.setattr(model_module, "available_memory", lambda device: inference_bytes(4, MIN_TILE, 100))
    with pytest.raises(ResourceError, match="even a 128 px tile needs about"):
        model.tile_side((1000, 800))


def test_files_keep_their_size_or_take_one_and_carry_their_parameters(folder: Path, tmp_path: Path) -> None:
    model = load_stylizer(folder)
    content = write_image(tmp_path / "c.png", (50, 30), seed=4, mode="RGBA")
    result = model.stylize_image(content)
    assert result.image.shape == (3, 30, 50) and result.alpha is not None and result.tile is None
    smaller = model.stylize_image(content, size=20, preserve_colors=True)
    assert smaller.image.shape == (3, 12, 20) and smaller.alpha.shape[-2:] == (12, 20)
    path = smaller.save(tmp_path / "out.png")
    meta = read_metadata(path)
    assert meta["command"] == "transfer --model" and meta["size"] == 20 and meta["preserve_colors"] is True
    assert meta["model"]["path"] == str(folder) and meta["content"] == str(content)


def _trained_at(folder: Path, crop: int) -> Path:
    """``folder``'s model.json as train-stylizer writes it: with the training crop."""
    meta = json.loads((folder / "model.json").read_text())
    (folder / "model.json").write_text(json.dumps({**meta, "training": {"config": {"size": crop}}}))
    return folder


def test_the_model_size_runs_larger_pictures_smaller_and_resizes_them_back(
    folder: Path, tmp_path: Path
) -> None:
    model = load_stylizer(_trained_at(folder, 16))  # auto: 2.5 x 16 = 40 px
    assert model.working_side((30, 64)) == 40 and model.working_side((30, 40)) is None
    assert model.working_side((30, 64), "off") is None and model.working_side((30, 64), 48) == 48
    path = write_image(tmp_path / "c.png", (64, 30), seed=5)
    auto = model.stylize_image(path)
    assert tuple(auto.image.shape) == (3, 30, 64)
    assert auto.metadata["network_input"] == [19, 40] and auto.metadata["model_size"] == "auto"
    # the network's result at 40 px, resized back: not the full-size pass
    small = model(resize_long_side(load_image(path).rgb, 40))
    back = torch.nn.functional.interpolate(small[None], size=(30, 64), mode="bicubic", align_corners=False)
    assert torch.allclose(auto.image, back[0].clamp(0, 1), atol=1e-6)
    whole = model.stylize_image(path, model_size="off")
    assert whole.metadata["network_input"] == [30, 64] and (whole.image - auto.image).abs().mean() > 0.01
    # in a batch, the same pixels as one by one
    many = list(model.stylize_files([path, path], model_size=48))
    torch.testing.assert_close(
        many[1].image, model.stylize_image(path, model_size=48).image, rtol=0, atol=1e-5
    )
    for bad in ("8", "big", -1):
        with pytest.raises(
            InvalidParameter, match=r"^--model-size: .* expected auto, off or a long side in px >= 32$"
        ):
            model.working_side((30, 64), bad)
    # a model without a recorded crop runs every picture at its own size
    meta = json.loads((folder / "model.json").read_text())
    (folder / "model.json").write_text(json.dumps({k: v for k, v in meta.items() if k != "training"}))
    assert load_stylizer(folder).working_side((300, 640)) is None


def test_options_are_checked_before_any_picture_and_recorded_in_one_form(
    folder: Path, tmp_path: Path
) -> None:
    from styleforge.feedforward.model import model_size_word
    from styleforge.video.frames import open_frames
    from styleforge.video.model import stylize_video_with_model

    model = load_stylizer(folder)
    model.check_options(tile="auto", model_size="auto")
    model.check_options(tile=256, model_size=" 512")
    with pytest.raises(InvalidParameter, match=r"^--tile: '50' is not valid"):
        model.check_options(tile="50")
    with pytest.raises(InvalidParameter, match=r"^--model-size: 'big' is not valid"):
        model.check_options(model_size="big")
    frames = tmp_path / "frames"
    for i in range(2):
        write_image(frames / f"f{i}.png", (40, 30), seed=i)
    with pytest.raises(InvalidParameter, match=r"^--tile"):
        stylize_video_with_model(open_frames(frames), model, folder=tmp_path / "out", tile="50")
    assert not (tmp_path / "out").exists()
    assert [model_size_word(v) for v in ("AUTO", " 512", 512, None, "Off")] == [
        "auto",
        "512",
        "512",
        "off",
        "off",
    ]
