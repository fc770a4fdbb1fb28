"""`connectors.xmlsafe`: no DTD takes effect, whichever way the bytes are encoded, and the one-pass
path is taken only where the bytes alone prove there is no DTD."""

from __future__ import annotations

import pytest

from connectors import xmlsafe
from connectors.xmlsafe import UnsafeXml, parse

DTD = '<!DOCTYPE xml [<!ENTITY a "INJECTED">]>'
BODY = "<xml><Encrypt>&a;</Encrypt></xml>"


@pytest.mark.parametrize("data", [
    (DTD + BODY).encode("utf-8"),
    ('<?xml version="1.0" encoding="UTF-8"?>' + DTD + BODY).encode("utf-8"),
    ('<?xml version="1.0"?>' + DTD + BODY).encode("utf-16"),                            # with a BOM
    ('<?xml version="1.0" encoding="UTF-16"?>' + DTD + BODY).encode("utf-16-le"),       # no BOM: "<\0?\0"
    (DTD + BODY).encode("utf-16-be"),                                                   # no BOM: "\0<"
    ('<?xml version="1.0" encoding="ISO-8859-1"?>' + DTD + BODY).encode("latin-1"),
    ("\ufeff" + DTD + BODY).encode("utf-8"),                                            # UTF-8 BOM
], ids=["utf-8", "utf-8 declared", "utf-16 bom", "utf-16-le bare", "utf-16-be bare", "latin-1", "utf-8 bom"])
def test_a_dtd_is_refused_in_any_encoding(data: bytes) -> None:
    with pytest.raises(UnsafeXml, match="DTD|malformed"):
        parse(data)


@pytest.mark.parametrize(("data", "plain"), [
    (b"<xml><a>1</a></xml>", True),
    (b'<?xml version="1.0"?><xml/>', True),
    (b"<?xml version='1.0' encoding='utf-8' standalone='yes'?><xml/>", True),
    (b'<?xml version="1.0" encoding="UTF-8"?><xml/>', True),
    (b'<?xml version="1.0" encoding="GBK"?><xml/>', False),
    (b'<?xml version="1.0" encoding="UTF-16"?><xml/>', False),
    ("<xml/>".encode("utf-16"), False),
    ("<xml/>".encode("utf-16-le"), False),
    (b"\xef\xbb\xbf<xml/>", False),  # a BOM: both passes, to be safe
    (b" <xml/>", False),
])
def test_only_plainly_utf8_documents_may_skip_the_refusing_pass(data: bytes, plain: bool) -> None:
    assert xmlsafe._plainly_utf8(data) is plain


def test_the_one_pass_path_parses_as_the_two_pass_path_does() -> None:
    data = ('<?xml version="1.0" encoding="UTF-8"?><e:Envelope xmlns:e="urn:x"><e:Body><n>华为</n>'
            "<m><![CDATA[<a>&amp;</a>]]></m></e:Body></e:Envelope>").encode("utf-8")
    root = parse(data)
    assert root.tag == "{urn:x}Envelope"
    body = root.find("{urn:x}Body")
    assert body is not None and body.findtext("n") == "华为" and body.findtext("m") == "<a>&amp;</a>"


def test_doctype_text_in_a_comment_takes_both_passes_and_is_accepted(monkeypatch: pytest.MonkeyPatch) -> None:
    passes: list[bytes] = []
    refuse = xmlsafe._refuse_dtd
    monkeypatch.setattr(xmlsafe, "_refuse_dtd", lambda data: (passes.append(data), refuse(data)))
    assert parse(b"<xml><!-- <!DOCTYPE is only text here --><a>1</a></xml>").findtext("a") == "1"
    assert parse(b"<xml><a>2</a></xml>").findtext("a") == "2"
    assert len(passes) == 1  # the comment's document only


def test_an_undeclared_entity_is_malformed_on_the_one_pass_path() -> None:
    with pytest.raises(UnsafeXml, match="malformed"):
        parse(b"<xml><a>&undeclared;</a></xml>")
