"""The pure parser: charsets, splitting with the message's own separators, checks and ACKs."""

from __future__ import annotations

import pytest

from onetrip.interop.hl7v2 import parser
from tests.hl7v2.helpers import adt, oru, segment


def test_header_and_fields_utf8():
    m = parser.parse(adt("LH1", "C1").encode())
    assert (m.sender, m.message_type, m.control_id, m.version, m.codec) == ("HIS|LH1", "ADT^A04", "C1", "2.5",
                                                                           "utf-8")
    assert m.component(m.field("PID", 5), 1) == "张"
    assert parser.check(m) is None


@pytest.mark.parametrize("charset", ["GBK", "GB 18030-2000", "GB18030"])
def test_chinese_charsets(charset):
    m = parser.parse(adt("LH1", "C1", family="欧阳", given="娜娜", charset=charset).encode(
        "gb18030" if "18030" in charset else "gbk"))
    assert m.component(m.field("PID", 5), 1) + m.component(m.field("PID", 5), 2) == "欧阳娜娜"
    ack = parser.build_ack(m, "AA", "已保存 / stored")
    assert segment(ack, "MSA", m.codec)[1:3] == ["AA", "C1"]
    assert segment(ack, "MSH", m.codec)[17] == charset  # the ACK answers in the message's charset


def test_own_encoding_characters_and_escapes():
    raw = adt("LH1", "C1").replace("^~\\&", "#!$*", 1).replace("^", "#").replace("~", "!")
    raw = raw.replace("北京路1号", "A$F$B")  # an escaped field separator, escape character '$'
    m = parser.parse(raw.encode())
    assert m.component_sep == "#" and m.message_type == "ADT^A04"
    assert m.component(m.field("PID", 11), 1) == "A|B"


def test_ack_escapes_separators_in_text():
    m = parser.parse(adt("LH1", "C1").encode())
    ack = parser.build_ack(m, "AE", "a|b^c", problem=parser.HL7Problem("AE", "101", "x|y", "PID^1^5"))
    err = segment(ack, "ERR")
    assert err[2] == "PID^1^5" and err[3] == "101^Required field missing^HL70357" and err[4] == "E"
    assert err[8] == "x\\F\\y"


@pytest.mark.parametrize(("text", "ack", "code"), [
    (adt("LH1", "C1", version="2.6"), "AR", "203"),
    (adt("LH1", "C1", version="2.2"), "AR", "203"),
    (adt("LH1", "C1", event="A99"), "AR", "201"),
    (adt("LH1", "C1").replace("ADT^A04^ADT_A01", "SIU^S12"), "AR", "200"),
    (adt("LH1", ""), "AE", "101"),
    (adt("LH1", "C1", family="", given=""), "AE", "101"),
    (adt("LH1", "C1", event="A40"), "AE", "101"),  # A40 without MRG
    ("\r".join(adt("LH1", "C1").split("\r")[:2]), "AE", "100"),  # no PID
])
def test_check_codes(text, ack, code):
    problem = parser.check(parser.parse(text.encode()))
    assert problem is not None and (problem.ack_code, problem.code) == (ack, code)
    assert " / " in problem.text  # bilingual


@pytest.mark.parametrize("version", parser.SUPPORTED_VERSIONS)
def test_supported_versions(version):
    assert parser.check(parser.parse(adt("LH1", "C1", version=version).encode())) is None


def test_oru_accepted():
    assert parser.check(parser.parse(oru("LH1", "R1").encode())) is None


@pytest.mark.parametrize(("raw", "code"), [
    (b"PID|1||x", "100"),
    (b"", "100"),
    (adt("LH1", "C1", charset="EBCDIC").encode(), "102"),
    (adt("LH1", "C1", charset="UNICODE UTF-8", family="\u5f20").encode("gbk"), "102"),  # GBK bytes said UTF-8
])
def test_parse_errors(raw, code):
    with pytest.raises(parser.HL7Error) as e:
        parser.parse(raw)
    assert e.value.problem.code == code


def test_hl7_date():
    assert str(parser.hl7_date("19900307120000")) == "1990-03-07"
    assert parser.hl7_date("1990") is None and parser.hl7_date("19901340") is None
