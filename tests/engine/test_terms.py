"""Tests of styleforge.engine.terms: weighted-loss arithmetic, weight validation, printed totals."""

from __future__ import annotations

import math
import random
from decimal import Decimal

import pytest
import torch

from styleforge.engine.terms import LossReport, LossSummary, WeightedLoss, validate_weight
from styleforge.errors import InvalidParameter, StyleforgeError


def _const(value: float):
    """A term that ignores its input and returns ``value`` as a float64 scalar."""
    return lambda *args, **kwargs: torch.tensor(value, dtype=torch.float64)


# --- WeightedLoss arithmetic ---------------------------------------------------------------------


def test_total_is_sum_of_weight_times_raw_exactly() -> None:
    rng = random.Random(7)
    for _ in range(50):
        raws = {f"t{i}": rng.uniform(0, 100) for i in range(4)}
        weights = {name: rng.choice([0.0, 1e-6, 0.5, 1.0, 3.0, 1e6]) for name in raws}
        loss = WeightedLoss({n: _const(v) for n, v in raws.items()}, weights)
        report = loss(None)
        expected = 0.0
        for i, name in enumerate(raws):
            part = raws[name] * weights[name]
            expected = part if i == 0 else expected + part  # the engine's summation order
        assert report.total.item() == expected
        for name in raws:
            assert report.raw[name].item() == raws[name]
            assert report.weighted[name].item() == raws[name] * weights[name]


def test_hand_computed_example() -> None:
    loss = WeightedLoss(
        {"a": _const(2.0), "b": _const(3.0), "c": _const(10.0)}, {"a": 0.5, "b": 1.5, "c": 0.25}
    )
    report = loss()
    assert report.total.item() == 0.5 * 2.0 + 1.5 * 3.0 + 0.25 * 10.0 == 8.0


def test_terms_receive_the_same_inputs_and_gradients_flow() -> None:
    x = torch.tensor([1.0, 2.0, 3.0], requires_grad=True)
    loss = WeightedLoss({"sum": lambda v: v.sum(), "sq": lambda v: (v**2).sum()}, {"sq": 0.5})
    report = loss(x)
    assert report.total.item() == pytest.approx(6.0 + 0.5 * 14.0)
    report.total.backward()
    # d/dx (Σx + 0.5 Σx²) = 1 + x
    assert torch.allclose(x.grad, torch.tensor([2.0, 3.0, 4.0]))
    assert not report.raw["sq"].requires_grad and not report.weighted["sq"].requires_grad


def test_default_weight_is_one() -> None:
    loss = WeightedLoss({"a": _const(2.0), "b": _const(5.0)}, {"b": 3.0})
    assert loss.weights == {"a": 1.0, "b": 3.0}
    assert loss().total.item() == 2.0 + 15.0
    assert WeightedLoss({"a": _const(1.0)}).weights == {"a": 1.0}


def test_zero_weight_is_still_evaluated_and_reported() -> None:
    calls = []

    def term() -> torch.Tensor:
        calls.append(1)
        return torch.tensor(4.0, dtype=torch.float64)

    loss = WeightedLoss({"a": _const(1.0), "zero": term}, {"zero": 0})
    report = loss()
    assert calls == [1]
    assert report.raw["zero"].item() == 4.0
    assert report.weighted["zero"].item() == 0.0
    assert report.total.item() == 1.0
    summary = report.summary()
    assert "zero" in summary.raw and summary.weighted["zero"] == 0.0
    assert "zero" in summary.format()


def test_names_keep_the_given_order() -> None:
    loss = WeightedLoss({"z": _const(1.0), "a": _const(1.0), "m": _const(1.0)})
    assert loss.names == ["z", "a", "m"]
    assert list(loss().summary().weighted) == ["z", "a", "m"]


def test_summary_matches_report() -> None:
    loss = WeightedLoss({"a": _const(0.1), "b": _const(0.2)}, {"a": 3.0, "b": 7.0})
    summary = loss().summary()
    assert summary.raw == {"a": 0.1, "b": 0.2}
    assert summary.weighted == {"a": 0.1 * 3.0, "b": 0.2 * 7.0}
    assert summary.total == math.fsum([0.1 * 3.0, 0.2 * 7.0])


def test_summary_of_no_terms_is_empty() -> None:
    report = LossReport(torch.tensor(0.0), {}, {})
    summary = report.summary()
    assert summary.raw == {} and summary.weighted == {} and summary.total == 0.0


# --- validation ----------------------------------------------------------------------------------


def test_unknown_weight_name_names_the_key_and_suggests() -> None:
    with pytest.raises(InvalidParameter) as info:
        WeightedLoss({"content": _const(1.0), "tv": _const(1.0)}, {"contnet": 2.0})
    message = str(info.value)
    assert "contnet" in message
    assert "did you mean 'content'" in message
    assert "content" in message and "tv" in message  # the valid names are listed
    assert "\n" not in message


def test_unknown_weight_name_without_close_match_lists_the_valid_names() -> None:
    with pytest.raises(InvalidParameter) as info:
        WeightedLoss({"content": _const(1.0), "tv": _const(1.0)}, {"zzzzzz": 2.0}, param="--loss-weight")
    message = str(info.value)
    assert "zzzzzz" in message and "content, tv" in message and "--loss-weight" in message
    assert "did you mean" not in message


@pytest.mark.parametrize(
    "bad",
    [-1.0, -1e-12, float("nan"), float("inf"), float("-inf"), "abc", None, object(), True, False, [1.0]],
    ids=["neg", "tiny-neg", "nan", "inf", "-inf", "str", "none", "object", "true", "false", "list"],
)
def test_invalid_weight_is_rejected_naming_the_key(bad: object) -> None:
    with pytest.raises(InvalidParameter) as info:
        WeightedLoss({"content": _const(1.0), "style.a": _const(1.0)}, {"style.a": bad})
    assert "style.a" in str(info.value)
    assert isinstance(info.value, StyleforgeError) and info.value.exit_code == 2


@pytest.mark.parametrize("good, expected", [(0, 0.0), (2, 2.0), (0.25, 0.25), (1e6, 1e6)])
def test_validate_weight_accepts_finite_non_negative_numbers(good: object, expected: float) -> None:
    value = validate_weight("k", good)
    assert value == expected and isinstance(value, float)


def test_validate_weight_uses_the_param_name() -> None:
    with pytest.raises(InvalidParameter) as info:
        validate_weight("contrast", -2, param="--loss-weight")
    assert str(info.value).startswith("--loss-weight contrast:")


# --- LossSummary ---------------------------------------------------------------------------------


def test_summary_total_is_fsum_of_weighted() -> None:
    weighted = {"a": 1e16, "b": 1.0, "c": -1e16}
    summary = LossSummary(dict.fromkeys(weighted, 0.0), weighted)
    assert summary.total == math.fsum(weighted.values()) == 1.0
    assert sum(weighted.values()) != summary.total  # a naive sum would lose the 1.0


def _parse_format(line: str) -> tuple[Decimal, list[tuple[str, Decimal]]]:
    total_text, _, body = line.partition(" = ")
    parts = []
    for chunk in body.split(" + "):
        name, value = chunk.rsplit(" ", 1)
        parts.append((name, Decimal(value)))
    return Decimal(total_text), parts


def test_format_printed_total_equals_printed_parts_over_random_magnitudes() -> None:
    rng = random.Random(2024)
    magnitudes = [0.0, 1e-9, 1e-6, 1e-3, 0.1, 1.0, 7.0, 123.456, 1e4, 1e6, 5e9]
    for case in range(200):
        n = rng.randint(1, 6)
        weighted = {}
        for i in range(n):
            kind = rng.random()
            if kind < 0.15:
                value = 0.0
            elif kind < 0.6:
                value = rng.choice(magnitudes) * rng.uniform(0.5, 9.99)
            else:
                value = 10 ** rng.uniform(-8, 8)
            weighted[f"style.s{i}" if i else "content"] = value
        summary = LossSummary(dict(weighted.items()), weighted)
        digits = rng.choice([3, 4, 6])
        line = summary.format(digits)
        assert "\n" not in line and "E" not in line, line  # plain decimals, never 1.2E+4
        total, parts = _parse_format(line)
        assert [name for name, _ in parts] == list(weighted), line
        assert total == sum((v for _, v in parts), Decimal(0)), (case, line)
        # The printed total is close to the true total: at most half a quantum per term.
        largest = max(abs(v) for v in weighted.values())
        quantum = 10 ** ((math.floor(math.log10(largest)) if largest > 0 else 0) - digits + 1)
        assert abs(float(total) - summary.total) <= n * quantum / 2 * (1 + 1e-9) + 1e-300, (case, line)
        # Every printed part is its value rounded to that quantum.
        for name, value in parts:
            assert abs(float(value) - weighted[name]) <= quantum / 2 * (1 + 1e-9), (case, line)


def test_format_all_zero() -> None:
    line = LossSummary({"a": 0.0, "b": 0.0}, {"a": 0.0, "b": 0.0}).format()
    total, parts = _parse_format(line)
    assert total == 0 and all(v == 0 for _, v in parts)


def test_format_shows_every_term_with_its_rounded_value() -> None:
    summary = LossSummary(
        {"content": 1.0, "style.a": 1.0, "tv": 1.0}, {"content": 1.23456, "style.a": 0.5, "tv": 0.0}
    )
    line = summary.format(4)
    assert line == "1.735 = content 1.235 + style.a 0.500 + tv 0.000"


def test_format_uses_plain_decimals_for_large_and_tiny_values() -> None:
    assert LossSummary({"a": 1.0, "b": 1.0}, {"a": 12345.6, "b": 0.0}).format() == "12350 = a 12350 + b 0"
    assert LossSummary({"a": 1.0}, {"a": 1.5e-7}).format() == "0.0000001500 = a 0.0000001500"


def test_format_survives_non_finite_parts() -> None:
    line = LossSummary({"a": 1.0, "b": 1.0}, {"a": float("nan"), "b": 2.0}).format()
    assert line.startswith("NaN = a NaN + b 2.000")
    assert LossSummary({"a": 1.0}, {"a": float("inf")}).format() == "Infinity = a Infinity"


def test_format_with_weights_shows_weight_name_raw() -> None:
    summary = LossSummary({"mse": 0.5, "ce": 2.0}, {"mse": 0.5, "ce": 1.4})
    line = summary.format(show_weights={"mse": 1.0, "ce": 0.7})
    assert line.startswith("1.900 = ")
    assert "0.7×ce 2" in line and "1×mse 0.5" in line


def test_as_row_keys_and_values() -> None:
    summary = LossSummary({"content": 2.0, "tv": 4.0}, {"content": 1.0, "tv": 0.5})
    row = summary.as_row()
    assert list(row) == ["total", "content", "content.raw", "tv", "tv.raw"]
    assert row == {"total": 1.5, "content": 1.0, "content.raw": 2.0, "tv": 0.5, "tv.raw": 4.0}
