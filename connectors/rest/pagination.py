"""Where a pull is, and how it moves on: time values, resumable cursors and the six paging styles.

A generic server can only be trusted to filter `modified >= value` (some only `>`, which
`lookback` covers). So the hub's cursor is the newest `(modification time, id)` it has
seen, and a pull skips every record at or before it: records sharing the cursor's
timestamp are told apart by id. That needs ids that sort the same way every time — the
connector compares ids as numbers when both are whole numbers, otherwise as text — and a
list sorted by modification time, then id (`sorted: false` when it is not: then only the
last page of a pull moves the cursor).

Times are kept as integer microseconds since the epoch, UTC, so that cursors compare
exactly whatever format the server writes.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone, tzinfo
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import requests

from connectors.base import ConnectorError, Unavailable
from connectors.rest.paths import DeclarationError, Expr, search_list, set_dotted

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_CURSOR_VERSION = "v1"

# --- time values ---------------------------------------------------------------------------


def zone(name: str, setting: str) -> tzinfo:
    """A time zone by IANA name or fixed offset (+08:00)."""
    if name.upper() == "UTC":
        return UTC
    if name[:1] in "+-" and len(name) == 6:
        sign = -1 if name[0] == "-" else 1
        return timezone(sign * timedelta(hours=int(name[1:3]), minutes=int(name[4:6])))
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise DeclarationError(f"{setting}: unknown time zone {name!r}") from None


@dataclass(frozen=True)
class TimeFormat:
    """How one server writes a time: iso8601, epoch_seconds, epoch_ms or a strftime format."""

    format: str = "iso8601"
    tz: tzinfo = UTC

    def parse(self, value: Any) -> int | None:
        """Microseconds since the epoch, or None for an empty or unreadable value."""
        if value is None or value == "" or isinstance(value, bool):
            return None
        try:
            if self.format in ("epoch_seconds", "epoch_ms"):
                scale = 1_000_000 if self.format == "epoch_seconds" else 1_000
                return round(float(value) * scale)
            if self.format == "iso8601":
                moment = datetime.fromisoformat(str(value).strip())
            else:
                moment = datetime.strptime(str(value).strip(), self.format)
        except (TypeError, ValueError, OverflowError):
            return None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=self.tz)
        return micros(moment)

    def format_value(self, us: int) -> str:
        """The time `us` as this server reads it, rounded down (a `>=` filter then includes it)."""
        if self.format == "epoch_seconds":
            return str(us // 1_000_000)
        if self.format == "epoch_ms":
            return str(us // 1_000)
        moment = (_EPOCH + timedelta(microseconds=us)).astimezone(self.tz)
        if self.format == "iso8601":
            text = moment.isoformat(timespec="milliseconds" if us % 1000 == 0 else "microseconds")
            return text[:-6] + "Z" if text.endswith("+00:00") else text
        return moment.strftime(self.format)


def micros(moment: datetime) -> int:
    delta = moment - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


# --- cursors -------------------------------------------------------------------------------


def id_order(value: Any) -> tuple[int, int, str]:
    """How ids sort: whole numbers numerically (9 < 10), everything else as text after them."""
    text = str(value)
    if text.isdigit() or (text[:1] == "-" and text[1:].isdigit()):
        return (0, int(text), "")
    return (1, 0, text)


@dataclass(frozen=True)
class Position:
    """A record's place in the pull order: modification time, then id."""

    us: int
    id: str

    def key(self) -> tuple[int, tuple[int, int, str]]:
        return (self.us, id_order(self.id))

    def encode(self) -> str:
        return f"{_CURSOR_VERSION}:{self.us}:{self.id}"

    @staticmethod
    def decode(cursor: str | None) -> Position | None:
        if not cursor:
            return None
        version, _, rest = cursor.partition(":")
        us, _, rid = rest.partition(":")
        if version != _CURSOR_VERSION or not us.lstrip("-").isdigit():
            raise ConnectorError(f"rest: cursor {cursor[:40]!r} was not written by this connector")
        return Position(int(us), rid)


# --- paging --------------------------------------------------------------------------------

STYLES = ("page", "offset", "cursor", "next_url", "link_header", "none")


@dataclass(frozen=True)
class Paging:
    style: str
    page_param: str | None = None
    first_page: int = 1
    offset_param: str | None = None
    cursor_param: str | None = None
    next_cursor: Expr | None = None
    next_url: Expr | None = None


@dataclass(frozen=True)
class ListSpec:
    """The list endpoint of one object, as declared under `objects.<name>.list`."""

    path: str
    paging: Paging
    method: str = "GET"
    params: dict[str, Any] = field(default_factory=dict)
    body: dict[str, Any] = field(default_factory=dict)
    records: Expr | None = None
    page_size: int = 100
    page_size_param: str | None = None
    sorted: bool = True


Send = Callable[..., requests.Response]  # HttpClient.send


class Lister:
    """Walks one list endpoint page by page (see the module docstring for the styles)."""

    def __init__(self, send: Send, spec: ListSpec, base_url: str, what: str) -> None:
        self.send = send
        self.spec = spec
        self.origin = _origin(base_url)
        self.what = what

    def pages(self, filters: dict[str, Any]) -> Iterator[list[dict[str, Any]]]:
        """Every page of records matching `filters` (the since parameter), in the server's order."""
        style = self.spec.paging.style
        walk = {"page": self._numbered, "offset": self._numbered, "cursor": self._cursor,
                "next_url": self._linked, "link_header": self._linked, "none": self._single}[style]
        yield from walk(filters)

    # one call

    def _call(self, params: dict[str, Any]) -> requests.Response:
        spec = self.spec
        if spec.page_size_param:
            params = {spec.page_size_param: spec.page_size, **params}
        if spec.method == "GET":
            return self.send("GET", spec.path, params={**spec.params, **params})
        body = copy.deepcopy(spec.body)
        for name, value in params.items():
            set_dotted(body, name, value)
        return self.send(spec.method, spec.path, params=spec.params or None, json=body)

    def _records(self, answer: Any) -> list[dict[str, Any]]:
        records = search_list(self.spec.records, answer, f"{self.what}.list.records")
        return [r for r in records if isinstance(r, dict)]

    # styles

    def _single(self, filters: dict[str, Any]) -> Iterator[list[dict[str, Any]]]:
        yield self._records(_json(self._call(filters), self.what))

    def _numbered(self, filters: dict[str, Any]) -> Iterator[list[dict[str, Any]]]:
        paging, size = self.spec.paging, self.spec.page_size
        number, offset = paging.first_page, 0
        previous: list[dict[str, Any]] | None = None
        while True:
            position = {paging.page_param: number} if paging.style == "page" else {paging.offset_param: offset}
            records = self._records(_json(self._call({**filters, **position}), self.what))
            if records and records == previous:
                raise ConnectorError(f"{self.what}: the list answers the same page twice: check pagination settings")
            yield records
            if len(records) < size or not records:
                return
            previous = records
            number += 1
            offset += len(records)

    def _cursor(self, filters: dict[str, Any]) -> Iterator[list[dict[str, Any]]]:
        paging = self.spec.paging
        token: Any = None
        seen: set[str] = set()
        while True:
            params = dict(filters) if token is None else {**filters, str(paging.cursor_param): token}
            answer = _json(self._call(params), self.what)
            records = self._records(answer)
            yield records
            token = paging.next_cursor.search(answer) if paging.next_cursor else None
            if token in (None, "", False) or not records:
                return
            if str(token) in seen:
                raise ConnectorError(f"{self.what}: the list answers the same next cursor twice")
            seen.add(str(token))

    def _linked(self, filters: dict[str, Any]) -> Iterator[list[dict[str, Any]]]:
        response = self._call(filters)
        seen: set[str] = set()
        while True:
            answer = _json(response, self.what)
            records = self._records(answer)
            yield records
            url = self._next_url(response, answer)
            if not url or not records:
                return
            if url in seen:
                raise ConnectorError(f"{self.what}: the list answers the same next URL twice")
            seen.add(url)
            response = self.send("GET", url)

    def _next_url(self, response: requests.Response, answer: Any) -> str | None:
        paging = self.spec.paging
        if paging.style == "link_header":
            url = response.links.get("next", {}).get("url")
        else:
            url = paging.next_url.search(answer) if paging.next_url else None
        if not url or not isinstance(url, str):
            return None
        absolute = requests.compat.urljoin(response.url, url)
        if _origin(absolute) != self.origin:
            # following it would send our credentials to another host
            raise ConnectorError(f"{self.what}: the next page is on another host ({_origin(absolute)}); refused")
        return absolute


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()


def _json(response: requests.Response, what: str) -> Any:
    try:
        return response.json()
    except (ValueError, RecursionError):
        raise Unavailable(f"{what}: the list answer is not JSON") from None
