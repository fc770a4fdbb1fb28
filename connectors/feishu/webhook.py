"""Feishu event callbacks: verify, decrypt and parse, as pure functions over the raw request.

What Feishu sends (Encrypt Key set, which the settings require): a POST whose body is
`{"encrypt": "<base64>"}` (see `crypto.py`) with the headers `X-Lark-Request-Timestamp`
(seconds), `X-Lark-Request-Nonce` and `X-Lark-Signature` = hex SHA-256(timestamp + nonce +
Encrypt Key + raw body). Inside is one of

- the URL check `{"challenge", "token", "type": "url_verification"}`, answered with
  `{"challenge": "<same>"}` (HTTP 200, within 1 s);
- a schema 2.0 event `{"schema": "2.0", "header": {"event_id", "event_type", "token",
  "app_id", ...}, "event": {...}}`;
- a 1.0 event `{"uuid", "token", "ts", "type": "event_callback", "event": {"type", "app_id",
  ...}}`, which is how approval status changes (`approval_instance`) still arrive.

Order of checks, so that nothing unverified is parsed further than needed: the body's shape
(400), then the signature and the timestamp's age when the signature headers are there (401),
then the decryption (401 for bad base64, a truncated ciphertext, a wrong key or padding), then
the verification token and our app id (401). Every 401 carries one and the same body (the
reason goes to the log only): an unsigned request reaches the decryption, and a reply that
said how decryption failed would be a padding oracle for anyone who captured a ciphertext.

Feishu's own SDK (lark-oapi) skips the signature on `url_verification`, so a request without
signature headers is answered only when it decrypts to a `url_verification` carrying the
configured verification token (unsigned requests are refused when no token is configured).
Every other callback must be signed. An empty Encrypt Key (`${FEISHU_ENCRYPT_KEY:-}`) refuses
every callback: its AES key, SHA-256 of nothing, is known to everyone.

Feishu documents no freshness window for the timestamp and its SDK checks none; the default
window here is 300 s either way (`webhook.max_age_seconds`, 0 turns it off). Each Feishu retry
is a new request, so a retry is not refused for its age. Replays of a fresh request inside the
window give the same `event_id` (the Feishu `uuid` / `header.event_id`), and the hub's inbox
keeps one.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from connectors.base import WebhookEvent, WebhookReply, header
from connectors.feishu import crypto

TIMESTAMP_HEADER = "X-Lark-Request-Timestamp"
NONCE_HEADER = "X-Lark-Request-Nonce"
SIGNATURE_HEADER = "X-Lark-Signature"
DEFAULT_MAX_AGE = 300.0
URL_VERIFICATION = "url_verification"
APPROVAL_INSTANCE = "approval_instance"


class Refused(Exception):
    """A callback that must not be acted on: `status` is the HTTP answer (400 or 401)."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


@dataclass(frozen=True)
class Keys:
    """What a callback is checked against (from the system's `webhook` and `auth` blocks)."""

    encrypt_key: str = field(repr=False)
    verification_token: str | None = field(default=None, repr=False)
    app_id: str | None = None
    max_age: float = DEFAULT_MAX_AGE




def open_callback(body: bytes, headers: Mapping[str, str], keys: Keys, now: float) -> dict[str, Any]:
    """The decrypted, verified payload of a callback, or `Refused` (see the module docstring)."""
    if not keys.encrypt_key:
        raise Refused(401, "no encrypt key configured: every callback is refused")
    encrypted = _encrypted_field(body)
    signed = _check_signature(body, headers, keys, now)
    try:
        plaintext = crypto.decrypt(keys.encrypt_key, encrypted)
    except crypto.CryptoError as exc:
        raise Refused(401, f"cannot decrypt: {exc}") from None
    payload = _json_object(plaintext)
    if payload is None:
        raise Refused(401, "cannot decrypt: the plaintext is not JSON (wrong encrypt key?)")
    if not signed:
        return _unsigned_url_check(payload, keys)
    if payload.get("type") == URL_VERIFICATION:
        _check_token(payload.get("token"), keys)
        return payload
    head = payload.get("header") if isinstance(payload.get("header"), dict) else {}
    event = payload.get("event") if isinstance(payload.get("event"), dict) else {}
    _check_token(head.get("token", payload.get("token")), keys)
    app_id = head.get("app_id", event.get("app_id"))
    if keys.app_id and app_id is not None and app_id != keys.app_id:
        raise Refused(401, "callback for another app")
    return payload


def _unsigned_url_check(payload: dict[str, Any], keys: Keys) -> dict[str, Any]:
    """An unsigned payload is acted on only as a URL check with our verification token."""
    if payload.get("type") != URL_VERIFICATION:
        raise Refused(401, "unsigned callback that is not a url_verification")
    if not keys.verification_token:
        raise Refused(401, "unsigned url_verification, and no verification token is configured to check it")
    _check_token(payload.get("token"), keys)
    return payload


def challenge_of(payload: Mapping[str, Any]) -> str | None:
    """The challenge of a URL check, None for anything else; 400 for a malformed check."""
    if payload.get("type") != URL_VERIFICATION:
        return None
    challenge = payload.get("challenge")
    if not isinstance(challenge, str) or not challenge:
        raise Refused(400, "url_verification without a challenge")
    return challenge


def approval_events(payload: Mapping[str, Any], kinds: Mapping[str, str]) -> tuple[list[WebhookEvent], str | None]:
    """The approval events of a verified payload, and the approval code it named when that
    code is not one of `kinds` (approval code -> kind), so that the caller can say so.

    A 1.0 `approval_instance` event carries `approval_code`, `instance_code` and `status`; a
    2.0 event is taken when its `event` names an approval and an instance. Other events are
    acknowledged with nothing to store. `Refused(400)` when the payload is not Feishu's shape.
    """
    event = payload.get("event")
    if not isinstance(event, dict):
        raise Refused(400, "callback without an event object")
    if payload.get("schema") == "2.0":
        head = payload.get("header")
        if not isinstance(head, dict) or not _text(head.get("event_id")):
            raise Refused(400, "schema 2.0 callback without header.event_id")
        event_id, event_type = str(head["event_id"]), str(head.get("event_type") or "")
    else:
        if payload.get("type") != "event_callback":
            raise Refused(400, "1.0 callback whose type is not event_callback")
        event_id, event_type = _text(payload.get("uuid")) or "", str(event.get("type") or "")
    approval_code, instance_code = _text(event.get("approval_code")), _text(event.get("instance_code"))
    if approval_code is None or instance_code is None:
        if event_type == APPROVAL_INSTANCE:
            raise Refused(400, "approval_instance event without approval_code or instance_code")
        return [], None
    kind = kinds.get(approval_code)
    if kind is None:
        return [], approval_code
    status = _text(event.get("status"))
    operate_time = _text(event.get("instance_operate_time") or event.get("operate_time"))
    if not event_id:
        event_id = digest(instance_code, status, operate_time)
    details = {"event_type": event_type, "approval_code": approval_code, "status": status,
               "operate_time": operate_time}
    return [WebhookEvent(event_id, kind, instance_code, "changed", {k: v for k, v in details.items() if v})], None


def digest(*parts: str | None) -> str:
    """An event id for a callback that carries none: the same change gives the same id."""
    return hashlib.sha256("|".join(p or "" for p in parts).encode("utf-8")).hexdigest()[:32]


# --- replies -------------------------------------------------------------------------------


def reply(status: int, body: Mapping[str, Any], events: list[WebhookEvent] | None = None) -> WebhookReply:
    text = json.dumps(dict(body), ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    return WebhookReply(status, text, "application/json; charset=utf-8", events or [])


def refusal_reply(status: int) -> WebhookReply:
    """One fixed body per status, whatever the reason (see the module docstring)."""
    return reply(status, {"msg": "unauthorized" if status == 401 else "bad request"})


def challenge_reply(challenge: str) -> WebhookReply:
    """Exactly what Feishu expects to a URL check: `{"challenge": "<same>"}`, HTTP 200."""
    return reply(200, {"challenge": challenge})


def success_reply(events: list[WebhookEvent]) -> WebhookReply:
    """HTTP 200 is what stops Feishu's retries; the body is the SDK's `{"msg":"success"}`."""
    return reply(200, {"msg": "success"}, events)


# --- helpers -------------------------------------------------------------------------------


def _encrypted_field(body: bytes) -> str:
    outer = _json_object(body)
    if outer is None:
        raise Refused(400, "body is not a JSON object")
    encrypted = outer.get("encrypt")
    if "encrypt" not in outer and any(k in outer for k in ("type", "schema", "challenge", "uuid", "header")):
        raise Refused(401, "callback is not encrypted (an Encrypt Key is configured)")
    if not isinstance(encrypted, str) or not encrypted:
        raise Refused(400, "body has no 'encrypt' text")
    return encrypted


def _check_signature(body: bytes, headers: Mapping[str, str], keys: Keys, now: float) -> bool:
    """True when the signature headers are there and right; False when they are all absent."""
    timestamp, nonce, given = (header(headers, n) for n in (TIMESTAMP_HEADER, NONCE_HEADER, SIGNATURE_HEADER))
    if timestamp is None and nonce is None and given is None:
        return False
    if timestamp is None or nonce is None or given is None:
        raise Refused(401, "incomplete signature headers")
    if not crypto.signature_matches(crypto.signature(timestamp, nonce, keys.encrypt_key, body), given):
        raise Refused(401, "bad signature")
    try:
        sent = float(timestamp)
    except ValueError:
        raise Refused(401, "timestamp is not a number") from None
    if keys.max_age and abs(now - sent) > keys.max_age:
        raise Refused(401, "stale timestamp")
    return True


def _check_token(token: Any, keys: Keys) -> None:
    if not keys.verification_token:
        return
    if not isinstance(token, str) or not crypto.signature_matches(_hex(keys.verification_token), _hex(token)):
        raise Refused(401, "wrong verification token")


def _hex(text: str) -> str:
    """A token as hex, so that the constant-time comparison sees ASCII only."""
    return text.encode("utf-8").hex()


def _json_object(raw: bytes) -> dict[str, Any] | None:
    try:
        value = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        return None
    return value if isinstance(value, dict) else None


def _text(value: Any) -> str | None:
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        return None
    text = str(value)
    return text or None
