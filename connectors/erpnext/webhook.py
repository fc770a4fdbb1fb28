"""Frappe webhooks: the `X-Frappe-Webhook-Signature` check and the events of one body.

A Frappe "Webhook" document with "Enable Security" signs each request with
base64(HMAC-SHA256(secret, body)), where body is `json.dumps(data)` of what its template
rendered (frappe/integrations/doctype/webhook/webhook.py). The template is the admin's
choice; the one synchub documents is the whole document (`{{ doc | tojson }}`), which
carries `doctype`, `name` and `modified`: enough to name the record and to tell one change
from the next. Frappe sends no timestamp of its own, so a replay cannot be told from a
retry here; the hub's inbox deduplicates by event id instead.

Everything here is a pure function over bytes, so it is tested without a server.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from typing import Any

from connectors.base import WebhookEvent

SIGNATURE_HEADER = "X-Frappe-Webhook-Signature"


class BadWebhook(ValueError):
    """A body that cannot be read as Frappe webhook events; the message says why."""


def sign(secret: str, body: bytes) -> str:
    """The signature Frappe puts in `X-Frappe-Webhook-Signature` for this body."""
    digest = hmac.new(secret.encode("utf-8"), body, hashlib.sha256).digest()
    return base64.b64encode(digest).decode("ascii")


def verify(secret: str, body: bytes, given: str | None) -> bool:
    """True when `given` is the signature of `body` under `secret` (constant-time compare)."""
    if not secret or not given:
        return False
    expected = sign(secret, body).encode("ascii")
    return hmac.compare_digest(expected, given.strip().encode("utf-8", "replace"))


def event_id(doctype: str, name: str, modified: str) -> str:
    """One change of one document: Frappe's retries of it share the id, a later change does not."""
    return f"{doctype}:{name}:{modified}"


def parse(body: bytes, default_doctype: str | None = None) -> list[WebhookEvent]:
    """The events of a verified body: one document object, or a list of them.

    `default_doctype` names the doctype when the template leaves `doctype` out (a webhook is
    configured per doctype, so a deployment may put it in the URL's query instead).
    """
    try:
        data = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise BadWebhook("body is not JSON") from None
    documents = data if isinstance(data, list) else [data]
    return [_event(doc, i, default_doctype) for i, doc in enumerate(documents)]


def _event(doc: Any, index: int, default_doctype: str | None) -> WebhookEvent:
    where = f"document {index}" if index else "body"
    if not isinstance(doc, dict):
        raise BadWebhook(f"{where} is not a JSON object")
    doctype = _text(doc.get("doctype")) or default_doctype
    name = _text(doc.get("name"))
    if not doctype or not name:
        raise BadWebhook(f"{where} needs 'doctype' and 'name' (use the whole document as the webhook's JSON)")
    modified = _text(doc.get("modified")) or ""
    kind = "cancelled" if doc.get("docstatus") == 2 else "changed"
    return WebhookEvent(event_id(doctype, name, modified), doctype, name, kind, doc)


def _text(value: Any) -> str | None:
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        return None
    text = str(value).strip()
    return text or None
