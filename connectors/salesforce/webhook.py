"""Salesforce Outbound Messages: SOAP 1.1 notifications, read from bytes and acknowledged.

Salesforce signs nothing: an outbound message is trusted because it carries the org's
`OrganizationId` (and arrives over TLS, optionally with Salesforce's client certificate),
so that id is compared, in constant time, with the one configured for the system. There
is no timestamp either; redeliveries are recognised by the Notification Id, which is the
event id the hub deduplicates on.

Salesforce redelivers (with back-off, for up to 24 hours) until it reads exactly the
`notificationsResponse` envelope with `<Ack>true</Ack>`, so `ACK` is that envelope byte for
byte. The body is parsed by `connectors.xmlsafe` (expat), which refuses any DTD or entity
declaration whatever the body's encoding (Salesforce never sends one), so no entity can be
expanded into a field.
"""

from __future__ import annotations

import hmac
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field

from connectors import xmlsafe

SOAP_ENV = "http://schemas.xmlsoap.org/soap/envelope/"
OUTBOUND = "http://soap.sforce.com/2005/09/outbound"
SOBJECT = "urn:sobject.enterprise.soap.sforce.com"
XSI = "http://www.w3.org/2001/XMLSchema-instance"
CONTENT_TYPE = "text/xml; charset=utf-8"
MAX_BODY = 5 * 1024 * 1024  # bytes; 100 notifications of wide records fit easily

ACK = (
    b'<?xml version="1.0" encoding="UTF-8"?>\n'
    b'<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/">\n'
    b" <soapenv:Body>\n"
    b'  <notificationsResponse xmlns="http://soap.sforce.com/2005/09/outbound">\n'
    b"   <Ack>true</Ack>\n"
    b"  </notificationsResponse>\n"
    b" </soapenv:Body>\n"
    b"</soapenv:Envelope>\n"
)

class BadMessage(ValueError):
    """The body is not an outbound message this listener can read; the text says why."""


@dataclass(frozen=True)
class Notification:
    """One changed record: the notification's own id, the sObject type, its Id and fields."""

    id: str
    object: str
    record_id: str
    fields: dict[str, str | None] = field(default_factory=dict)


@dataclass(frozen=True)
class OutboundMessage:
    organization_id: str
    action_id: str
    notifications: list[Notification]


def fault(message: str) -> bytes:
    """A SOAP 1.1 Fault: what a listener answers when it refuses a message (no Ack)."""
    text = message.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/">\n'
        " <soapenv:Body>\n"
        "  <soapenv:Fault>\n"
        "   <faultcode>soapenv:Client</faultcode>\n"
        f"   <faultstring>{text}</faultstring>\n"
        "  </soapenv:Fault>\n"
        " </soapenv:Body>\n"
        "</soapenv:Envelope>\n"
    ).encode()


def parse(body: bytes) -> OutboundMessage:
    """The outbound message in `body`, or `BadMessage` naming what is wrong with it."""
    if len(body) > MAX_BODY:
        raise BadMessage("message too large")
    try:
        root = xmlsafe.parse(body, max_bytes=MAX_BODY)
    except xmlsafe.UnsafeXml as exc:
        text = str(exc)
        raise BadMessage(text if "DTD" in text else "body is not well-formed XML") from None
    notifications = root.find(f"{{{SOAP_ENV}}}Body/{{{OUTBOUND}}}notifications")
    if root.tag != f"{{{SOAP_ENV}}}Envelope" or notifications is None:
        raise BadMessage("not a SOAP envelope holding outbound notifications")
    organization_id = _text(notifications, "OrganizationId")
    if not organization_id:
        raise BadMessage("OrganizationId is missing")
    items = [_notification(node, i) for i, node in enumerate(notifications.findall(f"{{{OUTBOUND}}}Notification"))]
    return OutboundMessage(organization_id, _text(notifications, "ActionId") or "", items)


def same_organization(given: str, expected: str) -> bool:
    """Whether an org id in a message is the configured one, compared in constant time.

    Org ids are 15 characters (case-sensitive) or 18 (the 15 plus a checksum); a configured
    15-character id matches the first 15 characters of the 18 Salesforce sends.
    """
    if not given or not expected:
        return False
    if len(expected) == 15 and len(given) == 18:
        given = given[:15]
    return hmac.compare_digest(given.encode("utf-8"), expected.encode("utf-8"))


def _text(parent: ET.Element, name: str, namespace: str = OUTBOUND) -> str | None:
    node = parent.find(f"{{{namespace}}}{name}")
    if node is None or node.get(f"{{{XSI}}}nil") == "true":
        return None
    return (node.text or "").strip()


def _notification(node: ET.Element, index: int) -> Notification:
    notification_id = _text(node, "Id")
    sobject = node.find(f"{{{OUTBOUND}}}sObject")
    if not notification_id or sobject is None:
        raise BadMessage(f"Notification {index + 1} has no Id or no sObject")
    declared = sobject.get(f"{{{XSI}}}type") or ""
    object_name = declared.rpartition(":")[2]
    record_id = _text(sobject, "Id", SOBJECT)
    if not object_name or not record_id:
        raise BadMessage(f"Notification {index + 1} has no sObject type or no sf:Id")
    fields: dict[str, str | None] = {}
    for child in sobject:
        if child.tag.startswith(f"{{{SOBJECT}}}"):
            name = child.tag[len(SOBJECT) + 2:]
            fields[name] = None if child.get(f"{{{XSI}}}nil") == "true" else (child.text or "")
    return Notification(notification_id, object_name, record_id, fields)
