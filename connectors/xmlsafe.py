"""XML from the outside, parsed so that no DTD can ever take effect.

A DTD is how every XML attack works: entity expansion (billion laughs), external entities
(files, URLs), parameter entities. No vendor callback needs one, so a document that declares
a DTD or an entity is refused outright, by the parser itself: expat reports the declaration
to a handler that raises, whatever the document's encoding (a byte-level check for
`<!DOCTYPE` misses a UTF-16 body). Undeclared entity references are then a parse error.

One parser for every connector that reads XML (WeCom's callbacks, Salesforce's outbound
messages), built on expat directly because `xml.etree` offers no hook to refuse a DTD.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from typing import Any
from xml.parsers import expat

DEFAULT_MAX_BYTES = 1 << 20


class UnsafeXml(ValueError):
    """The bytes are not acceptable XML: too large, malformed, or declaring a DTD/entities."""


class _Refused(Exception):
    """Raised inside expat's callbacks; turned into `UnsafeXml` once the parser has unwound."""


def parse(data: bytes, *, namespaces: bool = False, max_bytes: int = DEFAULT_MAX_BYTES) -> ET.Element:
    """The root element of `data`, or `UnsafeXml` saying why not.

    With `namespaces`, names are in ElementTree's `{uri}local` form (for elements and
    attributes), as `ET.fromstring` gives them; without, they are kept as written.
    """
    if len(data) > max_bytes:
        raise UnsafeXml("XML body too large")
    builder = ET.TreeBuilder()
    parser = expat.ParserCreate(namespace_separator="}" if namespaces else None)
    parser.SetParamEntityParsing(expat.XML_PARAM_ENTITY_PARSING_NEVER)
    name = _clark if namespaces else _same

    def refuse(*_args: Any) -> None:
        raise _Refused

    parser.StartDoctypeDeclHandler = refuse
    parser.EntityDeclHandler = refuse
    parser.UnparsedEntityDeclHandler = refuse
    parser.NotationDeclHandler = refuse
    parser.ExternalEntityRefHandler = refuse  # type: ignore[assignment]
    parser.StartElementHandler = lambda tag, attrs: builder.start(name(tag), {name(k): v for k, v in attrs.items()})
    parser.EndElementHandler = lambda tag: builder.end(name(tag))
    parser.CharacterDataHandler = builder.data
    try:
        parser.Parse(data, True)
        return builder.close()
    except _Refused:
        raise UnsafeXml("XML with a DTD or entity declarations is refused") from None
    except (expat.ExpatError, AssertionError, IndexError) as exc:
        raise UnsafeXml(f"malformed XML: {exc}") from None


def _clark(name: str) -> str:
    """expat's `uri}local` as ElementTree's `{uri}local`; unqualified names stay as they are."""
    return "{" + name if "}" in name else name


def _same(name: str) -> str:
    return name
