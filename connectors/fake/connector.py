"""The fake vendor: records in a SQLite table (in memory or in a file), served as API calls.

One `_Store` is one vendor. It holds a `records` table (object, id, modstamp, key, data as
JSON text) and a `counters` table (the store-wide modstamp and one id sequence per object).
Every write runs in one `BEGIN IMMEDIATE` transaction, so that writers in several processes
sharing a file are serialised: a modstamp is assigned and committed before the next writer
can take the following one, which is what makes `"<modstamp>:<id>"` cursors lossless.

`FakeConnector` adds what makes it a vendor seen from the hub: API calls counted by kind,
pages and batches of a configured size, seeded faults, and signed webhooks. `FakeVendor` is
the back door (no faults, no call counting) that tests and benchmarks use to seed and
inspect the vendor's state.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import random
import sqlite3
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from datetime import date, datetime
from decimal import Decimal
from json.encoder import c_make_encoder, encode_basestring  # type: ignore[attr-defined]
from pathlib import Path
from typing import Any

from connectors.base import (
    ConnectorError,
    Limits,
    OpKind,
    Page,
    RateLimited,
    Rejected,
    Unavailable,
    WebhookEvent,
    WebhookReply,
    WebhookRequest,
    WriteOp,
    WriteResult,
    header,
)
from hub.config.model import System
from hub.config.secrets import reveal

MEMORY = ":memory:"
SIGNATURE_HEADER = "X-Fake-Signature"
DEFAULTS: dict[str, Any] = {"state": MEMORY, "page_size": 500, "batch_size": 200, "key_field": "hub_id"}
VENDOR_FIELDS = ("id", "modstamp")  # assigned by the vendor; ignored in payloads
_SQL_VARIABLES = 500  # ids per `IN (...)`, well under SQLite's limit
_FILE_SUFFIXES = (".db", ".sqlite", ".sqlite3")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS records (
    object   TEXT    NOT NULL,
    id       TEXT    NOT NULL,
    modstamp INTEGER NOT NULL,
    key      TEXT,
    data     TEXT    NOT NULL,
    PRIMARY KEY (object, id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS records_by_modstamp ON records (object, modstamp, id);
CREATE INDEX IF NOT EXISTS records_by_key ON records (object, key);
CREATE TABLE IF NOT EXISTS counters (
    name  TEXT    PRIMARY KEY,
    value INTEGER NOT NULL
) WITHOUT ROWID;
"""

Row = tuple[str, int, str]  # id, modstamp, data (JSON text)


# --- JSON ----------------------------------------------------------------------------------


def _json_default(value: Any) -> Any:
    """What a JSON API client would send for the values mappings produce beyond JSON's own."""
    if isinstance(value, Decimal):
        return str(value)  # exact digits kept, as vendors that take amounts as text do
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def _make_encoder() -> Callable[[Any], str]:
    """Compact JSON text, NaN refused as a JSON API would. One C encoder reused for every call
    (json.dumps builds a new one each time, which doubles the cost of small records)."""
    if c_make_encoder is None:  # pragma: no cover - CPython always has it
        return json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False,
                                default=_json_default).encode
    chunks = c_make_encoder(None, _json_default, encode_basestring, None, ":", ",", False, False, False)

    def encode(value: Any) -> str:
        return "".join(chunks(value, 0))

    return encode


_encode = _make_encoder()
_decode = json.loads
_NOT_JSON = (TypeError, ValueError, RecursionError)


def _decode_many(texts: list[str]) -> list[dict[str, Any]]:
    """Many JSON objects in one parse: far cheaper than one `loads` call each."""
    return _decode("[" + ",".join(texts) + "]") if texts else []  # type: ignore[no-any-return]


def _record(rid: str, stamp: int, data: str) -> dict[str, Any]:
    record: dict[str, Any] = _decode(data)
    record["id"] = rid
    record["modstamp"] = stamp
    return record


def _records(rows: list[Row]) -> list[dict[str, Any]]:
    records = _decode_many([row[2] for row in rows])
    for (rid, stamp, _data), record in zip(rows, records):
        record["id"] = rid
        record["modstamp"] = stamp
    return records


def _key_of(data: Mapping[str, Any], key_field: str) -> str | None:
    value = data.get(key_field)
    return None if value is None else str(value)


def _chunks(items: list[Any], size: int) -> Iterator[list[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


# --- the store -----------------------------------------------------------------------------


class _Store:
    """One vendor's state: a SQLite connection guarded by a lock, with typed operations."""

    def __init__(self, target: str) -> None:
        self.target = target
        self.lock = threading.RLock()
        if target == MEMORY:
            self.conn = sqlite3.connect(MEMORY, check_same_thread=False, isolation_level=None)
        else:
            Path(target).parent.mkdir(parents=True, exist_ok=True)
            self.conn = sqlite3.connect(target, timeout=60, check_same_thread=False, isolation_level=None)
            self._retry_locked(lambda: self.conn.execute("PRAGMA journal_mode = WAL"))
            self.conn.execute("PRAGMA synchronous = NORMAL")  # durable across a killed process
        self._retry_locked(lambda: self.conn.executescript(_SCHEMA))

    @staticmethod
    def _retry_locked(step: Callable[[], Any]) -> None:
        """Several processes opening one new file at once may meet a lock despite busy_timeout."""
        for attempt in range(50):
            try:
                step()
                return
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or attempt == 49:
                    raise
                time.sleep(0.05)

    def close(self) -> None:
        with self.lock:
            self.conn.close()

    @contextmanager
    def _transaction(self, begin: str) -> Iterator[sqlite3.Connection]:
        with self.lock:
            conn = self.conn
            conn.execute(begin)
            try:
                yield conn
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    def writing(self) -> Any:
        return self._transaction("BEGIN IMMEDIATE")

    def reading(self) -> Any:
        return self._transaction("BEGIN")

    # counters (inside a write transaction)

    @staticmethod
    def _counter(conn: sqlite3.Connection, name: str) -> int:
        row = conn.execute("SELECT value FROM counters WHERE name = ?", (name,)).fetchone()
        return int(row[0]) if row else 0

    @staticmethod
    def _set_counters(conn: sqlite3.Connection, values: dict[str, int]) -> None:
        conn.executemany(
            "INSERT INTO counters (name, value) VALUES (?, ?) "
            "ON CONFLICT (name) DO UPDATE SET value = excluded.value",
            list(values.items()),
        )

    @staticmethod
    def _save(conn: sqlite3.Connection, obj: str, rows: Iterable[tuple[str, int, str | None, str]]) -> None:
        conn.executemany(
            "INSERT INTO records (object, id, modstamp, key, data) VALUES (?, ?, ?, ?, ?) "
            "ON CONFLICT (object, id) DO UPDATE SET "
            "modstamp = excluded.modstamp, key = excluded.key, data = excluded.data",
            [(obj, rid, stamp, key, data) for rid, stamp, key, data in rows],
        )

    # reads

    def page(self, obj: str, after: tuple[int, str] | None, limit: int) -> list[Row]:
        with self.lock:
            if after is None:
                cur = self.conn.execute(
                    "SELECT id, modstamp, data FROM records WHERE object = ? "
                    "ORDER BY modstamp, id LIMIT ?",
                    (obj, limit),
                )
            else:
                cur = self.conn.execute(
                    "SELECT id, modstamp, data FROM records WHERE object = ? AND (modstamp, id) > (?, ?) "
                    "ORDER BY modstamp, id LIMIT ?",
                    (obj, after[0], after[1], limit),
                )
            return cur.fetchall()

    def _by_ids(self, conn: sqlite3.Connection, obj: str, ids: Iterable[str]) -> dict[str, Row]:
        found: dict[str, Row] = {}
        for chunk in _chunks(list(ids), _SQL_VARIABLES):
            marks = ",".join("?" * len(chunk))
            for row in conn.execute(
                f"SELECT id, modstamp, data FROM records WHERE object = ? AND id IN ({marks})", (obj, *chunk)
            ):
                found[row[0]] = row
        return found

    def fetch(self, obj: str, ids: list[str]) -> dict[str, Row]:
        with self.reading() as conn:
            return self._by_ids(conn, obj, ids)

    def all(self, obj: str) -> list[Row]:
        with self.lock:
            return self.conn.execute(
                "SELECT id, modstamp, data FROM records WHERE object = ? ORDER BY modstamp, id", (obj,)
            ).fetchall()

    def count(self, obj: str) -> int:
        with self.lock:
            return int(self.conn.execute("SELECT count(*) FROM records WHERE object = ?", (obj,)).fetchone()[0])

    def objects(self) -> list[str]:
        with self.lock:
            return [r[0] for r in self.conn.execute("SELECT DISTINCT object FROM records ORDER BY object")]

    def modstamp(self) -> int:
        with self.lock:
            return self._counter(self.conn, "modstamp")

    # writes

    def apply(self, obj: str, ops: list[WriteOp], key_field: str,
              reject: Callable[[Mapping[str, Any]], str | None] | None = None) -> list[WriteResult]:
        """One batch in one transaction: every op applied or rejected on its own, in order."""
        results: list[WriteResult] = []
        with self.writing() as conn:
            wanted = [op.external_id for op in ops if op.kind == OpKind.UPDATE and op.external_id]
            stored = {rid: data for rid, _stamp, data in self._by_ids(conn, obj, wanted).values()}
            by_key: dict[str, str] = {}
            keys = list({op.key for op in ops if op.kind == OpKind.UPSERT})
            for chunk in _chunks(keys, _SQL_VARIABLES):
                marks = ",".join("?" * len(chunk))
                for key, rid, data in conn.execute(
                    f"SELECT key, id, data FROM records INDEXED BY records_by_key "
                    f"WHERE object = ? AND key IN ({marks})",
                    (obj, *chunk),
                ):
                    if key not in by_key or rid < by_key[key]:  # duplicates of a key: the oldest id wins
                        by_key[key] = rid
                        stored[rid] = data
            # id -> data, of every record this batch touches
            current: dict[str, dict[str, Any]] = dict(zip(stored, _decode_many(list(stored.values()))))
            stamp = self._counter(conn, "modstamp")
            seq_name = f"seq:{obj}"
            seq = self._counter(conn, seq_name)
            changed: dict[str, tuple[str, int, str | None, str]] = {}
            for op in ops:
                if reject is not None:
                    reason = reject(op.payload)
                    if reason is not None:
                        results.append(WriteResult(False, op.external_id, error=Rejected(reason, "FAKE_VALIDATION")))
                        continue
                payload = dict(op.payload)
                if "id" in payload or "modstamp" in payload:
                    for name in VENDOR_FIELDS:
                        payload.pop(name, None)
                target: str | None = None
                if op.kind == OpKind.UPDATE:
                    if op.external_id is None or op.external_id not in current:
                        results.append(WriteResult(False, op.external_id, error=Rejected(
                            f"no such record: {obj} {op.external_id}", "NOT_FOUND")))
                        continue
                    target = op.external_id
                elif op.kind == OpKind.UPSERT:
                    payload.setdefault(key_field, op.key)
                    target = by_key.get(op.key)
                elif op.kind != OpKind.CREATE:
                    results.append(WriteResult(False, op.external_id, error=Rejected(
                        f"unknown operation {op.kind!r}", "BAD_OPERATION")))
                    continue
                data = payload if target is None else {**current[target], **payload}
                try:
                    text = _encode(data)
                except _NOT_JSON as exc:
                    results.append(WriteResult(False, op.external_id, error=Rejected(
                        f"payload is not JSON: {type(exc).__name__}: {exc}"[:300], "BAD_PAYLOAD")))
                    continue
                created = target is None
                if target is None:
                    seq += 1
                    target = f"F-{seq:06d}"
                stamp += 1
                key = _key_of(data, key_field)
                if key is not None:
                    by_key.setdefault(key, target)
                current[target] = data
                changed[target] = (target, stamp, key, text)
                results.append(WriteResult(True, target, created=created))
            if changed:
                self._save(conn, obj, changed.values())
                self._set_counters(conn, {"modstamp": stamp, seq_name: seq})
        return results

    def insert(self, obj: str, records: list[Mapping[str, Any]], key_field: str) -> list[dict[str, Any]]:
        with self.writing() as conn:
            stamp = self._counter(conn, "modstamp")
            seq_name = f"seq:{obj}"
            seq = self._counter(conn, seq_name)
            rows: list[tuple[str, int, str | None, str]] = []
            for given in records:
                data = {k: v for k, v in given.items() if k not in VENDOR_FIELDS}
                rid = given.get("id")
                if rid is None:
                    seq += 1
                    rid = f"F-{seq:06d}"
                stamp += 1
                rows.append((str(rid), stamp, _key_of(data, key_field), _encode(data)))
            self._save(conn, obj, rows)
            self._set_counters(conn, {"modstamp": stamp, seq_name: seq})
        return [_record(rid, stamp, data) for rid, stamp, _key, data in rows]

    def update(self, obj: str, rid: str, fields: Mapping[str, Any], key_field: str) -> dict[str, Any]:
        with self.writing() as conn:
            found = self._by_ids(conn, obj, [rid])
            if rid not in found:
                raise KeyError(f"no such record: {obj} {rid}")
            data = {**_decode(found[rid][2]), **{k: v for k, v in fields.items() if k not in VENDOR_FIELDS}}
            stamp = self._counter(conn, "modstamp") + 1
            text = _encode(data)
            self._save(conn, obj, [(rid, stamp, _key_of(data, key_field), text)])
            self._set_counters(conn, {"modstamp": stamp})
        return _record(rid, stamp, text)

    def touch(self, obj: str, ids: list[str], same_modstamp: bool) -> int:
        with self.writing() as conn:
            found = self._by_ids(conn, obj, ids)
            present = [rid for rid in dict.fromkeys(ids) if rid in found]
            if not present:
                return 0
            stamp = self._counter(conn, "modstamp")
            updates = []
            for i, rid in enumerate(present):
                updates.append((stamp + 1 if same_modstamp else stamp + 1 + i, obj, rid))
            conn.executemany("UPDATE records SET modstamp = ? WHERE object = ? AND id = ?", updates)
            self._set_counters(conn, {"modstamp": updates[-1][0]})
        return len(present)

    def clear(self) -> None:
        with self.writing() as conn:
            conn.execute("DELETE FROM records")
            conn.execute("DELETE FROM counters")


# --- locating a store ----------------------------------------------------------------------

_MEMORY_STORES: dict[str, _Store] = {}
_MEMORY_LOCK = threading.Lock()


def _memory_store(name: str) -> _Store:
    with _MEMORY_LOCK:
        store = _MEMORY_STORES.get(name)
        if store is None:
            store = _MEMORY_STORES[name] = _Store(MEMORY)
        return store


def _open(state: str, system_name: str) -> tuple[_Store, bool]:
    """The store for a system's `state` option, and whether it is shared (not ours to close)."""
    if state == MEMORY:
        return _memory_store(system_name), True
    return _Store(os.fspath(state)), False


def _looks_like_path(text: str) -> bool:
    return os.sep in text or "/" in text or text.endswith(_FILE_SUFFIXES) or Path(text).exists()


# --- faults --------------------------------------------------------------------------------


class _Faults:
    """Seeded failures: one draw per call decides RateLimited / Unavailable / served."""

    def __init__(self, spec: Mapping[str, Any]) -> None:
        spec = {k: reveal(v) for k, v in (spec or {}).items()}
        seed = spec.get("seed")
        self.rng = random.Random(None if seed is None else int(seed))
        self.rate_limit = float(spec.get("rate_limit") or 0.0)
        self.unavailable = float(spec.get("unavailable") or 0.0)
        for label, p in (("rate_limit", self.rate_limit), ("unavailable", self.unavailable)):
            if not 0.0 <= p <= 1.0:
                raise ValueError(f"fake faults.{label} must be between 0 and 1, not {p}")
        self.latency = max(0, int(spec.get("latency_ms") or 0)) / 1000.0
        self.reject_field = spec.get("reject_field")
        self.reject_pattern = spec.get("reject_pattern")
        self.reject = self.reject_reason if self.reject_field and self.reject_pattern else None
        self.lock = threading.Lock()

    def before_call(self, counts: Counter[str]) -> None:
        if self.latency:
            time.sleep(self.latency)
        if not (self.rate_limit or self.unavailable):
            return
        with self.lock:
            draw = self.rng.random()
            retry_after = round(self.rng.uniform(0.01, 0.05), 4) if draw < self.rate_limit else None
        if retry_after is not None:
            counts["rate_limited"] += 1
            raise RateLimited("fake vendor: too many requests (simulated)", retry_after=retry_after)
        if draw < self.rate_limit + self.unavailable:
            counts["unavailable"] += 1
            raise Unavailable("fake vendor: service unavailable (simulated)")

    def reject_reason(self, payload: Mapping[str, Any]) -> str | None:
        if not self.reject_field or not self.reject_pattern:
            return None
        value = payload.get(self.reject_field)
        if value is None or self.reject_pattern not in str(value):
            return None
        return f"{self.reject_field} {str(value)!r} is invalid (fake validation)"


# --- webhooks ------------------------------------------------------------------------------


def sign(secret: str, body: bytes) -> str:
    """The `X-Fake-Signature` of a body: hex HMAC-SHA256 keyed by the webhook secret."""
    return hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()


def signed_request(secret: str, events: list[Mapping[str, Any]], url: str = "/webhooks/fake") -> WebhookRequest:
    """A webhook call as the fake vendor would send it, for tests and demos."""
    body = json.dumps({"events": list(events)}).encode("utf-8")
    return WebhookRequest("POST", url, {SIGNATURE_HEADER: sign(secret, body), "Content-Type": "application/json"},
                          {}, body)


def _reply(status: int, payload: dict[str, Any], events: list[WebhookEvent] | None = None) -> WebhookReply:
    return WebhookReply(status, json.dumps(payload).encode("utf-8"), "application/json", events or [])


def _identifier(value: Any) -> str | None:
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        return None
    text = str(value)
    return text or None


def _parse_events(body: bytes) -> list[WebhookEvent]:
    """The events of a body, or ValueError naming what is wrong with it."""
    try:
        data = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise ValueError("body is not JSON") from None
    if not isinstance(data, dict) or not isinstance(data.get("events"), list):
        raise ValueError("body must be an object with an 'events' list")
    events: list[WebhookEvent] = []
    for i, item in enumerate(data["events"]):
        if not isinstance(item, dict):
            raise ValueError(f"events[{i}] is not an object")
        event_id, obj, record_id = (_identifier(item.get(k)) for k in ("id", "object", "record_id"))
        if event_id is None or obj is None or record_id is None:
            raise ValueError(f"events[{i}] needs 'id', 'object' and 'record_id'")
        kind = item.get("kind", "changed")
        payload = item.get("payload", {})
        if not isinstance(kind, str) or not isinstance(payload, dict):
            raise ValueError(f"events[{i}] has a bad 'kind' or 'payload'")
        events.append(WebhookEvent(event_id, obj, record_id, kind, payload))
    return events


# --- the connector -------------------------------------------------------------------------


def _options(settings: System) -> dict[str, Any]:
    options = {**DEFAULTS, **{k: reveal(v) for k, v in (settings.options or {}).items()}}
    for name in ("page_size", "batch_size"):
        options[name] = int(options[name])
        if options[name] < 1:
            raise ValueError(f"fake option {name} must be at least 1")
    options["state"] = str(options["state"])
    options["key_field"] = str(options["key_field"])
    return options


class FakeConnector:
    """The fake vendor seen through the connector contract (see the package docstring)."""

    name = "fake"

    def __init__(self, settings: System, session: Any = None) -> None:
        self.settings = settings
        self.session = session  # unused: no HTTP
        options = _options(settings)
        self.page_size: int = options["page_size"]
        self.batch_size: int = options["batch_size"]
        self.key_field: str = options["key_field"]
        self.limits = Limits(self.page_size, self.batch_size)
        self.state: str = options["state"]
        self._faults = _Faults(options.get("faults") or {})
        self.calls: Counter[str] = Counter()  # API calls by kind: pull / get / push
        self.injected: Counter[str] = Counter()  # faults raised: rate_limited / unavailable / rejected
        self._store, self._shared = _open(self.state, settings.name)
        self.vendor = FakeVendor._of(self._store, self.key_field)

    def __repr__(self) -> str:
        return f"FakeConnector(system={self.settings.name!r}, state={self.state!r})"

    def _call(self, kind: str) -> None:
        self.calls[kind] += 1
        self._faults.before_call(self.injected)

    # reads

    def pull(self, obj: str, since: str | None) -> Iterator[Page]:
        after = _parse_cursor(since)
        while True:
            self._call("pull")
            rows = self._store.page(obj, after, self.page_size + 1)
            more = len(rows) > self.page_size
            rows = rows[: self.page_size]
            if not rows:
                return
            last_id, last_stamp, _ = rows[-1]
            yield Page(_records(rows), f"{last_stamp}:{last_id}")
            if not more:
                return
            after = (last_stamp, last_id)

    def get(self, obj: str, ids: list[str]) -> list[dict[str, Any]]:
        wanted = [str(i) for i in dict.fromkeys(ids)]
        records: list[dict[str, Any]] = []
        for chunk in _chunks(wanted, self.batch_size):
            self._call("get")
            found = self._store.fetch(obj, chunk)
            records.extend(_records([found[rid] for rid in chunk if rid in found]))
        return records

    # writes

    def push(self, obj: str, ops: list[WriteOp]) -> list[WriteResult]:
        results: list[WriteResult] = []
        for chunk in _chunks(list(ops), self.batch_size):
            self._call("push")
            done = self._store.apply(obj, chunk, self.key_field, self._faults.reject)
            self.injected["rejected"] += sum(
                1 for r in done if r.error is not None and getattr(r.error, "vendor_code", None) == "FAKE_VALIDATION")
            results.extend(done)
        return results

    def touch_many(self, obj: str, ids: list[str], same_modstamp: bool = True) -> int:
        """Bump the modstamp of these records (one shared value by default); not an API call."""
        return self._store.touch(obj, list(ids), same_modstamp)

    # webhooks

    def webhook(self, request: WebhookRequest) -> WebhookReply:
        secret = reveal((self.settings.webhook or {}).get("secret"))
        given = header(request.headers, SIGNATURE_HEADER)
        if not secret or not given:
            return _reply(401, {"ok": False, "error": "missing signature"})
        expected = sign(str(secret), request.body)
        if not hmac.compare_digest(expected.encode("ascii"), given.strip().lower().encode("utf-8", "replace")):
            return _reply(401, {"ok": False, "error": "bad signature"})
        try:
            events = _parse_events(request.body)
        except ValueError as exc:
            return _reply(400, {"ok": False, "error": str(exc)})
        return _reply(200, {"ok": True}, events)

    def close(self) -> None:
        if not self._shared:
            self._store.close()


def _parse_cursor(since: str | None) -> tuple[int, str] | None:
    if since is None or since == "":
        return None
    stamp, sep, rid = str(since).partition(":")
    try:
        if not sep:
            raise ValueError
        return int(stamp), rid
    except ValueError:
        raise ConnectorError(f"fake vendor: cursor {since!r} is not '<modstamp>:<id>'") from None


# --- the back door -------------------------------------------------------------------------


class FakeVendor:
    """The vendor's state seen from outside: seed it, change it, read it. No faults, no counts.

    `FakeVendor("crm")` is the in-memory store of system `crm`; `FakeVendor("/tmp/v.db")` (or a
    `Path`) a file store. A plain string is a file when it looks like a path (has a `/`, ends
    in .db/.sqlite/.sqlite3, or exists); `FakeVendor.memory(name)` / `FakeVendor.file(path)`
    say it explicitly, and a `System` is resolved as its connector would be.
    """

    def __init__(self, state: str | os.PathLike[str] | System, *, key_field: str = "hub_id") -> None:
        if isinstance(state, System):
            options = _options(state)
            self._store, self._shared = _open(options["state"], state.name)
            key_field = options["key_field"]
        elif state == MEMORY:
            raise ValueError("an in-memory fake vendor is named by its system's name, not ':memory:'")
        elif isinstance(state, os.PathLike):
            self._store, self._shared = _Store(os.fspath(state)), False
        elif state != MEMORY and state not in _MEMORY_STORES and _looks_like_path(state):
            self._store, self._shared = _Store(state), False
        else:
            self._store, self._shared = _memory_store(state), True
        self.key_field = key_field

    @classmethod
    def memory(cls, name: str, *, key_field: str = "hub_id") -> FakeVendor:
        return cls._of(_memory_store(name), key_field)

    @classmethod
    def file(cls, path: str | os.PathLike[str], *, key_field: str = "hub_id") -> FakeVendor:
        return cls(Path(path), key_field=key_field)

    @classmethod
    def _of(cls, store: _Store, key_field: str) -> FakeVendor:
        vendor = cls.__new__(cls)
        vendor._store, vendor._shared, vendor.key_field = store, True, key_field
        return vendor

    @staticmethod
    def reset(name: str | None = None) -> None:
        """Forget one in-memory store (every one when `name` is None): test isolation."""
        with _MEMORY_LOCK:
            names = list(_MEMORY_STORES) if name is None else [name]
            for n in names:
                store = _MEMORY_STORES.pop(n, None)
                if store is not None:
                    store.close()

    def records(self, obj: str) -> list[dict[str, Any]]:
        """Every record of `obj`, ordered by (modstamp, id)."""
        return _records(self._store.all(obj))

    def record(self, obj: str, rid: str) -> dict[str, Any] | None:
        found = self._store.fetch(obj, [rid])
        return _record(*found[rid]) if rid in found else None

    def count(self, obj: str) -> int:
        return self._store.count(obj)

    def objects(self) -> list[str]:
        return self._store.objects()

    def modstamp(self) -> int:
        """The last modstamp this store assigned."""
        return self._store.modstamp()

    def insert(self, obj: str, records: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
        """Create records as a vendor user would (ids assigned unless given), one transaction."""
        return self._store.insert(obj, list(records), self.key_field)

    def update(self, obj: str, rid: str, fields: Mapping[str, Any]) -> dict[str, Any]:
        """Merge `fields` into a record and bump its modstamp; KeyError when it does not exist."""
        return self._store.update(obj, rid, fields, self.key_field)

    def touch_many(self, obj: str, ids: Iterable[str], same_modstamp: bool = True) -> int:
        """Give these records new modstamps: one shared value (default) or consecutive ones."""
        return self._store.touch(obj, list(ids), same_modstamp)

    def clear(self) -> None:
        """Delete every record and reset ids and modstamps."""
        self._store.clear()

    def close(self) -> None:
        if not self._shared:
            self._store.close()
