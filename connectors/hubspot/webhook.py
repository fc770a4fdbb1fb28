"""HubSpot webhook signatures and events, as pure functions over the bytes HubSpot sent.

HubSpot signs every webhook call three ways at once; this module checks the strongest one it
finds: v3 (`X-HubSpot-Signature-v3`, a base64 HMAC-SHA256 keyed by the app's client secret
over method + URI + body + timestamp, with a 5-minute replay window), else v2 when
`X-HubSpot-Signature-Version: v2` says so (hex SHA-256 of secret + method + URI + body).
v1 binds neither the URL nor a time, so a v1-only call is refused.

The URI is the full URL HubSpot called. HubSpot decodes a fixed set of percent-encodings
before signing v3, so the verifier decodes the same set; both the raw and the decoded URI
are tried, which keeps a proxy's re-encoding from breaking verification.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Mapping
from typing import Any

from connectors.base import WebhookEvent, header

SIGNATURE_V3 = "X-HubSpot-Signature-v3"
TIMESTAMP = "X-HubSpot-Request-Timestamp"
SIGNATURE = "X-HubSpot-Signature"
SIGNATURE_VERSION = "X-HubSpot-Signature-Version"
MAX_AGE_MS = 5 * 60 * 1000

# The percent-encodings HubSpot's v3 documentation says to decode in the URI before signing.
_DECODED = {"%3A": ":", "%2F": "/", "%3F": "?", "%40": "@", "%21": "!", "%24": "$", "%27": "'",
            "%28": "(", "%29": ")", "%2A": "*", "%2C": ",", "%3B": ";"}

# subscriptionType prefixes to the CRM v3 object names the connector pulls.
OBJECTS = {"company": "companies", "contact": "contacts", "deal": "deals", "line_item": "line_items",
           "product": "products", "ticket": "tickets"}


class BadWebhook(ValueError):
    """A webhook that must not be stored; `status` is what to answer HubSpot."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status




def decode_uri(uri: str) -> str:
    """The URI as HubSpot signs it for v3: the documented percent-encodings decoded."""
    if "%" not in uri:
        return uri
    out = []
    i = 0
    while i < len(uri):
        chunk = uri[i:i + 3].upper()
        if uri[i] == "%" and chunk in _DECODED:
            out.append(_DECODED[chunk])
            i += 3
        else:
            out.append(uri[i])
            i += 1
    return "".join(out)


def sign_v3(secret: str, method: str, uri: str, body: bytes, timestamp: str) -> str:
    """The `X-HubSpot-Signature-v3` value of one call."""
    message = method.upper().encode("utf-8") + uri.encode("utf-8") + body + timestamp.encode("utf-8")
    digest = hmac.new(secret.encode("utf-8"), message, hashlib.sha256).digest()
    return base64.b64encode(digest).decode("ascii")


def sign_v2(secret: str, method: str, uri: str, body: bytes) -> str:
    """The `X-HubSpot-Signature` value of a v2-signed call."""
    message = secret.encode("utf-8") + method.upper().encode("utf-8") + uri.encode("utf-8") + body
    return hashlib.sha256(message).hexdigest()


def sign_v1(secret: str, body: bytes) -> str:
    """The v1 `X-HubSpot-Signature` (secret + body), which HubSpot still sends beside v3."""
    return hashlib.sha256(secret.encode("utf-8") + body).hexdigest()


def _same(expected: str, given: str) -> bool:
    return hmac.compare_digest(expected.encode("ascii"), given.strip().encode("utf-8", "replace"))


def verify(secret: str, method: str, uri: str, headers: Mapping[str, str], body: bytes, now_ms: int) -> None:
    """Raise `BadWebhook` (401) unless the call carries a valid, fresh v3 or v2 signature."""
    given_v3 = header(headers, SIGNATURE_V3)
    if given_v3 is not None:
        timestamp = (header(headers, TIMESTAMP) or "").strip()
        if not (timestamp.isascii() and timestamp.isdigit()):
            raise BadWebhook("missing or malformed X-HubSpot-Request-Timestamp", 401)
        if abs(now_ms - int(timestamp)) > MAX_AGE_MS:  # a future time would stay replayable until then
            raise BadWebhook("stale webhook: timestamp more than 5 minutes from now", 401)
        candidates = dict.fromkeys((decode_uri(uri), uri))
        if not any(_same(sign_v3(secret, method, c, body, timestamp), given_v3) for c in candidates):
            raise BadWebhook("bad X-HubSpot-Signature-v3", 401)
        return
    version = (header(headers, SIGNATURE_VERSION) or "").strip().lower()
    given = header(headers, SIGNATURE)
    if version == "v2" and given is not None:
        if not _same(sign_v2(secret, method, uri, body), given.lower()):
            raise BadWebhook("bad X-HubSpot-Signature (v2)", 401)
        return
    raise BadWebhook("no v3 or v2 HubSpot signature", 401)


def _identifier(value: Any) -> str | None:
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        return None
    text = str(value)
    return text or None


def parse_event(item: Any, index: int) -> WebhookEvent:
    """One element of HubSpot's event array as a `WebhookEvent`."""
    if not isinstance(item, dict):
        raise BadWebhook(f"event {index} is not an object", 400)
    event_id = _identifier(item.get("eventId"))
    subscription = item.get("subscriptionType")
    if event_id is None or not isinstance(subscription, str) or "." not in subscription:
        raise BadWebhook(f"event {index} needs eventId and subscriptionType", 400)
    prefix, _, kind = subscription.partition(".")
    record_id = next((_identifier(item.get(k)) for k in ("objectId", "primaryObjectId", "fromObjectId")
                      if _identifier(item.get(k)) is not None), None)
    if record_id is None:
        raise BadWebhook(f"event {index} names no object id", 400)
    obj = OBJECTS.get(prefix, prefix)
    payload = {k: item[k] for k in ("propertyName", "propertyValue", "occurredAt", "changeSource", "portalId",
                                    "attemptNumber", "subscriptionType") if k in item}
    return WebhookEvent(event_id, obj, record_id, kind, payload)


def parse_events(body: bytes) -> list[WebhookEvent]:
    """HubSpot's body (a JSON array of events) as events; `BadWebhook` (400) when malformed."""
    try:
        data = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise BadWebhook("body is not JSON", 400) from None
    if not isinstance(data, list):
        raise BadWebhook("body must be a JSON array of events", 400)
    return [parse_event(item, i) for i, item in enumerate(data)]
