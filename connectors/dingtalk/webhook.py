"""DingTalk event callbacks (HTTP push mode): verify, decrypt, parse, and the reply DingTalk wants.

A callback is `POST <url>?msg_signature=&timestamp=&nonce=` (some pushes say `signature`)
with body `{"encrypt": "<base64>"}`. It is authentic when the signature over token,
timestamp, nonce and ciphertext matches, the timestamp (milliseconds) is recent, the
ciphertext decrypts with our key, and the owner key inside is ours. DingTalk counts a
callback as delivered only when the answer is the encrypted, signed string `success` in
`{"msg_signature", "timeStamp", "nonce", "encrypt"}`; anything else is retried.

Approval events carry no event id, so the id of an event is a digest of what identifies
it (instance, task, transition, result, times): a retried delivery of one event gets the
same id, and the hub's inbox drops the duplicate.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import string
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

from connectors.base import WebhookEvent
from connectors.dingtalk import crypto

APPROVAL_EVENTS = ("bpms_instance_change", "bpms_task_change")
_EVENT_ID_FIELDS = ("EventType", "processInstanceId", "taskId", "type", "result", "staffId", "createTime",
                    "finishTime")
_NONCE_ALPHABET = string.ascii_letters + string.digits


class CallbackRefused(Exception):
    """A callback we must not trust; `status` is the answer (400 not DingTalk's shape, 401 not authentic)."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


@dataclass(frozen=True)
class CallbackKeys:
    """What a callback is verified with: the token, the decoded AES key and our owner key."""

    token: str = field(repr=False)
    key: bytes = field(repr=False)
    owner_key: str
    max_age_ms: int = 300_000


def open_callback(query: Mapping[str, str], body: bytes, keys: CallbackKeys, now_ms: int) -> dict[str, Any]:
    """The decrypted message of an authentic callback; CallbackRefused otherwise.

    The order matters: shape, then signature and timestamp (cheap, and no decryption of
    anything unsigned), then decryption and the owner key.
    """
    encrypt = _ciphertext(body)
    signature = query.get("msg_signature") or query.get("signature")
    timestamp, nonce = query.get("timestamp"), query.get("nonce")
    if not signature or not timestamp or nonce is None:
        raise CallbackRefused(401, "signature, timestamp or nonce missing")
    if not crypto.signature_matches(signature, keys.token, timestamp, nonce, encrypt):
        raise CallbackRefused(401, "signature does not match")
    if not timestamp.isdigit() or abs(now_ms - int(timestamp)) > keys.max_age_ms:
        raise CallbackRefused(401, "timestamp outside the accepted window")
    try:
        message, owner, _prefix = crypto.decrypt(encrypt, keys.key)
    except crypto.CryptoError as exc:
        raise CallbackRefused(401, str(exc)) from None
    if not crypto.owner_matches(owner, keys.owner_key):
        raise CallbackRefused(401, "message is for another owner key")
    try:
        decoded = orjson.loads(message)
    except (UnicodeDecodeError, ValueError):
        raise CallbackRefused(400, "decrypted message is not JSON") from None
    if not isinstance(decoded, dict):
        raise CallbackRefused(400, "decrypted message is not a JSON object")
    return decoded


def _ciphertext(body: bytes) -> str:
    try:
        envelope = orjson.loads(body)
    except (UnicodeDecodeError, ValueError):
        raise CallbackRefused(400, "body is not JSON") from None
    encrypt = envelope.get("encrypt") if isinstance(envelope, dict) else None
    if not isinstance(encrypt, str) or not encrypt:
        raise CallbackRefused(400, "body has no 'encrypt'")
    return encrypt


def event_id(message: Mapping[str, Any]) -> str:
    """A stable id for one approval event: the same for every delivery of it."""
    identity = {name: message.get(name) for name in _EVENT_ID_FIELDS if message.get(name) not in (None, "")}
    text = orjson.dumps(identity, option=orjson.OPT_SORT_KEYS)  # as json.dumps(sort_keys, compact, UTF-8)
    return "dingtalk:" + hashlib.sha256(text).hexdigest()[:40]


def approval_event(message: Mapping[str, Any], kinds_by_code: Mapping[str, str]) -> WebhookEvent | None:
    """The hub event of an approval callback, or None (not an approval event, or an unknown process)."""
    if message.get("EventType") not in APPROVAL_EVENTS:
        return None
    instance = message.get("processInstanceId")
    kind = kinds_by_code.get(str(message.get("processCode") or ""))
    if not isinstance(instance, str) or not instance or kind is None:
        return None
    payload = {"event_type": message.get("EventType"), "type": message.get("type"), "result": message.get("result"),
               "process_code": message.get("processCode")}
    return WebhookEvent(event_id(message), kind, instance, "changed", {k: v for k, v in payload.items() if v is not None})


def nonce(length: int = 8) -> str:
    """A random nonce from one draw of the OS's randomness (a draw per character costs a
    system call each, which showed in the callback benchmark)."""
    raw = secrets.token_bytes(length)
    return "".join(_NONCE_ALPHABET[b % len(_NONCE_ALPHABET)] for b in raw)


def sealed(message: bytes, token: str, key: bytes, owner_key: str, timestamp: str, nonce_value: str,
           prefix: bytes | None = None) -> tuple[str, str]:
    """(ciphertext, signature) of a message, as DingTalk sends it and as the receiver answers."""
    encrypt = crypto.encrypt(message, key, owner_key, prefix)
    return encrypt, crypto.signature(token, timestamp, nonce_value, encrypt)


def success_reply(keys: CallbackKeys, timestamp_ms: int, nonce_value: str | None = None,
                  prefix: bytes | None = None) -> bytes:
    """The body DingTalk requires to count a callback as delivered: the encrypted `success`."""
    nonce_value = nonce_value or nonce()
    timestamp = str(timestamp_ms)
    encrypt, signature = sealed(b"success", keys.token, keys.key, keys.owner_key, timestamp, nonce_value, prefix)
    return orjson.dumps({"msg_signature": signature, "timeStamp": timestamp, "nonce": nonce_value, "encrypt": encrypt})


def is_success_reply(body: bytes, keys: CallbackKeys) -> bool:
    """Whether an answer is the signed, encrypted `success` (what DingTalk checks before retrying)."""
    try:
        reply = json.loads(body)
        encrypt, timestamp, nonce_value = reply["encrypt"], str(reply["timeStamp"]), str(reply["nonce"])
        if not crypto.signature_matches(str(reply["msg_signature"]), keys.token, timestamp, nonce_value, encrypt):
            return False
        message, owner, _ = crypto.decrypt(encrypt, keys.key)
    except (ValueError, KeyError, TypeError, crypto.CryptoError):
        return False
    return message == b"success" and crypto.owner_matches(owner, keys.owner_key)
