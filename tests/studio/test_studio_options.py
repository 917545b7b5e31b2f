"""The studio's pieces that need no server: options from JSON, the API's field names, blend weights,
stored file names, the address warning, and the events as the page reads them."""

from __future__ import annotations

import pytest
import torch

from styleforge.config import TransferConfig
from styleforge.engine.events import Progress, StageEnded, StageStarted
from styleforge.engine.terms import LossSummary
from styleforge.errors import InputFileError, InvalidParameter, ResourceError
from styleforge.studio.options import api_error, api_field, blend_weights, option_fields, run_config
from styleforge.studio.runs import event_json, planned_iterations, safe_name
from styleforge.studio.server import exposure_warning, url_of


def test_options_become_a_validated_config() -> None:
    config = run_config(
        '{"size": 64, "optimizer": "adam:10, lbfgs", "content_layers": ["relu3_1"], "seed": 3.0}'
    )
    assert config == TransferConfig(
        size=64, optimizer=("adam:10", "lbfgs"), content_layers=("relu3_1",), seed=3
    )
    assert isinstance(config.seed, int)
    assert run_config(None) == run_config("") == run_config({}) == TransferConfig()
    assert run_config({"style_weight": None, "scales": None}) == TransferConfig()
    assert planned_iterations(config) == 10 + 150


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"style_weight": True}, "style_weight: true is not valid; expected a number or null (the default)"),
        ({"content_layers": [1]}, "content_layers: [1] is not valid; expected a list of strings"),
        ({"tile": 512}, "tile: 512 is not valid; expected a string"),
        ({"divergence_factor": 1}, "divergence_factor: 1 is not valid; expected a number > 1"),
        ({"score_with": "runs/x"}, "score_with: 'runs/x' is not valid; expected nothing in the studio"),
        ({"init": "noise.png"}, "init: 'noise.png' is not valid; expected one of: content, noise, style"),
    ],
)
def test_bad_options_name_the_field(options: dict, message: str) -> None:
    with pytest.raises(InvalidParameter) as caught:
        run_config(options)
    assert api_error(caught.value).message.startswith(message)


def test_path_options_are_not_offered() -> None:
    fields = option_fields()
    assert "size" in fields and fields["style_weight"] == "float | None"
    assert not {"style_masks", "style_image_masks", "attrs_model", "score_with", "attrs"} & set(fields)


def test_errors_name_the_apis_fields_and_the_clients_file_names() -> None:
    assert api_field("--content-weight") == "content_weight"
    assert api_field("--style-mask") == "style_masks" and api_field("--attr") == "attrs"
    assert api_field("CONTENT") == "content" and api_field("--style") == "style"
    stored = {"/tmp/studio/run-1/style-2/b.png": ("style", "my b.png")}
    error = api_error(
        InputFileError("--style", "/tmp/studio/run-1/style-2/b.png", "could not be decoded"), stored
    )
    assert (error.field, error.message) == ("style", "style: 'my b.png' could not be decoded")
    error = api_error(
        InvalidParameter("--style-mask", "1=/tmp/studio/run-1/style-2/b.png", "NAME=MASK"), stored
    )
    assert error.field == "style_masks" and "/tmp/studio" not in error.message and "my b.png" in error.message
    error = api_error(ResourceError("--size 4096: needs 30 GiB"))
    assert (
        error.field is None
        and error.status == 400
        and error.to_dict()
        == {
            "error": "--size 4096: needs 30 GiB",
            "field": None,
        }
    )


def test_blend_weights() -> None:
    assert blend_weights(None, 2) == [None, None]
    assert blend_weights("[0.75, null]", 2) == [0.75, None]
    for bad in ("[1]", "[0, 1]", "[true, 1]", '["a", 1]', "{}", "nope"):
        with pytest.raises(InvalidParameter, match="^blend: "):
            blend_weights(bad, 2)


@pytest.mark.parametrize(
    ("name", "stored"),
    [
        ("../../etc/passwd", "passwd"),
        ("..\\..\\boot.ini", "boot.ini"),
        (".hidden.png", "hidden.png"),
        ("my photo (1).jpg", "my_photo_1_.jpg"),
        ("風景.png", "風景.png"),
        ("", "upload"),
        ("..", "upload"),
        ("a" * 200 + ".png", "a" * 76 + ".png"),
    ],
)
def test_stored_names_are_plain_names(name: str, stored: str) -> None:
    assert safe_name(name) == stored


def test_a_non_local_address_is_warned_about() -> None:
    assert exposure_warning("127.0.0.1") is None and exposure_warning("localhost") is None
    assert exposure_warning("::1") is None and exposure_warning("127.0.0.2") is None
    warning = exposure_warning("0.0.0.0")
    assert warning is not None and "0.0.0.0" in warning and "anyone" in warning
    assert url_of("127.0.0.1", 8765) == "http://127.0.0.1:8765/" and url_of("::1", 80) == "http://[::1]:80/"


def test_events_as_the_page_reads_them() -> None:
    summary = LossSummary({"content": 2.0, "style.a": 0.5}, {"content": 2.0, "style.a": 50.0})
    progress = event_json(Progress(3, 10, 0, summary, torch.zeros(1, 3, 4, 4), True))
    assert progress == {
        "type": "progress",
        "iteration": 3,
        "total": 10,
        "stage": 0,
        "losses": {"total": 52.0, "content": 2.0, "content.raw": 2.0, "style.a": 50.0, "style.a.raw": 0.5},
        "best": True,
    }
    assert event_json(StageStarted(0, "adam", 10, 0.02, 1, 10))["name"] == "adam"
    assert event_json(StageEnded(0, "interrupted", "interrupted by the user", 3))["reason"] == "interrupted"
    assert event_json(object()) is None
