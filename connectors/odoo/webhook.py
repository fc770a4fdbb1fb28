"""Odoo's "Send Webhook Notification" (an automation rule's action, Odoo 17+), verified and parsed.

Odoo POSTs `json.dumps({"_action", "_id", "_model", <chosen fields read with load=None>},
sort_keys=True, default=str)` with only a Content-Type header: no signature, no timestamp,
no custom header. The only way to authenticate it is a shared secret the admin puts in the
webhook URL (`https://hub.example.com/webhooks/odoo?token=...`), or a header that a reverse
proxy in front of the hub adds (`X-Odoo-Webhook-Token`). Either is compared in constant
time with the system's `webhook.secret`.

Each notification is its own event (`model:id:write_date:<random>`). Odoo sends no event
id and never retries a notification, and two notifications of one record can be identical
byte for byte though they report different writes: `write_date` has one-second resolution
and the admin's chosen fields need not include what changed (the hub's own write, then a
user's edit in the same second). Deduplicating them would lose the second write; a double
delivery only asks for the record's sync twice, which the job queue collapses.
"""

from __future__ import annotations

import hmac
import json
import uuid
from collections.abc import Mapping
from typing import Any

from connectors.base import WebhookEvent, header

TOKEN_HEADER = "X-Odoo-Webhook-Token"
TOKEN_QUERY = "token"


class WebhookError(ValueError):
    """A body that is not an Odoo webhook notification; the message says why."""




def presented_token(headers: Mapping[str, str], query: Mapping[str, str]) -> str | None:
    """The token of a call: the header wins over the query parameter."""
    return header(headers, TOKEN_HEADER) or query.get(TOKEN_QUERY) or None


def token_matches(secret: str | None, headers: Mapping[str, str], query: Mapping[str, str]) -> bool:
    """True when a secret is configured and the call presents exactly it."""
    token = presented_token(headers, query)
    if not secret or not token:
        return False
    return hmac.compare_digest(token.encode("utf-8"), secret.encode("utf-8"))


def parse(body: bytes) -> list[WebhookEvent]:
    """The events of one notification body, or WebhookError."""
    try:
        data = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise WebhookError("body is not JSON") from None
    items = data if isinstance(data, list) else [data]
    return [_event(item, body) for item in items]


def _event(item: Any, body: bytes) -> WebhookEvent:
    if not isinstance(item, dict):
        raise WebhookError("a notification must be a JSON object")
    model, record_id = item.get("_model"), item.get("_id")
    if not isinstance(model, str) or not model:
        raise WebhookError("notification has no '_model'")
    if isinstance(record_id, bool) or not isinstance(record_id, (int, str)) or not str(record_id).strip():
        raise WebhookError("notification has no '_id'")
    payload = {k: v for k, v in item.items() if not k.startswith("_")}
    written = item.get("write_date")
    stamp = f"{written}:" if written not in (None, False, "") else ""
    return WebhookEvent(f"{model}:{record_id}:{stamp}{uuid.uuid4().hex[:16]}", model, str(record_id), "changed",
                        payload)
