"""WeCom callbacks as pure functions over bytes: the URL check, the encrypted XML events, and
the `sys_approval_change` approval events inside them.

Order of checks, so that nothing unverified is parsed further than needed: the outer XML
envelope is read only to find `Encrypt` (a body that is not the envelope is a 400); then
the timestamp window and msg_signature (401); then decryption, padding, length and corp id
(401); only then is the decrypted XML read (400 when it is not WeCom's event XML).

XML is parsed by `connectors.xmlsafe` (expat), which refuses any DTD, so no entity
declaration (billion laughs, external entities) can ever be expanded. WeCom gives approval events no id of their
own; the event id is a digest of sp_no, status, change kind and the message's CreateTime,
which a retried delivery repeats unchanged (the hub's inbox dedupes on it).
"""

from __future__ import annotations

import hashlib
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import structlog

from connectors import xmlsafe
from connectors.base import WebhookEvent, WebhookReply, WebhookRequest
from connectors.wecom.crypto import CryptoError, WeComCrypto

log = structlog.get_logger()

DEFAULT_MAX_AGE = 300.0  # seconds; WeCom documents no window of its own (see the connector docstring)
APPROVAL_EVENT = "sys_approval_change"
_MAX_BODY = 1 << 20  # WeCom callbacks are a few KB


class NotWeComXml(ValueError):
    """Bytes that are not the XML WeCom sends (malformed, a DTD, or missing elements)."""


# --- XML -----------------------------------------------------------------------------------


def parse_xml(data: bytes) -> ET.Element:
    """Parse XML with the shared expat parser, which refuses DTDs and entity declarations."""
    try:
        return xmlsafe.parse(data, max_bytes=_MAX_BODY)
    except xmlsafe.UnsafeXml as exc:
        raise NotWeComXml(str(exc)) from None


def _text(node: ET.Element | None, name: str) -> str:
    found = node.find(name) if node is not None else None
    return (found.text or "").strip() if found is not None else ""


def _int(node: ET.Element | None, name: str) -> int:
    text = _text(node, name)
    try:
        return int(text) if text else 0
    except ValueError:
        raise NotWeComXml(f"<{name}> is not a number") from None


@dataclass(frozen=True)
class Envelope:
    """The outer XML of an event callback."""

    to_user: str
    agent_id: str
    encrypted: str


def parse_envelope(body: bytes) -> Envelope:
    root = parse_xml(body)
    if root.tag != "xml":
        raise NotWeComXml("root element is not <xml>")
    encrypted = _text(root, "Encrypt")
    if not encrypted:
        raise NotWeComXml("no <Encrypt> element")
    return Envelope(_text(root, "ToUserName"), _text(root, "AgentID"), encrypted)


def render_envelope(to_user: str, agent_id: str, encrypted: str) -> bytes:
    """The outer XML WeCom posts (used by the sandbox)."""
    return (f"<xml><ToUserName><![CDATA[{to_user}]]></ToUserName>"
            f"<AgentID><![CDATA[{agent_id}]]></AgentID>"
            f"<Encrypt><![CDATA[{encrypted}]]></Encrypt></xml>").encode()


# --- approval events -----------------------------------------------------------------------


@dataclass(frozen=True)
class ApprovalChange:
    """A decrypted `sys_approval_change` event: what changed, and when WeCom said so."""

    sp_no: str
    sp_status: int
    template_id: str
    change_event: int
    create_time: int
    sp_name: str = ""
    applyer: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def event_id(self) -> str:
        """Stable across WeCom's retries of one message (they repeat CreateTime)."""
        basis = f"wecom:{self.sp_no}:{self.sp_status}:{self.change_event}:{self.create_time}"
        return hashlib.sha256(basis.encode("utf-8")).hexdigest()[:32]


def parse_message(message: bytes) -> ApprovalChange | None:
    """The approval change in a decrypted message, or None for any other kind of event."""
    root = parse_xml(message)
    if root.tag != "xml":
        raise NotWeComXml("root element is not <xml>")
    if _text(root, "MsgType") != "event" or _text(root, "Event") != APPROVAL_EVENT:
        return None
    info = root.find("ApprovalInfo")
    if info is None or not _text(info, "SpNo"):
        raise NotWeComXml("sys_approval_change without <ApprovalInfo><SpNo>")
    return ApprovalChange(
        sp_no=_text(info, "SpNo"),
        sp_status=_int(info, "SpStatus"),
        template_id=_text(info, "TemplateId"),
        change_event=_int(info, "StatuChangeEvent"),
        create_time=_int(root, "CreateTime"),
        sp_name=_text(info, "SpName"),
        applyer=_text(info.find("Applyer"), "UserId"),
    )


# --- the callback --------------------------------------------------------------------------


@dataclass(frozen=True)
class CallbackSettings:
    """What verifying one system's callbacks needs."""

    crypto: WeComCrypto
    kind_of_template: Mapping[str, str]  # template id -> approval kind (the connector object)
    max_age: float = DEFAULT_MAX_AGE


def _reply(status: int, body: bytes = b"", events: list[WebhookEvent] | None = None) -> WebhookReply:
    return WebhookReply(status, body, "text/plain", events or [])


def _fresh(timestamp: str, max_age: float, now: float) -> bool:
    try:
        sent = int(timestamp)
    except ValueError:
        return False
    return abs(now - sent) <= max_age


def handle(request: WebhookRequest, settings: CallbackSettings, now: Callable[[], float] = time.time) -> WebhookReply:
    """Answer one callback exactly as WeCom expects; never raises."""
    try:
        return _handle(request, settings, now())
    except Exception as exc:  # a webhook endpoint must answer, whatever arrives
        log.warning("wecom callback failed", error=type(exc).__name__)
        return _reply(400)


def _handle(request: WebhookRequest, settings: CallbackSettings, now: float) -> WebhookReply:
    query = request.query
    msg_signature, timestamp, nonce = (query.get(k, "") for k in ("msg_signature", "timestamp", "nonce"))
    method = request.method.upper()
    if method == "GET":
        encrypted = query.get("echostr", "")
        if not encrypted:
            return _reply(400)
    elif method == "POST":
        try:
            envelope = parse_envelope(request.body)
        except NotWeComXml as exc:
            log.info("wecom callback refused", reason=str(exc))
            return _reply(400)
        encrypted = envelope.encrypted
    else:
        return _reply(405)
    if not (msg_signature and timestamp and nonce):
        return _reply(401)
    if not _fresh(timestamp, settings.max_age, now):
        log.info("wecom callback refused", reason="stale or bad timestamp")
        return _reply(401)
    if not settings.crypto.verify(msg_signature, timestamp, nonce, encrypted):
        log.info("wecom callback refused", reason="bad signature")
        return _reply(401)
    try:
        message = settings.crypto.decrypt(encrypted)
    except CryptoError as exc:
        log.info("wecom callback refused", reason=str(exc))
        return _reply(401)
    if method == "GET":
        return _reply(200, message)  # the URL check: the plaintext itself, no quotes, no newline
    return _events_reply(message, settings)


def _events_reply(message: bytes, settings: CallbackSettings) -> WebhookReply:
    try:
        change = parse_message(message)
    except NotWeComXml as exc:
        log.info("wecom callback refused", reason=str(exc))
        return _reply(400)
    if change is None:
        return _reply(200)  # another event type: acknowledged, nothing to sync
    kind = settings.kind_of_template.get(change.template_id)
    if kind is None:
        log.info("wecom approval event for an unconfigured template", template_id=change.template_id)
        return _reply(200)
    event = WebhookEvent(change.event_id, kind, change.sp_no, "changed",
                         {"sp_status": change.sp_status, "change_event": change.change_event,
                          "template_id": change.template_id, "create_time": change.create_time})
    return _reply(200, b"", [event])
