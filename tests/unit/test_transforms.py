"""Tests for hub.mapping.transforms: argument checking, every transform, and the guarantee
that bad data only ever raises TransformError."""

from __future__ import annotations

import dataclasses
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import ROUND_HALF_UP, Context, Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from hub.errors import RuleError, TransformError
from hub.mapping import transforms
from hub.mapping.transforms import REGISTRY, TransformSpec, build, names, transform

DOCUMENTED = {
    "trim", "lower", "upper", "collapse_spaces", "halfwidth", "truncate", "string", "integer",
    "decimal", "float", "boolean", "not", "parse_datetime", "format_datetime", "parse_date",
    "format_date", "phone_e164", "email", "tax_id", "split", "join", "coalesce", "first",
    "wrap_each", "unwrap_each",
}  # fmt: skip


def run(name: str, value: Any, args: Any = None) -> Any:
    return build(name, args)(value)


def fails(name: str, value: Any, args: Any = None, match: str | None = None) -> TransformError:
    fn = build(name, args)
    with pytest.raises(TransformError, match=match) as info:
        fn(value)
    return info.value


# --- registry and build() ---------------------------------------------------------------------


def test_names_are_the_documented_transforms_sorted() -> None:
    assert names() == sorted(DOCUMENTED)
    assert set(REGISTRY) == DOCUMENTED


def test_specs_describe_factory_parameters() -> None:
    assert REGISTRY["trim"].params == ()
    assert REGISTRY["truncate"].params == ("length",)
    assert REGISTRY["truncate"].required == ("length",)
    assert REGISTRY["decimal"].params == ("places", "rounding")
    assert REGISTRY["decimal"].required == ()
    assert REGISTRY["parse_datetime"].params == ("format", "tz")
    assert REGISTRY["wrap_each"].required == ("prefix",)
    spec = REGISTRY["split"]
    assert isinstance(spec, TransformSpec) and spec.name == "split"
    with pytest.raises(dataclasses.FrozenInstanceError):
        spec.name = "other"  # type: ignore[misc]


def test_transform_decorator_registers_and_refuses_duplicates() -> None:
    try:

        @transform("_test_scale")
        def factory(factor: int, offset: int = 0) -> transforms.TransformFn:
            return lambda value: value * factor + offset

        spec = REGISTRY["_test_scale"]
        assert spec.factory is factory
        assert spec.params == ("factor", "offset")
        assert spec.required == ("factor",)
        assert build("_test_scale", 3)(2) == 6
        assert build("_test_scale", {"factor": 2, "offset": 1})(2) == 5
        with pytest.raises(ValueError):
            transform("_test_scale")(factory)
    finally:
        REGISTRY.pop("_test_scale", None)


def test_build_accepts_none_empty_dict_keywords_and_positional() -> None:
    assert build("trim")(" a ") == "a"
    assert build("trim", {})(" a ") == "a"
    assert build("truncate", {"length": 2})("abc") == "ab"
    assert build("truncate", 2)("abc") == "ab"
    assert build("split", ";")("a;b") == ["a", "b"]
    assert build("wrap_each", [0, 0])([{"a": 1}]) == [[0, 0, {"a": 1}]]
    assert build("parse_datetime", "epoch_s")(0) == "1970-01-01T00:00:00Z"


@pytest.mark.parametrize(
    ("name", "args", "message"),
    [
        ("trm", None, "unknown transform 'trm' (did you mean 'trim'?)"),
        ("decimall", None, "unknown transform 'decimall' (did you mean 'decimal'?)"),
        ("zzzzzz", None, "unknown transform 'zzzzzz'"),
        ("truncate", {"lenght": 3}, "unknown argument 'lenght' (did you mean 'length'?)"),
        ("decimal", {"place": 2}, "unknown argument 'place' (did you mean 'places'?)"),
        ("trim", {"x": 1}, "transform 'trim': unknown argument 'x'"),
        ("truncate", None, "transform 'truncate': missing argument 'length'"),
        ("truncate", {}, "missing argument 'length'"),
        ("wrap_each", None, "missing argument 'prefix'"),
        ("trim", 5, "transform 'trim' takes no arguments"),
        ("coalesce", [1], "takes no arguments"),
        ("truncate", -1, "length must be a whole number >= 0"),
        ("truncate", "10", "length must be a whole number"),
        ("truncate", True, "length must be a whole number"),
        ("decimal", {"places": -1}, "places must be"),
        ("decimal", {"places": 2.0}, "places must be"),
        ("decimal", {"places": True}, "places must be"),
        ("decimal", {"rounding": "halfup"}, "unknown rounding 'halfup' (did you mean 'half_up'?)"),
        ("decimal", {"rounding": "banker"}, "unknown rounding 'banker'"),
        ("decimal", {"rounding": None}, "unknown rounding"),
        (
            "parse_datetime",
            {"tz": "Asia/Shangai"},
            "unknown time zone 'Asia/Shangai' (did you mean 'Asia/Shanghai'?)",
        ),
        ("parse_datetime", {"tz": "asia/shanghai"}, "did you mean 'Asia/Shanghai'"),
        ("parse_datetime", {"tz": "Asia"}, "unknown time zone 'Asia'"),
        ("parse_datetime", {"tz": "../etc/passwd"}, "unknown time zone"),
        ("parse_datetime", {"tz": ""}, "tz must be a time zone name"),
        ("parse_datetime", {"tz": 8}, "tz must be a time zone name"),
        ("format_datetime", {"tz": "Mars/Olympus"}, "unknown time zone"),
        (
            "parse_datetime",
            "isoo",
            "format must be iso, epoch_ms, epoch_s or a %-pattern, got 'isoo'"
            " (did you mean 'iso'?)",
        ),
        ("parse_datetime", "epoch", "did you mean"),
        ("parse_datetime", "%Q", "'%Q' cannot be parsed"),
        ("parse_datetime", 5, "format must be"),
        ("format_datetime", "YYYY-MM-DD", "format must be"),
        ("parse_date", "epoch_ms", "format must be iso or a %-pattern"),
        ("parse_date", "%-d/%m/%Y", "cannot be parsed"),
        ("format_date", "dd/mm/yyyy", "format must be"),
        ("format_date", "\ud800%Y", "cannot be used"),
        ("format_datetime", "\ud800%Y", "cannot be used"),
        ("phone_e164", "XX", "unknown phone region 'XX'"),
        ("phone_e164", {"region": "China"}, "unknown phone region"),
        ("phone_e164", 86, "unknown phone region"),
        ("tax_id", "CHN", "two-letter ISO code"),
        ("tax_id", 1, "two-letter ISO code"),
        ("split", "", "sep must be non-empty text"),
        ("split", 1, "sep must be"),
        ("join", 1, "sep must be text"),
        ("wrap_each", "0", "prefix must be a list"),
        ("wrap_each", {"prefix": {"a": 1}}, "prefix must be a list"),
        ("unwrap_each", "0", "index must be a whole number"),
        ("unwrap_each", False, "index must be a whole number"),
    ],
)
def test_build_errors(name: str, args: Any, message: str) -> None:
    with pytest.raises(RuleError) as info:
        build(name, args)
    assert message in str(info.value)


def test_build_error_for_non_string_names_and_keys() -> None:
    with pytest.raises(RuleError, match="unknown transform"):
        build(None, None)  # type: ignore[arg-type]
    with pytest.raises(RuleError, match="unknown argument 2"):
        build("decimal", {2: "x"})


def test_phone_region_is_case_insensitive() -> None:
    assert run("phone_e164", "13800138000", "cn") == "+8613800138000"


# --- text -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("  Acme  ", "Acme"),
        ("\u3000株式会社\u3000", "株式会社"),
        ("\t\nx\r\n", "x"),
        ("\xa0x\u2003", "x"),
        ("", ""),
        ("   ", ""),
        ("a  b", "a  b"),
    ],
)
def test_trim(value: str, expected: str) -> None:
    assert run("trim", value) == expected


@pytest.mark.parametrize("name", ["trim", "lower", "upper", "collapse_spaces", "halfwidth"])
@pytest.mark.parametrize("value", [12, 1.5, True, [], {}, Decimal("1"), b"abc"])
def test_text_transforms_reject_non_text(name: str, value: Any) -> None:
    err = fails(name, value)
    assert str(err).startswith("expected text, got ")


def test_non_text_message_names_the_value() -> None:
    assert str(fails("trim", 12)) == "expected text, got 12"


def test_lower_upper() -> None:
    assert run("lower", "ÀBC Straße") == "àbc straße"
    assert run("upper", "àbc straße") == "ÀBC STRASSE"
    assert run("upper", "中文abc") == "中文ABC"
    assert run("lower", "ＡＢＣ") == "ａｂｃ"
    assert run("lower", "") == ""


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("  a   b\t\nc  ", "a b c"),
        ("上海\u3000\u3000浦东", "上海 浦东"),
        ("a\xa0\xa0b", "a b"),
        ("", ""),
        ("   ", ""),
    ],
)
def test_collapse_spaces(value: str, expected: str) -> None:
    assert run("collapse_spaces", value) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("ＡＢＣ（株）", "ABC(株)"),
        ("１２３４５", "12345"),
        ("ＡＢＣ１２３（）", "ABC123()"),
        ("㈱中文", "(株)中文"),
        ("ｶﾀｶﾅ", "カタカナ"),
        ("a\u3000b", "a b"),
        ("plain", "plain"),
        ("", ""),
    ],
)
def test_halfwidth(value: str, expected: str) -> None:
    assert run("halfwidth", value) == expected


def test_truncate() -> None:
    assert run("truncate", "abcdef", 3) == "abc"
    assert run("truncate", "ab", 3) == "ab"
    assert run("truncate", "上海浦东新区", 2) == "上海"
    assert run("truncate", "abc", 0) == ""
    assert run("truncate", "", 5) == ""
    fails("truncate", 123456, 3, match="expected text")


# --- string -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("abc", "abc"),
        ("", ""),
        (" keep ", " keep "),
        (12, "12"),
        (-7, "-7"),
        (0, "0"),
        (10**30, "1" + "0" * 30),
        (True, "true"),
        (False, "false"),
        (12.0, "12"),
        (0.1, "0.1"),
        (19.9, "19.9"),
        (0.1 + 0.2, "0.30000000000000004"),
        (1e-7, "0.0000001"),
        (1e22, "10000000000000000000000"),
        (-0.0, "0"),
        (Decimal("1.50"), "1.50"),
        (Decimal("1E+2"), "100"),
        (Decimal("1.2E-5"), "0.000012"),
        (Decimal("-0"), "0"),
        (Decimal("-0.00"), "0.00"),
        (date(2024, 5, 1), "2024-05-01"),
    ],
)
def test_string(value: Any, expected: str) -> None:
    assert run("string", value) == expected


@pytest.mark.parametrize(
    "value",
    [[], {}, [1], {"a": 1}, float("nan"), float("inf"), Decimal("NaN"), Decimal("-Infinity"),
     Decimal("sNaN"), pytest.param(10**5000, id="huge_int"), object()],
)  # fmt: skip
def test_string_rejects(value: Any) -> None:
    fails("string", value)


# --- integer ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (12, 12),
        (-3, -3),
        (0, 0),
        ("12", 12),
        (" 12 ", 12),
        ("\u300012\u3000", 12),
        ("12.0", 12),
        ("-12.00", -12),
        ("+7", 7),
        ("1,234", 1234),
        ("1,234,567", 1234567),
        ("１２３４５", 12345),
        ("1E+3", 1000),
        (12.0, 12),
        (-0.0, 0),
        (Decimal("12.000"), 12),
        (10**30, 10**30),
        ("123456789012345678901234567890", 123456789012345678901234567890),
    ],
)
def test_integer(value: Any, expected: int) -> None:
    result = run("integer", value)
    assert result == expected and type(result) is int


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("12.5", "'12.5' is not a whole number"),
        (12.5, "12.5 is not a whole number"),
        (True, "True is not a number"),
        (False, "False is not a number"),
        ("abc", "'abc' is not a decimal number"),
        ("12.5x", "'12.5x' is not a decimal number"),
        ("1,23", "is not a decimal number"),
        ("12,34,567", "is not a decimal number"),
        ("1.234,5", "is not a decimal number"),
        ("1_000", "is not a decimal number"),
        ("$12", "is not a decimal number"),
        ("1 234", "is not a decimal number"),
        ("NaN", "is not a decimal number"),
        ("inf", "is not a decimal number"),
        (float("nan"), "is not a finite number"),
        (float("inf"), "is not a finite number"),
        (Decimal("NaN"), "is not a finite number"),
        ("true", "is not a decimal number"),
        ([12], "is not a number"),
        (10**500, "out of the supported number range"),
    ],
)
def test_integer_rejects(value: Any, reason: str) -> None:
    assert reason in str(fails("integer", value))


@pytest.mark.parametrize("value", ["", "   ", "\u3000"])
def test_numeric_parsers_read_blank_text_as_no_value(value: str) -> None:
    for name in ("integer", "decimal", "float", "boolean"):
        assert run(name, value) is None, name


@given(st.integers(min_value=-(10**40), max_value=10**40))
def test_integer_reads_plain_and_grouped_text(n: int) -> None:
    fn = build("integer")
    assert fn(str(n)) == n
    assert fn(f"{n:,}") == n
    assert fn(n) == n


# --- decimal ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("1,234.50", "1234.5"),
        ("1234.50", "1234.5"),
        ("100", "100"),
        ("100.00", "100"),
        ("0.00", "0"),
        ("-0", "0"),
        ("-0.000", "0"),
        ("+12.5", "12.5"),
        (".5", "0.5"),
        ("5.", "5"),
        ("1E+2", "100"),
        ("1.5e-3", "0.0015"),
        ("１２３４．５０", "1234.5"),
        ("１，２３４", "1234"),
        ("  19.90 ", "19.9"),
        (19.9, "19.9"),
        (0.1, "0.1"),
        (0.1 + 0.2, "0.30000000000000004"),
        (1e-7, "0.0000001"),
        (-0.0, "0"),
        (1e300, "1" + "0" * 300),
        (12, "12"),
        (0, "0"),
        (Decimal("3.1400"), "3.14"),
        (Decimal("-0E+3"), "0"),
        ("123456789012345678901234567890.123456789", "123456789012345678901234567890.123456789"),
    ],
)
def test_decimal_normalizes(value: Any, expected: str) -> None:
    assert run("decimal", value) == expected


def test_decimal_keeps_more_digits_than_the_default_context() -> None:
    forty = "1234567890" * 4 + ".0000000001"
    assert run("decimal", forty) == forty
    assert run("decimal", forty, {"places": 12}) == forty + "00"


@pytest.mark.parametrize(
    ("value", "places", "expected"),
    [
        ("1234.5", 2, "1234.50"),
        (1234, 2, "1234.00"),
        ("0", 2, "0.00"),
        ("-0.001", 2, "0.00"),
        (19.9, 2, "19.90"),
        ("2.5", 0, "3"),
        ("1E+2", 1, "100.0"),
        (1e-7, 3, "0.000"),
    ],
)
def test_decimal_places(value: Any, places: int, expected: str) -> None:
    assert run("decimal", value, {"places": places}) == expected


ROUNDING_CASES = {
    #             2.345   -2.345   2.355   -0.001   2.341
    "half_up": ("2.35", "-2.35", "2.36", "0.00", "2.34"),
    "half_even": ("2.34", "-2.34", "2.36", "0.00", "2.34"),
    "half_down": ("2.34", "-2.34", "2.35", "0.00", "2.34"),
    "down": ("2.34", "-2.34", "2.35", "0.00", "2.34"),
    "up": ("2.35", "-2.35", "2.36", "-0.01", "2.35"),
    "floor": ("2.34", "-2.35", "2.35", "-0.01", "2.34"),
    "ceiling": ("2.35", "-2.34", "2.36", "0.00", "2.35"),
}


@pytest.mark.parametrize("rounding", sorted(ROUNDING_CASES))
def test_decimal_rounding_modes(rounding: str) -> None:
    fn = build("decimal", {"places": 2, "rounding": rounding})
    inputs = ("2.345", "-2.345", "2.355", "-0.001", "2.341")
    assert tuple(fn(v) for v in inputs) == ROUNDING_CASES[rounding]


def test_decimal_default_rounding_is_half_up() -> None:
    assert run("decimal", "0.125", {"places": 2}) == "0.13"
    assert run("decimal", 2.675, {"places": 2}) == "2.68"  # repr first: the float is 2.67499...


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (True, "True is not a number"),
        (False, "is not a number"),
        ("12.5x", "'12.5x' is not a decimal number"),
        ("abc", "is not a decimal number"),
        ("NaN", "is not a decimal number"),
        ("Infinity", "is not a decimal number"),
        ("-inf", "is not a decimal number"),
        ("1,2345", "is not a decimal number"),
        ("1.234,50", "is not a decimal number"),
        ("¥12", "is not a decimal number"),
        ("1e", "is not a decimal number"),
        ("--1", "is not a decimal number"),
        (".", "is not a decimal number"),
        ("0x1F", "is not a decimal number"),
        ("١٢٣", "is not a decimal number"),  # Arabic-Indic digits: not silently accepted
        (float("nan"), "is not a finite number"),
        (Decimal("sNaN"), "is not a finite number"),
        (Decimal("Infinity"), "is not a finite number"),
        ([1, 2], "is not a number"),
        ({"amount": 1}, "is not a number"),
        ("1e999999999", "out of the supported number range"),
        ("1e99999999999999999999", "out of the supported number range"),
        (Decimal("1E-999"), "out of the supported number range"),
        ("9" * 2000, "is not a decimal number"),
        pytest.param(10**5000, "out of the supported number range", id="huge_int"),
    ],
)
def test_decimal_rejects(value: Any, reason: str) -> None:
    assert reason in str(fails("decimal", value))
    fails("decimal", value, {"places": 2})


def test_error_messages_truncate_long_values() -> None:
    message = str(fails("decimal", "x" * 10_000))
    assert len(message) < 120
    assert message.endswith("is not a decimal number")


BIG = Context(prec=2000)


@given(st.decimals(allow_nan=False, allow_infinity=False))
def test_decimal_round_trips_any_finite_decimal(number: Decimal) -> None:
    assume(not number or (abs(number.adjusted()) <= 300 and len(number.as_tuple().digits) <= 300))
    fn = build("decimal")
    text = fn(str(number))
    assert "E" not in text and "e" not in text
    assert Decimal(text) == number
    assert fn(number) == text
    assert text == "0" or not ("." in text and text.endswith("0"))


@given(st.decimals(allow_nan=False, allow_infinity=False, places=6, min_value=-1e9, max_value=1e9))
def test_decimal_places_match_reference_quantize(number: Decimal) -> None:
    expected = number.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP, context=BIG)
    assert Decimal(run("decimal", str(number), {"places": 2})) == expected


@given(st.floats(allow_nan=False, allow_infinity=False))
def test_decimal_reads_floats_through_repr(x: float) -> None:
    text = run("decimal", x)
    assert Decimal(text) == Decimal(repr(x))
    assert float(text) == x


# --- float ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("19.9", 19.9),
        ("1,234.5", 1234.5),
        ("１２", 12.0),
        (12, 12.0),
        (0.1, 0.1),
        (Decimal("2.50"), 2.5),
        ("-0", 0.0),
        ("1e300", 1e300),
    ],
)
def test_float(value: Any, expected: float) -> None:
    result = run("float", value)
    assert result == expected and type(result) is float


@pytest.mark.parametrize("value", [True, "abc", "nan", float("inf"), [1.0], "1e400"])
def test_float_rejects(value: Any) -> None:
    fails("float", value)


@pytest.mark.parametrize(
    "value",
    ["99999999999999.99", "0.12345678901234567890", 2**53 + 1, "1e-350", Decimal("1.0000000000000001")],
)
def test_float_refuses_to_lose_digits(value: Any) -> None:
    assert "too many digits for a floating-point number" in str(fails("float", value))


def test_float_reports_the_nearest_double() -> None:
    assert "(nearest: 99999999999999.98)" in str(fails("float", "99999999999999.99"))


@given(st.floats(allow_nan=False, allow_infinity=False))
def test_float_accepts_every_double_and_its_decimal_text(x: float) -> None:
    assert run("float", x) == x
    assert run("float", run("decimal", x)) == x


# --- booleans ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    [True, 1, "true", "TRUE", " True ", "yes", "Y", "on", "1", "t", "是", "真", "１", "ＹＥＳ"],
)
def test_boolean_true(value: Any) -> None:
    assert run("boolean", value) is True


@pytest.mark.parametrize(
    "value", [False, 0, "false", "False", "no", "N", "off", "0", "f", "否", "假", "\u3000否\u3000"]
)
def test_boolean_false(value: Any) -> None:
    assert run("boolean", value) is False


@pytest.mark.parametrize(
    "value", [2, -1, 1.0, 0.0, "maybe", "N/A", "2", "yes!", "对", "ja", [], {}, Decimal("1")]
)
def test_boolean_rejects(value: Any) -> None:
    assert "is not a yes/no value" in str(fails("boolean", value))


def test_not() -> None:
    assert run("not", True) is False
    assert run("not", False) is True
    for value in ("false", 0, 1, "", []):
        assert "expected a boolean" in str(fails("not", value))


# --- dates and times --------------------------------------------------------------------------

SHANGHAI = {"tz": "Asia/Shanghai"}


def pattern(fmt: str, tz: str = "UTC") -> dict[str, str]:
    return {"format": fmt, "tz": tz}



@pytest.mark.parametrize(
    ("value", "args", "expected"),
    [
        # Salesforce
        ("2024-05-01T08:00:00.000+0000", None, "2024-05-01T08:00:00Z"),
        ("2024-05-01T16:00:00.000+0800", None, "2024-05-01T08:00:00Z"),
        # Odoo: naive UTC, either via iso or its strptime pattern
        ("2024-05-01 08:00:00", None, "2024-05-01T08:00:00Z"),
        ("2024-05-01 08:00:00", pattern("%Y-%m-%d %H:%M:%S", "UTC"), "2024-05-01T08:00:00Z"),
        # ERPNext: naive, site zone, microseconds
        ("2024-05-01 16:00:00.123456", SHANGHAI, "2024-05-01T08:00:00.123456Z"),
        ("2024-05-01 16:00:00.000000", SHANGHAI, "2024-05-01T08:00:00Z"),
        ("2024-05-01 16:00:00.5", SHANGHAI, "2024-05-01T08:00:00.500000Z"),
        # ISO variants
        ("2024-05-01T08:00:00Z", None, "2024-05-01T08:00:00Z"),
        ("2024-05-01T16:00:00+08:00", None, "2024-05-01T08:00:00Z"),
        ("2024-05-01T16:00:00+08:00", {"tz": "America/New_York"}, "2024-05-01T08:00:00Z"),
        ("2024-05-01T08:00:00.123456789Z", None, "2024-05-01T08:00:00.123456Z"),
        ("2024-05-01", None, "2024-05-01T00:00:00Z"),
        ("2024-05-01", SHANGHAI, "2024-04-30T16:00:00Z"),
        ("  2024-05-01T08:00:00Z\u3000", None, "2024-05-01T08:00:00Z"),
        ("２０２４-０５-０１", None, "2024-05-01T00:00:00Z"),
        ("2024-01-01T00:30:00+05:30", None, "2023-12-31T19:00:00Z"),
        # strptime patterns
        ("01/05/2024 16:00", pattern("%d/%m/%Y %H:%M", "Asia/Shanghai"), "2024-05-01T08:00:00Z"),
        ("2024年5月1日 16时", pattern("%Y年%m月%d日 %H时", "Asia/Shanghai"), "2024-05-01T08:00:00Z"),
        (
            "2024-05-01 16:00 +0800",
            pattern("%Y-%m-%d %H:%M %z", "America/New_York"),  # the offset wins over tz
            "2024-05-01T08:00:00Z",
        ),
        ("2024-05-01 08:00 Z", {"format": "%Y-%m-%d %H:%M %z"}, "2024-05-01T08:00:00Z"),
        # objects
        (datetime(2024, 5, 1, 16, 0), SHANGHAI, "2024-05-01T08:00:00Z"),
        (datetime(2024, 5, 1, 8, 0, tzinfo=UTC), SHANGHAI, "2024-05-01T08:00:00Z"),
        (date(2024, 5, 1), SHANGHAI, "2024-04-30T16:00:00Z"),
    ],
)
def test_parse_datetime(value: Any, args: Any, expected: str) -> None:
    assert run("parse_datetime", value, args) == expected


@pytest.mark.parametrize(
    ("value", "args", "expected"),
    [
        # HubSpot: epoch milliseconds, as a string or a number
        ("1714550400000", "epoch_ms", "2024-05-01T08:00:00Z"),
        (1714550400000, "epoch_ms", "2024-05-01T08:00:00Z"),
        (1714550400123, "epoch_ms", "2024-05-01T08:00:00.123000Z"),
        (1714550400000.5, "epoch_ms", "2024-05-01T08:00:00.000500Z"),
        ("1714550400", "epoch_s", "2024-05-01T08:00:00Z"),
        (1714550400, "epoch_s", "2024-05-01T08:00:00Z"),
        (1714550400.25, "epoch_s", "2024-05-01T08:00:00.250000Z"),
        (Decimal("1714550400.000001"), "epoch_s", "2024-05-01T08:00:00.000001Z"),
        (0, "epoch_s", "1970-01-01T00:00:00Z"),
        (-1, "epoch_ms", "1969-12-31T23:59:59.999000Z"),
        ("１７１４５５０４００", "epoch_s", "2024-05-01T08:00:00Z"),
        # the zone does not matter for an absolute instant
        (1714550400, pattern("epoch_s", "Asia/Shanghai"), "2024-05-01T08:00:00Z"),
    ],
)
def test_parse_datetime_epochs(value: Any, args: Any, expected: str) -> None:
    assert run("parse_datetime", value, args) == expected


def test_dst_gap_and_overlap_follow_fold_zero() -> None:
    """Documented behaviour: a skipped local time uses the offset before the gap, and a
    repeated one its first occurrence; neither is an error."""
    ny = {"tz": "America/New_York"}
    # 2024-03-10 02:30 does not exist in New York (clocks jump 02:00 -> 03:00).
    assert run("parse_datetime", "2024-03-10 02:30:00", ny) == "2024-03-10T07:30:00Z"
    # 2024-11-03 01:30 happens twice (EDT, then EST); the first one is taken.
    assert run("parse_datetime", "2024-11-03 01:30:00", ny) == "2024-11-03T05:30:00Z"
    # An explicit offset removes the ambiguity.
    assert run("parse_datetime", "2024-11-03T01:30:00-05:00", ny) == "2024-11-03T06:30:00Z"
    fmt = pattern("%m/%d/%Y %I:%M %p", "America/New_York")
    assert run("parse_datetime", "03/10/2024 02:30 AM", fmt) == "2024-03-10T07:30:00Z"


@pytest.mark.parametrize(
    ("value", "args", "reason"),
    [
        ("2024-13-01", None, "'2024-13-01' is not a datetime in format iso"),
        ("2024-02-30", None, "is not a datetime in format iso"),
        ("yesterday", None, "is not a datetime in format iso"),
        ("2024-05-01T25:00:00", None, "is not a datetime"),
        ("2024-05-01T23:59:60Z", None, "is not a datetime"),
        ("2024/05/01", None, "is not a datetime"),
        (1714550400, None, "expected text, got 1714550400"),
        (True, None, "expected text"),
        ("2024-05-01", "%d/%m/%Y", "is not a datetime in format '%d/%m/%Y'"),
        ("abc", "epoch_ms", "is not a decimal number"),
        (True, "epoch_ms", "True is not a number"),
        ("1e20", "epoch_s", "outside the supported date range"),
        (10**30, "epoch_ms", "outside the supported date range"),
        ("0001-01-01T00:00:00+01:00", None, "outside the supported date range"),
        ("9999-12-31T23:00:00-05:00", None, "outside the supported date range"),
        ([2024, 5, 1], None, "expected text"),
    ],
)
def test_parse_datetime_rejects(value: Any, args: Any, reason: str) -> None:
    assert reason in str(fails("parse_datetime", value, args))


def test_parse_datetime_blank_is_no_value() -> None:
    assert run("parse_datetime", "  ") is None
    assert run("parse_datetime", "", "epoch_ms") is None
    assert run("parse_datetime", "\u3000", "%Y") is None


@pytest.mark.parametrize(
    ("value", "args", "expected"),
    [
        ("2024-05-01T08:00:00Z", None, "2024-05-01T08:00:00+00:00"),
        ("2024-05-01T08:00:00Z", SHANGHAI, "2024-05-01T16:00:00+08:00"),
        ("2024-05-01T08:00:00.123456Z", SHANGHAI, "2024-05-01T16:00:00.123456+08:00"),
        ("2024-05-01T08:00:00Z", {"tz": "America/New_York"}, "2024-05-01T04:00:00-04:00"),
        ("2024-01-01T08:00:00Z", {"tz": "America/New_York"}, "2024-01-01T03:00:00-05:00"),
        ("2024-05-01T08:00:00", None, "2024-05-01T08:00:00+00:00"),  # naive means UTC
        ("2024-05-01T16:00:00+08:00", None, "2024-05-01T08:00:00+00:00"),
        ("2024-05-01T08:00:00Z", "epoch_ms", 1714550400000),
        ("2024-05-01T08:00:00.123999Z", "epoch_ms", 1714550400123),
        ("2024-05-01T08:00:00.999Z", "epoch_s", 1714550400),
        ("1969-12-31T23:59:59.999500Z", "epoch_ms", -1),
        ("2024-05-01T08:00:00Z", pattern("%Y-%m-%d %H:%M", "Asia/Shanghai"), "2024-05-01 16:00"),
        ("2024-05-01T08:00:00Z", {"format": "%Y年%m月%d日"}, "2024年05月01日"),
        ("2024-05-01T08:00:00Z", pattern("%d/%m %H:%M %z", "Asia/Kolkata"), "01/05 13:30 +0530"),
        (datetime(2024, 5, 1, 8, 0), "epoch_s", 1714550400),
    ],
)
def test_format_datetime(value: Any, args: Any, expected: Any) -> None:
    assert run("format_datetime", value, args) == expected


def test_format_datetime_epoch_results_are_ints() -> None:
    assert type(run("format_datetime", "2024-05-01T08:00:00Z", "epoch_ms")) is int


@pytest.mark.parametrize("value", ["2024-13-01T00:00:00Z", "now", 1714550400000, True, [], {}])
def test_format_datetime_rejects(value: Any) -> None:
    fails("format_datetime", value)


def test_format_datetime_out_of_range_in_zone() -> None:
    fails("format_datetime", "0001-01-01T00:00:00Z", {"tz": "America/New_York"}, match="range")


@pytest.mark.parametrize(
    ("value", "args", "expected"),
    [
        ("2024-05-01", None, "2024-05-01"),
        ("2024-05-01T23:30:00-05:00", None, "2024-05-01"),  # the date as written, no conversion
        ("2024-05-01T08:00:00Z", None, "2024-05-01"),
        ("2024-05-01 16:00:00.123456", None, "2024-05-01"),
        ("20240501", None, "2024-05-01"),
        ("２０２４-０５-０１", None, "2024-05-01"),
        ("01/05/2024", "%d/%m/%Y", "2024-05-01"),
        ("2024年5月1日", "%Y年%m月%d日", "2024-05-01"),
        (date(2024, 5, 1), None, "2024-05-01"),
        (datetime(2024, 5, 1, 23, 0, tzinfo=ZoneInfo("Asia/Shanghai")), None, "2024-05-01"),
    ],
)
def test_parse_date(value: Any, args: Any, expected: str) -> None:
    assert run("parse_date", value, args) == expected


@pytest.mark.parametrize(
    ("value", "args"),
    [
        ("2024-02-30", None),
        ("01/05/2024", None),
        ("2024-05-01", "%d/%m/%Y"),
        (20240501, None),
        ("x", None),
    ],
)
def test_parse_date_rejects(value: Any, args: Any) -> None:
    fails("parse_date", value, args, match="not a date|expected text")


@pytest.mark.parametrize(
    ("value", "args", "expected"),
    [
        ("2024-05-01", None, "2024-05-01"),
        ("2024-05-01", "%d/%m/%Y", "01/05/2024"),
        ("2024-05-01T23:30:00Z", "%Y%m%d", "20240501"),
        ("2024-05-01", "iso", "2024-05-01"),
        ("2024-05-01", "%Y年%m月%d日", "2024年05月01日"),
        (date(2024, 5, 1), "%m/%d/%Y", "05/01/2024"),
    ],
)
def test_format_date(value: Any, args: Any, expected: str) -> None:
    assert run("format_date", value, args) == expected


ROUND_TRIP_ZONES = [
    "UTC", "Asia/Shanghai", "America/New_York", "Asia/Kolkata", "Australia/Lord_Howe",
    "Pacific/Chatham", "Europe/London", "America/St_Johns",
]  # fmt: skip

canonical_datetimes = st.datetimes(
    min_value=datetime(1800, 1, 1),
    max_value=datetime(2300, 12, 31),
    timezones=st.just(UTC),
).map(lambda d: d.replace(tzinfo=None).isoformat() + "Z")


@given(canonical_datetimes, st.sampled_from(ROUND_TRIP_ZONES))
def test_datetime_iso_round_trip(canonical: str, zone: str) -> None:
    shown = run("format_datetime", canonical, {"tz": zone})
    assert run("parse_datetime", shown) == canonical
    assert run("parse_datetime", shown, {"tz": "Pacific/Kiritimati"}) == canonical  # offset wins
    assert run("parse_datetime", canonical) == canonical


@given(canonical_datetimes, st.sampled_from(ROUND_TRIP_ZONES))
def test_datetime_pattern_with_offset_round_trip(canonical: str, zone: str) -> None:
    pattern = "%Y-%m-%d %H:%M:%S.%f %z"
    shown = run("format_datetime", canonical, {"format": pattern, "tz": zone})
    assert run("parse_datetime", shown, {"format": pattern}) == canonical


@given(canonical_datetimes)
def test_datetime_epoch_round_trip(canonical: str) -> None:
    moment = datetime.fromisoformat(canonical)
    whole_ms = moment - timedelta(microseconds=moment.microsecond % 1000)
    expected = run("parse_datetime", whole_ms.isoformat())
    epoch_ms = run("format_datetime", canonical, "epoch_ms")
    assert run("parse_datetime", epoch_ms, "epoch_ms") == expected
    ms_text = str(run("format_datetime", canonical, "epoch_ms"))
    assert run("parse_datetime", ms_text, "epoch_ms") == expected


def test_canonical_form() -> None:
    assert run("parse_datetime", "2024-05-01T08:00:00.000001Z") == "2024-05-01T08:00:00.000001Z"
    assert run("parse_datetime", "0999-05-01T08:00:00Z") == "0999-05-01T08:00:00Z"


# --- contact data -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "region", "expected"),
    [
        ("138 0013 8000", "CN", "+8613800138000"),
        ("13800138000", "CN", "+8613800138000"),
        ("１３８００１３８０００", "CN", "+8613800138000"),
        (13800138000, "CN", "+8613800138000"),
        ("+86 138-0013-8000", "US", "+8613800138000"),
        ("010-12345678", "CN", "+861012345678"),
        ("+1 (415) 555-2671", None, "+14155552671"),
        ("(415) 555-2671", "US", "+14155552671"),
        ("+44 20 7946 0958", None, "+442079460958"),
        ("tel:+1-415-555-2671", None, "+14155552671"),
    ],
)
def test_phone_e164(value: Any, region: str | None, expected: str) -> None:
    assert run("phone_e164", value, region) == expected


@pytest.mark.parametrize(
    ("value", "region", "reason"),
    [
        ("123", "CN", "is not a possible phone number"),
        ("123", None, "has no country code and the rule sets no region"),
        ("13800138000", None, "has no country code"),
        ("+999 1234567", None, "has no valid country code"),
        ("not a phone", "CN", "is not a phone number"),
        ("+86 1380013800012345678", "CN", "phone number"),
        ("1" * 300, "CN", "phone number"),
        (True, "CN", "expected text"),
        (13.8, "CN", "expected text"),
        ([13800138000], "CN", "expected text"),
    ],
)
def test_phone_e164_rejects(value: Any, region: str | None, reason: str) -> None:
    assert reason in str(fails("phone_e164", value, region))


def test_phone_blank_is_no_value() -> None:
    assert run("phone_e164", " ", "CN") is None


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("  John.Doe@Example.COM ", "John.Doe@example.com"),
        ("ｊｏｈｎ＠ｅｘａｍｐｌｅ．ｃｏｍ", "john@example.com"),
        ("a+tag@sub.example.co.uk", "a+tag@sub.example.co.uk"),
        ("张三@例子.中国", "张三@例子.中国"),
        ("\u3000x@y.cn\u3000", "x@y.cn"),
    ],
)
def test_email(value: str, expected: str) -> None:
    assert run("email", value) == expected


@pytest.mark.parametrize(
    "value",
    ["john", "john@", "@example.com", "john@example", "a@b@c.com", "john doe@example.com",
     "john@exa mple.com", "john@.com", "john@example.", "john@example..com",
     "x@" + "a" * 250 + ".com", "13800138000", 12, True, ["a@b.c"]],
)  # fmt: skip
def test_email_rejects(value: Any) -> None:
    fails("email", value, match="not an e-mail address|expected text")


def test_email_blank_is_no_value() -> None:
    assert run("email", "  ") is None


# --- identifiers ------------------------------------------------------------------------------

USCC_CHARSET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
USCC_WEIGHTS = [1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28]


def reference_check_char(body: str) -> str:
    """GB 32100-2015 written out independently of the module, to cross-check it."""
    total = sum(USCC_CHARSET.index(c) * w for c, w in zip(body, USCC_WEIGHTS))
    return USCC_CHARSET[(31 - total % 31) % 31]


# Published codes of real companies (the first is the standard's widely quoted example).
REAL_USCC = ["91350100M000100Y43", "914403001922038216", "91110108551385082Q"]


@pytest.mark.parametrize("code", REAL_USCC)
def test_tax_id_accepts_real_unified_social_credit_codes(code: str) -> None:
    assert reference_check_char(code[:17]) == code[17]
    assert run("tax_id", code, "CN") == code


def test_tax_id_normalizes_before_checking() -> None:
    assert run("tax_id", " 9135 0100-M000 100y43 ", "CN") == "91350100M000100Y43"
    assert run("tax_id", "９１３５０１００Ｍ０００１００Ｙ４３", "CN") == "91350100M000100Y43"
    assert run("tax_id", "91350100\u3000M000100Y43", {"country": "cn"}) == "91350100M000100Y43"


@given(st.text(alphabet=USCC_CHARSET, min_size=17, max_size=17))
def test_tax_id_accepts_every_code_with_the_right_check_char(body: str) -> None:
    code = body + reference_check_char(body)
    assert run("tax_id", code, "CN") == code
    wrong = next(c for c in USCC_CHARSET if c != code[17])
    fails("tax_id", body + wrong, "CN", match="check character")


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("91350100M000100Y44", "check character is wrong"),
        ("91350100M000100Y4", "must have 18 characters"),
        ("91350100M000100Y433", "must have 18 characters"),
        ("91350100M00010OY43", "'O' is not allowed"),
        ("91350100M000100I43", "'I' is not allowed"),
        ("9135010０M000100Z43", "'Z' is not allowed"),
        ("统一社会信用代码统一社会信用代码统一", "is not allowed"),
        # Early pilot codes (Fujian, before GB 32100-2015) are legal but fail the check
        # character; the transform follows the standard and rejects them.
        ("91350100M0001TGQXM", "check character is wrong"),
    ],
)
def test_tax_id_rejects_bad_cn_codes(value: str, reason: str) -> None:
    assert reason in str(fails("tax_id", value, "CN"))


def test_tax_id_other_countries_only_normalize() -> None:
    assert run("tax_id", "de 123-456 789") == "DE123456789"
    assert run("tax_id", "ＤＥ１２３４５６７８９", "DE") == "DE123456789"
    assert run("tax_id", "91350100M000100Y44") == "91350100M000100Y44"  # no country, no check
    assert run("tax_id", "12–34—56") == "123456"
    assert run("tax_id", 123456789, "US") == "123456789"
    assert run("tax_id", " - ") is None


def test_tax_id_rejects_non_text() -> None:
    for value in (True, 1.5, [], {}):
        fails("tax_id", value, "CN", match="expected text")


# --- lists ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "args", "expected"),
    [
        ("a, b ,c", None, ["a", "b", "c"]),
        ("a,,b, ,", None, ["a", "b"]),
        ("红色，蓝色、绿色", None, ["红色", "蓝色", "绿色"]),
        ("a，b,c、d", ",", ["a", "b", "c", "d"]),
        ("", None, []),
        ("   ", None, []),
        ("single", None, ["single"]),
        ("a;b，c", ";", ["a", "b，c"]),
        ("a | b||c", "|", ["a", "b", "c"]),
        ("a  b", " ", ["a", "b"]),
        ("a::b", "::", ["a", "b"]),
    ],
)
def test_split(value: str, args: Any, expected: list[str]) -> None:
    assert run("split", value, args) == expected


@pytest.mark.parametrize(
    ("value", "args", "expected"),
    [
        (["a", "b"], None, "a,b"),
        (["a", None, "", "b"], None, "a,b"),
        ([1, 2.5, True, Decimal("1.50")], ";", "1;2.5;true;1.50"),
        ([], None, ""),
        (("x", "y"), " ", "x y"),
        (["红色", "蓝色"], "、", "红色、蓝色"),
        (["a", "b"], "", "ab"),
    ],
)
def test_join(value: Any, args: Any, expected: str) -> None:
    assert run("join", value, args) == expected


def test_split_and_join_reject_wrong_types() -> None:
    fails("split", ["a", "b"], match="expected text")
    fails("split", 12, match="expected text")
    fails("join", "a,b", match="expected a list")
    fails("join", [["a"]], match="cannot turn")
    fails("join", [{"a": 1}], match="cannot turn")


def test_coalesce() -> None:
    assert run("coalesce", [None, "", "x", "y"]) == "x"
    assert run("coalesce", [0, "x"]) == 0
    assert run("coalesce", [False, "x"]) is False  # only None and "" are missing
    assert run("coalesce", [" ", "x"]) == " "
    assert run("coalesce", [None, ""]) is None
    assert run("coalesce", []) is None
    fails("coalesce", "x", match="expected a list")


def test_first() -> None:
    assert run("first", [7, "Acme"]) == 7
    assert run("first", []) is None
    assert run("first", [None, 1]) is None
    assert run("first", ("a",)) == "a"
    fails("first", "abc", match="expected a list")
    fails("first", {"a": 1}, match="expected a list")


def test_wrap_each() -> None:
    fn = build("wrap_each", [0, 0])
    assert fn([{"name": "x"}, {"name": "y"}]) == [[0, 0, {"name": "x"}], [0, 0, {"name": "y"}]]
    assert fn([]) == []
    assert build("wrap_each", {"prefix": []})([1]) == [[1]]
    # results are fresh lists: mutating one must not leak into the next
    first, second = fn([1, 2])
    first.append("x")
    assert second == [0, 0, 2]
    fails("wrap_each", "x", [0, 0], match="expected a list")


def test_unwrap_each() -> None:
    pairs = [[7, "Acme"], [8, "Globex"]]
    assert run("unwrap_each", pairs) == ["Acme", "Globex"]
    assert run("unwrap_each", pairs, 0) == [7, 8]
    assert run("unwrap_each", [(1, 2)], {"index": 1}) == [2]
    assert run("unwrap_each", []) == []
    fails("unwrap_each", [[7, "Acme"], 8], match="not a list of lists")
    fails("unwrap_each", [[7], []], 0, match="without a position 0")
    fails("unwrap_each", [[7]], 1, match="without a position 1")
    fails("unwrap_each", "ab", match="expected a list")


# --- bad data only ever raises TransformError -------------------------------------------------

ARGUMENT_VARIANTS: dict[str, list[Any]] = {
    "trim": [None], "lower": [None], "upper": [None], "collapse_spaces": [None],
    "halfwidth": [None], "truncate": [3], "string": [None], "integer": [None],
    "decimal": [None, {"places": 2, "rounding": "half_even"}], "float": [None],
    "boolean": [None], "not": [None],
    "parse_datetime": [None, SHANGHAI, "epoch_ms", "epoch_s", "%Y-%m-%d %H:%M:%S",
                       "%Y-%m-%dT%H:%M:%S%z"],
    "format_datetime": [None, {"tz": "America/New_York"}, "epoch_ms", "epoch_s", "%d/%m/%Y %H:%M"],
    "parse_date": [None, "%d/%m/%Y"], "format_date": [None, "iso"],
    "phone_e164": [None, "CN"], "email": [None], "tax_id": [None, "CN"],
    "split": [None, ";"], "join": [None, " "], "coalesce": [None], "first": [None],
    "wrap_each": [[0, 0]], "unwrap_each": [None, 0],
}  # fmt: skip


class BrokenRepr:
    def __repr__(self) -> str:
        raise RuntimeError("no repr")


GARBAGE: list[Any] = [
    True, False, 0, -1, 10**5000, -(10**5000), 1.5, -0.0, 1e308, float("nan"), float("inf"),
    Decimal("NaN"), Decimal("sNaN"), Decimal("-Infinity"), Decimal("1E+999999"),
    Decimal("1E-999999"), "", " ", "\u3000", "\x00", "\ud800", "🙂", "x" * 1_000_000,
    "9" * 1_000_000, "1e999999999", "NaN", "-", "+", ".", ",", "，", "@", "1,23", "１２３",
    "2024-13-01", "9999-12-31T23:59:59-14:00", "0001-01-01T00:00:00+14:00", [], [None],
    [None, ""], [[1, 2], [3]], [[]], [{"a": 1}], {}, {"a": 1}, (1, 2), {1, 2}, b"bytes",
    object(), BrokenRepr(), date(1, 1, 1), datetime(9999, 12, 31, 23, 59),
    datetime(1, 1, 1, tzinfo=timezone(timedelta(hours=14))),
]  # fmt: skip

CASES = [(name, args) for name in sorted(ARGUMENT_VARIANTS) for args in ARGUMENT_VARIANTS[name]]


def test_garbage_matrix_covers_every_transform() -> None:
    assert set(ARGUMENT_VARIANTS) == set(REGISTRY)


def check_only_transform_errors(fn: transforms.TransformFn, value: Any) -> None:
    try:
        fn(value)
    except TransformError as exc:
        assert str(exc)
        assert len(str(exc)) < 200


@pytest.mark.parametrize(("name", "args"), CASES)
def test_garbage_raises_only_transform_error(name: str, args: Any) -> None:
    fn = build(name, args)
    for value in GARBAGE:
        check_only_transform_errors(fn, value)


json_like = st.recursive(
    st.booleans()
    | st.integers()
    | st.floats()
    | st.decimals()
    | st.text()
    | st.sampled_from(["1,234.5", "2024-05-01T08:00:00+0800", "１２", "是", "a@b.c", "+86 138"]),
    lambda inner: st.lists(inner, max_size=3)
    | st.dictionaries(st.text(max_size=3), inner, max_size=3),
    max_leaves=6,
)


@settings(max_examples=300)
@given(st.sampled_from(CASES), json_like)
def test_arbitrary_values_raise_only_transform_error(case: tuple[str, Any], value: Any) -> None:
    name, args = case
    check_only_transform_errors(build(name, args), value)


@settings(max_examples=300)
@given(st.sampled_from(sorted(REGISTRY)), st.none() | json_like)
def test_arbitrary_arguments_raise_only_rule_error(name: str, args: Any) -> None:
    try:
        fn = build(name, args)
    except RuleError as exc:
        assert str(exc).startswith(("transform ", "unknown transform"))
    else:
        assert callable(fn)
