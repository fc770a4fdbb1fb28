"""Webhooks of a declared REST API: HMAC verification and event parsing, over raw bytes.

Every signing scheme seen in the wild differs only in a few choices, which the admin
declares under `webhook.signature`: the header, the hash (sha1/sha256/sha512), how the
digest is written (hex or base64), a prefix such as `sha256=`, and what is signed — the
raw body, or a timestamp header's value, a separator and the raw body. The timestamp form
also lets a replayed call be refused once it is older than `tolerance` seconds.

The signature is checked over the bytes as received, before any JSON parsing, with a
constant-time comparison; nothing about the expected value ever reaches a message.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import math
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from connectors.base import WebhookEvent, header
from connectors.rest.paths import Expr, compile_expr
from hub.config.secrets import reveal

_DIGESTS = {"sha1": hashlib.sha1, "sha256": hashlib.sha256, "sha512": hashlib.sha512}


class BadSignature(Exception):
    """The call is not provably from the system: missing, wrong or stale signature."""


class BadEvents(Exception):
    """The call is signed but its body is not what the declaration describes."""


@dataclass(frozen=True)
class Signing:
    """`webhook.signature` with its defaults."""

    header: str = "X-Signature"
    algorithm: str = "sha256"
    encoding: str = "hex"
    prefix: str = ""
    signed: str = "body"
    timestamp_header: str = "X-Timestamp"
    timestamp_unit: str = "seconds"
    separator: str = "."
    tolerance: int = 300

    @classmethod
    def of(cls, block: Mapping[str, Any] | None) -> Signing:
        return cls(**dict(block or {}))


@dataclass(frozen=True)
class EventShape:
    """Where the events and their fields are in a webhook body."""

    events: Expr | None
    event_id: Expr | None
    object: Expr | None
    record_id: Expr
    kind: Expr | None
    default_object: str | None

    @classmethod
    def of(cls, block: Mapping[str, Any]) -> EventShape:
        record_id = compile_expr(block.get("record_id"), "webhook.record_id", "id")
        assert record_id is not None
        return cls(compile_expr(block.get("events"), "webhook.events"),
                   compile_expr(block.get("event_id"), "webhook.event_id"),
                   compile_expr(block.get("object"), "webhook.object"),
                   record_id,
                   compile_expr(block.get("kind"), "webhook.kind"),
                   block.get("default_object"))




def signed_bytes(signing: Signing, body: bytes, timestamp: str | None) -> bytes:
    if signing.signed == "timestamp_body":
        return f"{timestamp}{signing.separator}".encode() + body
    return body


def signature(secret: str, signing: Signing, body: bytes, timestamp: str | None = None) -> str:
    """The header value the system sends for `body` (tests and the sandbox use it too)."""
    mac = hmac.new(secret.encode(), signed_bytes(signing, body, timestamp), _DIGESTS[signing.algorithm]).digest()
    text = mac.hex() if signing.encoding == "hex" else base64.b64encode(mac).decode("ascii")
    return signing.prefix + text


def verify(secret: Any, signing: Signing, headers: Mapping[str, str], body: bytes, now: float | None = None) -> None:
    """Raise BadSignature unless the call carries a valid, fresh signature of `body`."""
    given = header(headers, signing.header)
    if not given:
        raise BadSignature(f"no {signing.header} header")
    given = given.strip()
    if signing.prefix:
        if not given.startswith(signing.prefix):
            raise BadSignature(f"{signing.header} does not start with the declared prefix")
        given = given[len(signing.prefix):]
    timestamp = None
    if signing.signed == "timestamp_body":
        timestamp = header(headers, signing.timestamp_header)
        _check_fresh(signing, timestamp, time.time() if now is None else now)
    key = str(reveal(secret) or "")
    if not key:
        raise BadSignature("no webhook secret configured")
    mac = hmac.new(key.encode(), signed_bytes(signing, body, timestamp),
                   _DIGESTS[signing.algorithm]).digest()
    if not hmac.compare_digest(_decode(given, signing.encoding), mac):
        raise BadSignature("signature does not match")


def _decode(text: str, encoding: str) -> bytes:
    try:
        return bytes.fromhex(text) if encoding == "hex" else base64.b64decode(text, validate=True)
    except ValueError:
        return b""  # unreadable: compares unequal like any wrong signature


def _check_fresh(signing: Signing, timestamp: str | None, now: float) -> None:
    if not timestamp:
        raise BadSignature(f"no {signing.timestamp_header} header")
    try:
        sent = float(timestamp.strip())
    except ValueError:
        raise BadSignature(f"{signing.timestamp_header} is not a Unix time") from None
    if signing.timestamp_unit == "milliseconds":
        sent /= 1000.0
    if not math.isfinite(sent) or abs(now - sent) > signing.tolerance:  # NaN compares false to everything
        raise BadSignature(f"timestamp is more than {signing.tolerance} s away from now")


def parse_events(body: bytes, shape: EventShape) -> list[WebhookEvent]:
    """The events of a verified body; raise BadEvents when it is not JSON or names no record."""
    try:
        answer = json.loads(body)
    except ValueError:
        raise BadEvents("the body is not JSON") from None
    found = answer if shape.events is None else shape.events.search(answer)
    items = found if isinstance(found, list) else [found] if isinstance(found, dict) else []
    events = [_event(item, shape) for item in items if isinstance(item, dict)]
    if not events or any(e is None for e in events):
        raise BadEvents("an event names no record (check webhook.events and webhook.record_id)")
    return [e for e in events if e is not None]


def _event(item: dict[str, Any], shape: EventShape) -> WebhookEvent | None:
    record_id = shape.record_id.search(item)
    obj = shape.object.search(item) if shape.object else None
    obj = obj if obj not in (None, "") else shape.default_object
    if record_id in (None, "") or not obj:
        return None
    event_id = shape.event_id.search(item) if shape.event_id else None
    if event_id in (None, ""):
        canonical = json.dumps(item, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
        event_id = "sha256:" + hashlib.sha256(canonical.encode()).hexdigest()
    kind = shape.kind.search(item) if shape.kind else None
    return WebhookEvent(str(event_id), str(obj), str(record_id), str(kind or "changed"), item)
