"""XML from the outside, parsed so that no DTD can ever take effect.

A DTD is how every XML attack works: entity expansion (billion laughs), external entities
(files, URLs), parameter entities. No vendor callback needs one, so a document that declares
a DTD or an entity is refused outright, by the parser itself: expat reports the declaration
to a handler that raises, whatever the document's encoding (a byte-level check for
`<!DOCTYPE` misses a UTF-16 body). Undeclared entity references are then a parse error.

One parser for every connector that reads XML (WeCom's callbacks, Salesforce's outbound
messages). `xml.etree` offers no hook to refuse a DTD, so expat, with handlers that refuse, reads
the document first; ElementTree builds the tree of a document that passed. That first pass is
skipped only where bytes can tell for certain that there is no DTD (`_plainly_utf8`).
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from typing import Any
from xml.parsers import expat

DEFAULT_MAX_BYTES = 1 << 20


class UnsafeXml(ValueError):
    """The bytes are not acceptable XML: too large, malformed, or declaring a DTD/entities."""


class _Refused(Exception):
    """Raised inside expat's callbacks; turned into `UnsafeXml` once the parser has unwound."""


def parse(data: bytes, *, max_bytes: int = DEFAULT_MAX_BYTES) -> ET.Element:
    """The root element of `data`, or `UnsafeXml` saying why not.

    Two passes over the same bytes: `_refuse_dtd` lets expat read the document with only
    the refusing handlers set (all in C, so cheap), and only a document that has no DTD is
    then built into a tree by ElementTree's C parser; expat reads the same bytes the same
    way twice, so the second pass cannot meet a declaration the first one did not refuse.
    Names are in ElementTree's `{uri}local` form where a namespace applies (as
    `ET.fromstring` gives them), as written where none does.
    """
    if len(data) > max_bytes:
        raise UnsafeXml("XML body too large")
    try:
        if not (_plainly_utf8(data) and _DOCTYPE not in data):
            _refuse_dtd(data)
        return _tree(data)
    except _Refused:
        raise UnsafeXml("XML with a DTD or entity declarations is refused") from None
    except (expat.ExpatError, ET.ParseError, AssertionError, IndexError) as exc:
        raise UnsafeXml(f"malformed XML: {exc}") from None


#: Every DTD opens with these bytes in UTF-8; entities and notations are only declared in one.
_DOCTYPE = b"<!DOCTYPE"
#: An XML declaration that leaves expat reading UTF-8: no encoding, or UTF-8 named.
_UTF8_DECLARATION = re.compile(
    rb"""<\?xml\s+version\s*=\s*("1\.[0-9]+"|'1\.[0-9]+')"""
    rb"""(\s+encoding\s*=\s*("(?i:utf-8)"|'(?i:utf-8)'))?"""
    rb"""(\s+standalone\s*=\s*("(?:yes|no)"|'(?:yes|no)'))?\s*\?>""")


def _plainly_utf8(data: bytes) -> bool:
    """Whether expat reads `data` as UTF-8, so that a DTD in it must show as the bytes `<!DOCTYPE`.

    Then the refusing pass can be skipped for a document without those bytes, which is every
    vendor callback (WeCom's two parses per callback were 40% of its verification time).
    UTF-8 needs: no BOM of another encoding and no NUL among the first bytes (expat takes
    `<\\0?\\0` for UTF-16 without a BOM), and no XML declaration naming another encoding.
    A document that fails this, or holds `<!DOCTYPE` anywhere (a comment, say), takes both passes.
    """
    if not data.startswith(b"<") or b"\x00" in data[:4]:
        return False
    return not data.startswith(b"<?xml") or _UTF8_DECLARATION.match(data) is not None


def _refuse(*_args: Any) -> None:
    raise _Refused


def _refuse_dtd(data: bytes) -> None:
    """Read the whole document, raising `_Refused` at any DTD, entity or notation declaration."""
    parser = expat.ParserCreate()
    parser.SetParamEntityParsing(expat.XML_PARAM_ENTITY_PARSING_NEVER)
    parser.StartDoctypeDeclHandler = _refuse
    parser.EntityDeclHandler = _refuse
    parser.UnparsedEntityDeclHandler = _refuse
    parser.NotationDeclHandler = _refuse
    parser.ExternalEntityRefHandler = _refuse  # type: ignore[assignment]
    parser.Parse(data, True)


def _tree(data: bytes) -> ET.Element:
    parser = ET.XMLParser()
    parser.feed(data)
    return parser.close()
