"""The value transforms that mappings name (`transform: [trim, {decimal: {places: 2}}]`).

A mapping is compiled once and then run over every record, so each transform is a factory:
`build()` validates the arguments up front (a typo is a `RuleError` at `synchub check`, not a
failure on record 10,000) and returns a closure that does only per-value work.

Closures receive one non-empty value. Bad data is reported by raising `TransformError` with a
short sentence naming the value; no other exception may escape, because the engine turns
`TransformError` into a field error and keeps the batch going, while anything else would be
taken for a bug. A closure may return None to mean "no value": the parsers (numbers, booleans,
dates, phones, e-mails, tax ids) do so for blank text, which is absence rather than bad data.
"""

from __future__ import annotations

import inspect
import math
import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import (
    ROUND_CEILING,
    ROUND_DOWN,
    ROUND_FLOOR,
    ROUND_HALF_DOWN,
    ROUND_HALF_EVEN,
    ROUND_HALF_UP,
    ROUND_UP,
    Context,
    Decimal,
    DecimalException,
)
from typing import Any, NoReturn, TypeVar
from zoneinfo import ZoneInfo, available_timezones

import phonenumbers

from hub.errors import RuleError, TransformError, show
from hub.suggest import did_you_mean

TransformFn = Callable[[Any], Any]
F = TypeVar("F", bound=Callable[..., TransformFn])


@dataclass(frozen=True)
class TransformSpec:
    """What the compiler needs to check a rule's arguments before calling the factory."""

    name: str
    factory: Callable[..., TransformFn]
    params: tuple[str, ...]
    required: tuple[str, ...]


REGISTRY: dict[str, TransformSpec] = {}


def transform(name: str) -> Callable[[F], F]:
    """Register a factory; its signature is the argument contract checked by `build`."""

    def register(factory: F) -> F:
        if name in REGISTRY:
            raise ValueError(f"transform {name!r} is registered twice")
        parameters = inspect.signature(factory).parameters.values()
        params = tuple(p.name for p in parameters)
        required = tuple(p.name for p in parameters if p.default is inspect.Parameter.empty)
        REGISTRY[name] = TransformSpec(name, factory, params, required)
        return factory

    return register


def build(name: str, args: Any = None) -> TransformFn:
    """Compile one transform, turning every way a rule can be wrong into a `RuleError`.

    `args` is what follows the name in YAML: nothing, a dict of keyword arguments, or a single
    value for the first parameter (`{split: ","}`, `{wrap_each: [0, 0]}`).
    """
    spec = REGISTRY.get(name) if isinstance(name, str) else None
    if spec is None:
        hint = did_you_mean(name, REGISTRY) if isinstance(name, str) else ""
        raise RuleError(f"unknown transform {show(name)}{hint}")
    kwargs = _bind(spec, args)
    try:
        return spec.factory(**kwargs)
    except RuleError as exc:
        raise RuleError(f"transform {name!r}: {exc}") from None


def names() -> list[str]:
    """Registered names, sorted, for help texts and suggestions."""
    return sorted(REGISTRY)


def _bind(spec: TransformSpec, args: Any) -> dict[str, Any]:
    """Map YAML arguments onto the factory's parameters, or explain why they do not fit."""
    if args is None:
        kwargs: dict[str, Any] = {}
    elif isinstance(args, dict):
        kwargs = dict(args)
        for key in kwargs:
            if key not in spec.params:
                hint = did_you_mean(key, spec.params) if isinstance(key, str) else ""
                raise RuleError(f"transform {spec.name!r}: unknown argument {show(key)}{hint}")
    elif not spec.params:
        raise RuleError(f"transform {spec.name!r} takes no arguments, got {show(args)}")
    else:
        kwargs = {spec.params[0]: args}
    missing = [p for p in spec.required if p not in kwargs]
    if missing:
        raise RuleError(f"transform {spec.name!r}: missing argument {missing[0]!r}")
    return kwargs


# --- shared helpers ---------------------------------------------------------------------------

def _fail(value: object, reason: str) -> NoReturn:
    raise TransformError(f"{show(value)} {reason}")


def _not_text(value: object) -> TransformError:
    return TransformError(f"expected text, got {show(value)}")


def _not_list(value: object) -> TransformError:
    return TransformError(f"expected a list, got {show(value)}")


def _clean(text: str) -> str:
    """Trim, and fold full-width forms only when needed: most vendor data is plain ASCII."""
    text = text.strip()
    if not text.isascii():
        text = unicodedata.normalize("NFKC", text).strip()
    return text


def _is_int(value: object) -> bool:
    """bool is an int subclass; `True` must never be read as 1."""
    return isinstance(value, int) and not isinstance(value, bool)


# --- text -------------------------------------------------------------------------------------


@transform("trim")
def _trim() -> TransformFn:
    """str.strip already covers U+3000 and the other Unicode spaces CJK sources pad with."""

    def run(value: Any) -> str:
        if isinstance(value, str):
            return value.strip()
        raise _not_text(value)

    return run


@transform("lower")
def _lower() -> TransformFn:
    def run(value: Any) -> str:
        if isinstance(value, str):
            return value.lower()
        raise _not_text(value)

    return run


@transform("upper")
def _upper() -> TransformFn:
    def run(value: Any) -> str:
        if isinstance(value, str):
            return value.upper()
        raise _not_text(value)

    return run


@transform("collapse_spaces")
def _collapse_spaces() -> TransformFn:
    """split() with no separator treats any Unicode whitespace run as one break, and trims."""

    def run(value: Any) -> str:
        if isinstance(value, str):
            return " ".join(value.split())
        raise _not_text(value)

    return run


@transform("halfwidth")
def _halfwidth() -> TransformFn:
    """NFKC rather than a hand-made table: it is the standard folding for full-width forms.

    NFKC also folds compatibility characters such as `①` to `1` and `㈱` to `(株)`, and turns
    half-width katakana into the usual full-width ones, which is what matching needs.
    """

    def run(value: Any) -> str:
        if isinstance(value, str):
            return unicodedata.normalize("NFKC", value)
        raise _not_text(value)

    return run


@transform("truncate")
def _truncate(length: int) -> TransformFn:
    """Vendors reject over-long fields outright; cutting is the mapping author's explicit choice."""
    if not _is_int(length) or length < 0:
        raise RuleError(f"length must be a whole number >= 0, got {show(length)}")

    def run(value: Any) -> str:
        if isinstance(value, str):
            return value[:length]
        raise _not_text(value)

    return run


# --- numbers ----------------------------------------------------------------------------------
#
# Numbers travel as exact decimal strings so that amounts never pick up binary float noise.
# Magnitudes are bounded: a 10**6-digit number is an attack or a bug, and printing one would
# trip Python's int-to-str limit or exhaust memory far away from the cause.

_MAX_ADJUSTED = 400  # |exponent of the leading digit|; every finite float fits (1e308, 5e-324)
_MAX_DIGITS = 1000  # digits in a number, and characters in a numeric string
_MAX_PLACES = 100
_INT_LIMIT = 10 ** (_MAX_ADJUSTED + 1)
# Precision above any number that passes the bounds, so that normalize(), quantize() and
# the epoch arithmetic never round silently.
_EXACT = Context(prec=_MAX_DIGITS + _MAX_PLACES + 100)

# Plain or exponent notation, or comma-grouped thousands (`1,234,567.5`); nothing else.
_NUMBER_TEXT = re.compile(
    r"[+-]?(?:[0-9]{1,3}(?:,[0-9]{3})+(?:\.[0-9]*)?"
    r"|(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?)"
)


def _decimal_from_text(value: str) -> Decimal | None:
    """Read a decimal string strictly: `1,234.5` and `１２３` yes, `1.234,5`, `$5`, `1_000` no."""
    text = _clean(value)
    if not text:
        return None
    if len(text) > _MAX_DIGITS or not _NUMBER_TEXT.fullmatch(text):
        _fail(value, "is not a decimal number")
    try:
        number = Decimal(text.replace(",", "") if "," in text else text)
    except DecimalException:  # an exponent beyond what the decimal module can hold
        _fail(value, "is out of the supported number range")
    return _in_range(number, value)


def _in_range(number: Decimal, original: object) -> Decimal:
    if number and abs(number.adjusted()) > _MAX_ADJUSTED:
        _fail(original, "is out of the supported number range")
    return number


def _bounded(number: Decimal, original: object) -> Decimal:
    """Decimal objects can hold anything, including NaN and a million digits."""
    if not number.is_finite():
        _fail(original, "is not a finite number")
    if len(number.as_tuple().digits) > _MAX_DIGITS:
        _fail(original, "is out of the supported number range")
    return _in_range(number, original)


def _int_decimal(value: int) -> Decimal:
    if -_INT_LIMIT < value < _INT_LIMIT:
        return Decimal(value)
    _fail(value, "is out of the supported number range")


def _float_decimal(value: float) -> Decimal:
    """Through repr, the shortest text that reads back as the same float: 19.9 stays 19.9."""
    if not math.isfinite(value):
        _fail(value, "is not a finite number")
    return Decimal(repr(value))


def _to_decimal(value: Any) -> Decimal | None:
    """Any numeric input as an exact Decimal, or None for blank text."""
    if isinstance(value, str):
        return _decimal_from_text(value)
    if isinstance(value, bool):
        _fail(value, "is not a number")
    if isinstance(value, int):
        return _int_decimal(value)
    if isinstance(value, float):
        return _float_decimal(value)
    if isinstance(value, Decimal):
        return _bounded(value, value)
    _fail(value, "is not a number")


def _plain(number: Decimal) -> str:
    """Fixed-point text, never `1E+2`: vendors and humans both misread exponents in amounts."""
    if number.is_zero():
        number = number.copy_abs()  # "-0" and "-0.00" are zero for every consumer
    return format(number, "f")


def _normalized(number: Decimal) -> Decimal:
    return number.normalize(_EXACT)


@transform("string")
def _string() -> TransformFn:
    """One text form per value, so that outbound text fields are predictable across sources."""

    def run(value: Any) -> str:
        if isinstance(value, str):
            return value
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, int):
            return _plain(_int_decimal(value))
        if isinstance(value, float):
            return _plain(_normalized(_float_decimal(value)))
        if isinstance(value, Decimal):
            return _plain(_bounded(value, value))  # exact digits kept: 1.50 stays "1.50"
        if isinstance(value, (date, datetime)):
            return value.isoformat()  # YAML reads an unquoted `const: 2024-05-01` as a date
        raise TransformError(f"cannot turn {show(value)} into text")

    return run


@transform("integer")
def _integer() -> TransformFn:
    """Whole numbers only: silently dropping `.5` would change an amount or a quantity."""

    def run(value: Any) -> int | None:
        if _is_int(value):
            return int(_int_decimal(value))
        number = _to_decimal(value)
        if number is None:
            return None
        if number != number.to_integral_value():
            _fail(value, "is not a whole number")
        return int(number)

    return run


_ROUNDING = {
    "half_up": ROUND_HALF_UP,
    "half_even": ROUND_HALF_EVEN,
    "half_down": ROUND_HALF_DOWN,
    "down": ROUND_DOWN,
    "up": ROUND_UP,
    "floor": ROUND_FLOOR,
    "ceiling": ROUND_CEILING,
}
@transform("decimal")
def _decimal(places: int | None = None, rounding: str = "half_up") -> TransformFn:
    """Exact decimal strings: amounts compare and sum without float error on every side."""
    if places is not None and (not _is_int(places) or not 0 <= places <= _MAX_PLACES):
        limit = f"from 0 to {_MAX_PLACES}"
        raise RuleError(f"places must be a whole number {limit}, got {show(places)}")
    if not isinstance(rounding, str) or rounding not in _ROUNDING:
        hint = did_you_mean(rounding, _ROUNDING) if isinstance(rounding, str) else ""
        choices = ", ".join(_ROUNDING)
        raise RuleError(f"unknown rounding {show(rounding)}{hint}; use one of {choices}")
    if places is None:
        return _decimal_normalized()
    return _decimal_quantized(Decimal(1).scaleb(-places), _ROUNDING[rounding])


def _decimal_normalized() -> TransformFn:
    """Trailing zeros dropped, so `1234.50` and `1234.5` from two systems compare equal."""

    def run(value: Any) -> str | None:
        number = _to_decimal(value)
        return None if number is None else _plain(_normalized(number))

    return run


def _decimal_quantized(quantum: Decimal, rounding: str) -> TransformFn:
    def run(value: Any) -> str | None:
        number = _to_decimal(value)
        if number is None:
            return None
        return _plain(number.quantize(quantum, rounding=rounding, context=_EXACT))

    return run


@transform("float")
def _float() -> TransformFn:
    """For wire formats that insist on JSON numbers; canonical data keeps decimal strings.

    A double holds 15 to 17 significant digits, so `99999999999999.99` would travel as
    `...98`: a value that does not survive the trip is an error, not a silently changed cent.
    Round it first (`{decimal: {places: 2}}`) if fewer digits are acceptable.
    """

    def run(value: Any) -> float | None:
        number = _to_decimal(value)
        if number is None:
            return None
        result = float(number)
        if math.isinf(result):
            _fail(value, "is too large for a floating-point number")
        nearest = repr(result)
        if Decimal(nearest) != number:
            _fail(value, f"has too many digits for a floating-point number (nearest: {nearest})")
        return result

    return run


# --- booleans ---------------------------------------------------------------------------------

_BOOLEAN_WORDS = {
    **dict.fromkeys(("true", "yes", "y", "on", "1", "t", "是", "真"), True),
    **dict.fromkeys(("false", "no", "n", "off", "0", "f", "否", "假"), False),
}


@transform("boolean")
def _boolean() -> TransformFn:
    """A closed list of spellings: `"N/A"` or `2` is an error, not a guess either way."""

    def run(value: Any) -> bool | None:
        if isinstance(value, bool):
            return value
        if _is_int(value):
            if value in (0, 1):
                return bool(value)
        elif isinstance(value, str):
            text = _clean(value).casefold()
            if not text:
                return None
            if text in _BOOLEAN_WORDS:
                return _BOOLEAN_WORDS[text]
        _fail(value, "is not a yes/no value")

    return run


@transform("not")
def _not() -> TransformFn:
    """Strict about its input so that `not` of the string "false" cannot quietly yield False."""

    def run(value: Any) -> bool:
        if isinstance(value, bool):
            return not value
        raise TransformError(f"expected a boolean, got {show(value)} (apply 'boolean' first)")

    return run


# --- dates and times --------------------------------------------------------------------------
#
# Canonical datetimes are UTC strings, `2024-05-01T08:00:00Z` (with `.ffffff` only when there
# are microseconds), so that every system's timestamps compare as plain strings.
#
# A local time without an offset that a DST change skips or repeats follows PEP 495 with
# fold=0: a skipped time (02:30 on a spring-forward day) is read with the offset in force
# before the gap, and a repeated time (01:30 on a fall-back day) as its first occurrence.

_UTC = UTC
_EPOCH = datetime(1970, 1, 1, tzinfo=_UTC)
_DATETIME_KEYWORDS = ("iso", "epoch_ms", "epoch_s")
_EPOCH_SCALE = {"epoch_ms": Decimal(1000), "epoch_s": Decimal(1_000_000)}  # to microseconds
_EPOCH_UNIT = {"epoch_ms": timedelta(milliseconds=1), "epoch_s": timedelta(seconds=1)}
_SAMPLE = datetime(2001, 2, 3, 4, 5, 6, 7, tzinfo=_UTC)


def _zone(tz: Any) -> ZoneInfo:
    if isinstance(tz, str) and tz:
        try:
            return ZoneInfo(tz)
        except (KeyError, ValueError, OSError):  # not found, not a normalized key, a directory
            hint = did_you_mean(tz, available_timezones())
            raise RuleError(f"unknown time zone {tz!r}{hint}") from None
    raise RuleError(f"tz must be a time zone name such as 'Asia/Shanghai', got {show(tz)}")


def _format(fmt: Any, keywords: tuple[str, ...]) -> str:
    """A keyword or a %-pattern; a bare word like `isoo` is a typo, not a literal pattern."""
    if isinstance(fmt, str) and (fmt in keywords or "%" in fmt):
        return fmt
    hint = did_you_mean(fmt, keywords) if isinstance(fmt, str) else ""
    allowed = ", ".join(keywords)
    raise RuleError(f"format must be {allowed} or a %-pattern, got {show(fmt)}{hint}")


def _check_strptime(fmt: str) -> None:
    """Round-trip a sample so that a bad directive (`%Q`, `%-d`) fails at check time."""
    try:
        datetime.strptime(_SAMPLE.strftime(fmt), fmt)
    except ValueError as exc:
        raise RuleError(f"format {fmt!r} cannot be parsed: {exc}") from None


def _check_strftime(fmt: str) -> None:
    """Some platforms refuse a malformed pattern (a lone `%`); find out at check time."""
    try:
        _SAMPLE.strftime(fmt)
    except ValueError as exc:
        raise RuleError(f"format {fmt!r} cannot be used: {exc}") from None


def _canonical(moment: datetime, zone: ZoneInfo, original: object) -> str:
    """Naive values are wall-clock time in `zone`; the result is always UTC."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=zone)
    try:
        utc = moment.astimezone(_UTC)
    except (OverflowError, ValueError):
        _fail(original, "is outside the supported date range")
    return utc.replace(tzinfo=None).isoformat() + "Z"


@transform("parse_datetime")
def _parse_datetime(format: str = "iso", tz: str = "UTC") -> TransformFn:  # noqa: A002
    """Every vendor timestamp to one UTC form, so ordering and change detection just work."""
    fmt = _format(format, _DATETIME_KEYWORDS)
    zone = _zone(tz)
    read: Callable[[Any], datetime | None]
    if fmt == "iso":
        read = _iso_reader("a datetime in format iso")
    elif fmt in _EPOCH_SCALE:
        read = _epoch_reader(_EPOCH_SCALE[fmt])
    else:
        _check_strptime(fmt)
        read = _strptime_reader(fmt)

    def run(value: Any) -> str | None:
        if isinstance(value, datetime):
            moment: datetime | None = value
        elif isinstance(value, date):  # YAML reads an unquoted 2024-05-01 as a date
            moment = datetime(value.year, value.month, value.day)
        else:
            moment = read(value)
        return None if moment is None else _canonical(moment, zone, value)

    return run


def _iso_reader(what: str) -> Callable[[Any], datetime | None]:
    """Python 3.11's fromisoformat takes `+0000`, `Z`, a space separator and bare dates."""

    def read(value: Any) -> datetime | None:
        if not isinstance(value, str):
            raise _not_text(value)
        text = _clean(value)
        if not text:
            return None
        try:
            return datetime.fromisoformat(text)
        except ValueError:
            _fail(value, f"is not {what}")

    return read


def _epoch_reader(scale: Decimal) -> Callable[[Any], datetime | None]:
    """Counted in exact microseconds: a float timestamp must not drift by a microsecond."""

    def read(value: Any) -> datetime | None:
        number = _to_decimal(value)
        if number is None:
            return None
        try:
            micros = int((number * scale).to_integral_value(context=_EXACT))
            return _EPOCH + timedelta(microseconds=micros)
        except (OverflowError, DecimalException):
            _fail(value, "is outside the supported date range")

    return read


def _strptime_reader(fmt: str) -> Callable[[Any], datetime | None]:
    def read(value: Any) -> datetime | None:
        if not isinstance(value, str):
            raise _not_text(value)
        text = _clean(value)
        if not text:
            return None
        try:
            return datetime.strptime(text, fmt)
        except ValueError:
            _fail(value, f"is not a datetime in format {fmt!r}")

    return read


_read_iso_datetime = _iso_reader("an ISO datetime")


def _read_canonical(value: Any) -> datetime | None:
    """The hub's own datetimes, or any ISO text with an offset; naive means UTC."""
    moment = value if isinstance(value, datetime) else _read_iso_datetime(value)
    if moment is None or moment.tzinfo is not None:
        return moment
    return moment.replace(tzinfo=_UTC)


@transform("format_datetime")
def _format_datetime(format: str = "iso", tz: str = "UTC") -> TransformFn:  # noqa: A002
    """A canonical UTC datetime to the form and zone a vendor's API expects."""
    fmt = _format(format, _DATETIME_KEYWORDS)
    zone = _zone(tz)
    if fmt not in _DATETIME_KEYWORDS:
        _check_strftime(fmt)
    if fmt in _EPOCH_UNIT:
        unit = _EPOCH_UNIT[fmt]

        def write(moment: datetime) -> Any:
            return (moment - _EPOCH) // unit  # floor, also before 1970

    elif fmt == "iso":

        def write(moment: datetime) -> Any:
            return moment.astimezone(zone).isoformat()

    else:

        def write(moment: datetime) -> Any:
            return moment.astimezone(zone).strftime(fmt)

    def run(value: Any) -> Any:
        moment = _read_canonical(value)
        if moment is None:
            return None
        try:
            return write(moment)
        except (OverflowError, ValueError):
            _fail(value, "is outside the supported date range")

    return run


@transform("parse_date")
def _parse_date(format: str = "iso") -> TransformFn:  # noqa: A002
    """Dates carry no zone: a datetime keeps the calendar day it was written with."""
    fmt = _format(format, ("iso",))
    if fmt != "iso":
        _check_strptime(fmt)

    def run(value: Any) -> str | None:
        day = _read_date(value, fmt)
        return None if day is None else day.isoformat()

    return run


def _read_date(value: Any, fmt: str) -> date | None:
    if isinstance(value, date):  # datetime included: its date as written
        return value.date() if isinstance(value, datetime) else value
    if not isinstance(value, str):
        raise _not_text(value)
    text = _clean(value)
    if not text:
        return None
    try:
        if fmt != "iso":
            return datetime.strptime(text, fmt).date()
        try:
            return date.fromisoformat(text)
        except ValueError:
            return datetime.fromisoformat(text).date()
    except ValueError:
        label = fmt if fmt == "iso" else repr(fmt)
        _fail(value, f"is not a date in format {label}")


@transform("format_date")
def _format_date(format: str = "%Y-%m-%d") -> TransformFn:  # noqa: A002
    """The date part as written; use format_datetime with a tz for a local calendar day."""
    fmt = _format(format, ("iso",))
    if fmt != "iso":
        _check_strftime(fmt)

    def run(value: Any) -> str | None:
        day = _read_date(value, "iso")
        if day is None:
            return None
        try:
            return day.isoformat() if fmt == "iso" else day.strftime(fmt)
        except ValueError:
            _fail(value, f"cannot be written in format {fmt!r}")

    return run


# --- contact data -----------------------------------------------------------------------------

_PHONE_REASONS = {
    phonenumbers.NumberParseException.INVALID_COUNTRY_CODE: "has no valid country code",
    phonenumbers.NumberParseException.NOT_A_NUMBER: "is not a phone number",
    phonenumbers.NumberParseException.TOO_SHORT_AFTER_IDD: "is too short to be a phone number",
    phonenumbers.NumberParseException.TOO_SHORT_NSN: "is too short to be a phone number",
    phonenumbers.NumberParseException.TOO_LONG: "is too long to be a phone number",
}


@transform("phone_e164")
def _phone_e164(region: str | None = None) -> TransformFn:
    """E.164 is the one phone form every CRM accepts and that de-duplicates reliably.

    Numbers must be *possible* (right length for their country), not *valid* (in an allocated
    range): libphonenumber's allocation data ages, and rejecting a new mobile range would
    reject real customers.
    """
    if region is not None:
        region = _phone_region(region)

    def run(value: Any) -> str | None:
        if _is_int(value) and -_INT_LIMIT < value < _INT_LIMIT:
            value = str(value)
        if not isinstance(value, str):
            raise _not_text(value)
        text = _clean(value)
        if not text:
            return None
        try:
            number = phonenumbers.parse(text, region)
        except phonenumbers.NumberParseException as exc:
            reason = _PHONE_REASONS.get(exc.error_type, "is not a phone number")
            if region is None and exc.error_type == exc.INVALID_COUNTRY_CODE and text[0] != "+":
                reason = "has no country code and the rule sets no region"
            _fail(value, reason)
        except Exception:  # third-party parser fed arbitrary text: never let its bugs escape
            _fail(value, "is not a phone number")
        if not phonenumbers.is_possible_number(number):
            _fail(value, "is not a possible phone number")
        return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)

    return run


def _phone_region(region: Any) -> str:
    regions = phonenumbers.SUPPORTED_REGIONS
    if isinstance(region, str) and region.upper() in regions:
        return region.upper()
    hint = did_you_mean(region, regions) if isinstance(region, str) else ""
    raise RuleError(f"unknown phone region {show(region)}{hint}")


_MAX_EMAIL = 254  # RFC 5321 path limit


_WHITESPACE = re.compile(r"\s")  # what str.isspace() matches, found in one C call


@transform("email")
def _email() -> TransformFn:
    """A shape check, not RFC 5322: enough to catch phone numbers and typos in e-mail fields.

    Only the domain is lower-cased; the local part is case-sensitive by the RFCs.
    """

    def run(value: Any) -> str | None:
        if not isinstance(value, str):
            raise _not_text(value)
        text = _clean(value)
        if not text:
            return None
        local, at, domain = text.partition("@")
        labels = domain.split(".")
        if (
            len(text) > _MAX_EMAIL
            or not at
            or not local
            or "@" in domain
            or len(labels) < 2
            or not all(labels)
            or _WHITESPACE.search(text) is not None
        ):
            _fail(value, "is not an e-mail address")
        return f"{local}@{domain.lower()}"

    return run


# --- identifiers ------------------------------------------------------------------------------

_USCC_CHARSET = "0123456789ABCDEFGHJKLMNPQRTUWXY"  # GB 32100-2015: no I, O, S, V, Z
_USCC_VALUE = {c: i for i, c in enumerate(_USCC_CHARSET)}
_USCC_WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)
_TAX_ID_NOISE = re.compile(r"[\s\-\u2010-\u2015\u2212]+")  # spaces and every dash people type


def uscc_check_char(body: str) -> str:
    """The 18th character of a unified social credit code, from its first 17 (GB 32100-2015)."""
    total = sum(_USCC_VALUE[c] * w for c, w in zip(body, _USCC_WEIGHTS, strict=True))
    return _USCC_CHARSET[(31 - total % 31) % 31]


def _check_uscc(code: str, original: object) -> None:
    if len(code) != 18:
        _fail(original, "is not a unified social credit code (it must have 18 characters)")
    bad = next((c for c in code if c not in _USCC_VALUE), None)
    if bad is not None:
        _fail(original, f"is not a unified social credit code ({bad!r} is not allowed)")
    if uscc_check_char(code[:17]) != code[17]:
        _fail(original, "is not a unified social credit code (the check character is wrong)")


@transform("tax_id")
def _tax_id(country: str | None = None) -> TransformFn:
    """One spelling per tax id so that the same company from two systems links up.

    Only CN is validated; other countries are normalized, never rejected, since a wrong
    validator would block real customers.
    """
    if country is not None:
        if not isinstance(country, str) or not re.fullmatch(r"[A-Za-z]{2}", country):
            got = show(country)
            raise RuleError(f"country must be a two-letter ISO code such as 'CN', got {got}")
        country = country.upper()
    validate = country == "CN"

    def run(value: Any) -> str | None:
        if _is_int(value) and -_INT_LIMIT < value < _INT_LIMIT:
            value = str(value)
        if not isinstance(value, str):
            raise _not_text(value)
        code = _TAX_ID_NOISE.sub("", unicodedata.normalize("NFKC", value)).upper()
        if not code:
            return None
        if validate:
            _check_uscc(code, value)
        return code

    return run


# --- lists ------------------------------------------------------------------------------------

_LIST_SEPARATORS = re.compile("[,，、]")  # Chinese text separates lists with ， and 、


@transform("split")
def _split(sep: str = ",") -> TransformFn:
    """Multi-value text fields (tags, CC lists) to the lists canonical entities hold."""
    if not isinstance(sep, str) or not sep:
        raise RuleError(f"sep must be non-empty text, got {show(sep)}")
    cut: Callable[[str], list[str]] = (
        _LIST_SEPARATORS.split if sep == "," else lambda text: text.split(sep)
    )

    def run(value: Any) -> list[str]:
        if not isinstance(value, str):
            raise _not_text(value)
        return [part for part in (piece.strip() for piece in cut(value)) if part]

    return run


@transform("join")
def _join(sep: str = ",") -> TransformFn:
    """Items use the `string` forms, so a boolean joins as `true`, never Python's `True`."""
    if not isinstance(sep, str):
        raise RuleError(f"sep must be text, got {show(sep)}")
    text_of = _string()

    def run(value: Any) -> str:
        if not isinstance(value, (list, tuple)):
            raise _not_list(value)
        return sep.join(text_of(item) for item in value if not _is_blank(item))

    return run


def _is_blank(item: Any) -> bool:
    return item is None or (isinstance(item, str) and item == "")


@transform("coalesce")
def _coalesce() -> TransformFn:
    """Fallback chains like `from: [mobile, phone]`; only None and "" count as missing."""

    def run(value: Any) -> Any:
        if not isinstance(value, (list, tuple)):
            raise _not_list(value)
        return next((item for item in value if not _is_blank(item)), None)

    return run


@transform("first")
def _first() -> TransformFn:
    def run(value: Any) -> Any:
        if not isinstance(value, (list, tuple)):
            raise _not_list(value)
        return value[0] if value else None

    return run


@transform("wrap_each")
def _wrap_each(prefix: list[Any]) -> TransformFn:
    """Builds command tuples such as Odoo's `[0, 0, {...}]` (create a child record)."""
    if not isinstance(prefix, (list, tuple)):
        raise RuleError(f"prefix must be a list, got {show(prefix)}")
    head = list(prefix)

    def run(value: Any) -> list[list[Any]]:
        if not isinstance(value, (list, tuple)):
            raise _not_list(value)
        return [[*head, item] for item in value]

    return run


@transform("unwrap_each")
def _unwrap_each(index: int = -1) -> TransformFn:
    """Reads pairs such as Odoo's many2one `[7, "Acme"]`: index 0 is the id, -1 the name."""
    if not _is_int(index):
        raise RuleError(f"index must be a whole number, got {show(index)}")

    def run(value: Any) -> list[Any]:
        if not isinstance(value, (list, tuple)):
            raise _not_list(value)
        result = []
        for item in value:
            if not isinstance(item, (list, tuple)):
                _fail(value, f"is not a list of lists (item {show(item)})")
            if not -len(item) <= index < len(item):
                _fail(value, f"has an item without a position {index}: {show(item)}")
            result.append(item[index])
        return result

    return run
