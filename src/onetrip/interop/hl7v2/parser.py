"""HL7 v2 messages as plain data — pure, no database (STYLE 7).

The charset is read from MSH-18 on the raw bytes before anything is decoded (the MSH fields up to 18
are ASCII in practice), then the text is split with the message's own encoding characters. We split
ourselves rather than with ``hl7.parse`` because we need to answer *why* a message is wrong with an HL7
table 0357 code, and ``hl7`` raises one generic error for all of them; ``hl7`` is still used for the
escape sequences (``\\F\\``, ``\\S\\`` ...).
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass, field

import hl7

SUPPORTED_VERSIONS = ("2.3", "2.3.1", "2.4", "2.5", "2.5.1")
SUPPORTED_EVENTS = {"ADT": ("A04", "A08", "A40"), "ORU": ("R01",), "VXU": ("V04",)}

# MSH-18 values (HL7 table 0211 plus what Chinese HIS vendors send) → Python codec.
CHARSETS = {
    "": "utf-8",
    "UNICODE UTF-8": "utf-8",
    "UTF-8": "utf-8",
    "UTF8": "utf-8",
    "GB 18030-2000": "gb18030",
    "GB18030": "gb18030",
    "GB 18030": "gb18030",
    "GB18030-2005": "gb18030",
    "GBK": "gbk",
    "GB2312": "gb18030",  # GB 18030 is a superset; decoding as it never loses a character
    "ASCII": "utf-8",
}

# HL7 table 0357 — message error condition codes.
SEGMENT_SEQUENCE_ERROR = "100"
REQUIRED_FIELD_MISSING = "101"
DATA_TYPE_ERROR = "102"
TABLE_VALUE_NOT_FOUND = "103"
UNSUPPORTED_MESSAGE_TYPE = "200"
UNSUPPORTED_EVENT_CODE = "201"
UNSUPPORTED_VERSION_ID = "203"
UNKNOWN_KEY_IDENTIFIER = "204"
APPLICATION_INTERNAL_ERROR = "207"
DUPLICATE_KEY = "205"  # MSH-10 already used by this sender for a different message

ERROR_NAMES = {
    "100": "Segment sequence error",
    "101": "Required field missing",
    "102": "Data type error",
    "103": "Table value not found",
    "200": "Unsupported message type",
    "201": "Unsupported event code",
    "203": "Unsupported version id",
    "204": "Unknown key identifier",
    "205": "Duplicate key identifier",
    "207": "Application internal error",
}


@dataclass(frozen=True)
class HL7Problem:
    """Why a message is refused: the ACK code (AE = error in the message, AR = we do not take this kind
    of message), the table 0357 code, where (ERR-2, e.g. ``MSH^1^12``) and a bilingual text."""

    ack_code: str
    code: str
    text: str
    location: str = ""


@dataclass
class Message:
    """A decoded message. ``segments`` keeps every segment as a list of raw field strings, index 0 being
    the segment id; for MSH, index 1 is MSH-1 (the field separator) so that ``fields[n]`` is MSH-n."""

    text: str
    charset: str  # the MSH-18 value as sent ("" = default UTF-8)
    codec: str
    field_sep: str = "|"
    component_sep: str = "^"
    repetition_sep: str = "~"
    escape_char: str = "\\"
    subcomponent_sep: str = "&"
    segments: list[list[str]] = field(default_factory=list)

    # ── access ───────────────────────────────────────────────────────────────────────────────────
    def segment(self, seg_id: str) -> list[str] | None:
        return next((s for s in self.segments if s[0] == seg_id), None)

    def field(self, seg_id: str, n: int, *, segment: list[str] | None = None) -> str:
        s = segment if segment is not None else self.segment(seg_id)
        if s is None or n >= len(s):
            return ""
        return s[n]

    def repetitions(self, raw: str) -> list[str]:
        return [r for r in raw.split(self.repetition_sep)] if raw else []

    def components(self, raw: str) -> list[str]:
        return [self.unescape(c) for c in raw.split(self.component_sep)] if raw else []

    def component(self, raw: str, n: int) -> str:
        """Component ``n`` (1-based) of a field value, unescaped."""
        parts = raw.split(self.component_sep) if raw else []
        return self.unescape(parts[n - 1]) if 0 < n <= len(parts) else ""

    def unescape(self, value: str) -> str:
        if self.escape_char not in value:
            return value
        container = hl7.Message(separator="\r", sequence=[], esc=self.escape_char,
                                separators="\r" + self.field_sep + self.repetition_sep + self.component_sep
                                + self.subcomponent_sep)
        return container.unescape(value)

    # ── the header ───────────────────────────────────────────────────────────────────────────────
    def blank(self, seg_id: str, n: int) -> bool:
        """True when the field holds nothing but separators and spaces (``^^`` counts as missing)."""
        seps = self.component_sep + self.repetition_sep + self.subcomponent_sep + " "
        return not self.field(seg_id, n).strip(seps)

    @property
    def sending_application(self) -> str:
        return self.component(self.field("MSH", 3), 1)

    @property
    def sending_facility(self) -> str:
        return self.component(self.field("MSH", 4), 1)

    @property
    def sender(self) -> str:
        """The inbox's sender key: sending application + facility (MSH-3 | MSH-4, first components)."""
        return f"{self.sending_application}|{self.sending_facility}"

    @property
    def message_code(self) -> str:
        return self.component(self.field("MSH", 9), 1)

    @property
    def trigger_event(self) -> str:
        return self.component(self.field("MSH", 9), 2)

    @property
    def message_type(self) -> str:
        return f"{self.message_code}^{self.trigger_event}" if self.trigger_event else self.message_code

    @property
    def control_id(self) -> str:
        return self.field("MSH", 10)

    @property
    def version(self) -> str:
        return self.component(self.field("MSH", 12), 1)


class HL7Error(Exception):
    def __init__(self, problem: HL7Problem) -> None:
        super().__init__(problem.text)
        self.problem = problem


def _raw_msh18(raw: bytes) -> str:
    first = raw.lstrip().split(b"\r", 1)[0].split(b"\n", 1)[0]
    if len(first) < 4 or not first.startswith(b"MSH"):
        return ""
    parts = first.split(first[3:4])
    return parts[17].split(b"^")[0].decode("ascii", "replace").strip() if len(parts) > 17 else ""


def codec_for(charset: str) -> str | None:
    return CHARSETS.get(charset.strip().upper())


def parse(raw: bytes) -> Message:
    """Decode and split. Raises ``HL7Error`` with the problem to put in the ACK."""
    charset = _raw_msh18(raw)
    codec = codec_for(charset)
    if codec is None:
        raise HL7Error(HL7Problem("AR", DATA_TYPE_ERROR, f"不支持的字符集 / unsupported character set "
                                                         f"(MSH-18) {charset!r}", "MSH^1^18"))
    try:
        text = raw.decode(codec)
    except UnicodeDecodeError as e:
        raise HL7Error(HL7Problem("AE", DATA_TYPE_ERROR, f"内容与字符集 {charset or 'UTF-8'} 不符 / bytes are "
                                                         f"not valid {codec} at offset {e.start}", "MSH^1^18")) from e
    return _split(text, charset, codec)


def parse_lenient(raw: bytes) -> Message | None:
    """Enough of an undecodable message to address the ACK to its sender (MSA-2 = its MSH-10)."""
    try:
        return _split(raw.decode("utf-8", "replace"), "", "utf-8")
    except HL7Error:
        return None


def _split(text: str, charset: str, codec: str) -> Message:
    text = text.strip().replace("\r\n", "\r").replace("\n", "\r")
    lines = [ln for ln in text.split("\r") if ln.strip()]
    if not lines or not lines[0].startswith("MSH") or len(lines[0]) < 8:
        raise HL7Error(HL7Problem("AE", SEGMENT_SEQUENCE_ERROR, "消息须以 MSH 段开始 / the message must start "
                                                                "with an MSH segment", "MSH^1"))
    fs = lines[0][3]
    enc = lines[0][4:8].split(fs, 1)[0]
    if len(enc) < 3 or fs.isalnum() or any(c.isalnum() for c in enc):
        raise HL7Error(HL7Problem("AE", REQUIRED_FIELD_MISSING, "MSH-1/MSH-2 分隔符无效 / invalid field "
                                                                "separator or encoding characters", "MSH^1^2"))
    msg = Message(text="\r".join(lines), charset=charset, codec=codec, field_sep=fs, component_sep=enc[0],
                  repetition_sep=enc[1], escape_char=enc[2], subcomponent_sep=enc[3] if len(enc) > 3 else "&")
    for ln in lines:
        parts = ln.split(fs)
        if parts[0] == "MSH":
            parts = ["MSH", fs, *parts[1:]]
        msg.segments.append(parts)
    return msg


def check(msg: Message) -> HL7Problem | None:
    """What is wrong with the message for us, or None: required header fields, version, type, event and
    the segments each accepted type needs before it can be stored and acknowledged AA."""
    for n, name in ((9, "MSH-9 message type"), (10, "MSH-10 control id"), (12, "MSH-12 version")):
        if msg.blank("MSH", n):
            return HL7Problem("AE", REQUIRED_FIELD_MISSING, f"缺少必填字段 {name.split()[0]} / required field "
                                                            f"missing: {name}", f"MSH^1^{n}")
    if len(msg.control_id) > 64:
        return HL7Problem("AE", DATA_TYPE_ERROR, "MSH-10 过长 / MSH-10 control id longer than 64", "MSH^1^10")
    if msg.version not in SUPPORTED_VERSIONS:
        return HL7Problem("AR", UNSUPPORTED_VERSION_ID, f"不支持的版本 {msg.version} / unsupported version id "
                                                        f"{msg.version!r} (accepted: 2.3–2.5.1)", "MSH^1^12")
    if msg.message_code not in SUPPORTED_EVENTS:
        return HL7Problem("AR", UNSUPPORTED_MESSAGE_TYPE, f"不支持的消息类型 / unsupported message type "
                                                          f"{msg.message_code!r}", "MSH^1^9^1")
    if msg.trigger_event not in SUPPORTED_EVENTS[msg.message_code]:
        return HL7Problem("AR", UNSUPPORTED_EVENT_CODE, f"不支持的事件 / unsupported event code "
                                                        f"{msg.message_type!r}", "MSH^1^9^2")
    if msg.message_code == "ADT":
        pid = msg.segment("PID")
        if pid is None:
            return HL7Problem("AE", SEGMENT_SEQUENCE_ERROR, "缺少 PID 段 / PID segment missing", "PID")
        if msg.blank("PID", 3):
            return HL7Problem("AE", REQUIRED_FIELD_MISSING, "缺少 PID-3 患者标识 / required field missing: "
                                                            "PID-3 patient identifier list", "PID^1^3")
        if msg.trigger_event != "A40" and msg.blank("PID", 5):
            return HL7Problem("AE", REQUIRED_FIELD_MISSING, "缺少 PID-5 姓名 / required field missing: "
                                                            "PID-5 patient name", "PID^1^5")
        if msg.trigger_event == "A40" and msg.blank("MRG", 1):
            return HL7Problem("AE", REQUIRED_FIELD_MISSING, "缺少 MRG-1 原患者标识 / required field missing: "
                                                            "MRG-1 prior patient identifier list", "MRG^1^1")
    return None


def _ts(now: dt.datetime) -> str:
    return now.astimezone(dt.UTC).strftime("%Y%m%d%H%M%S+0000")


def build_ack(msg: Message | None, ack_code: str, text: str, *, problem: HL7Problem | None = None,
              now: dt.datetime | None = None, control_id: str | None = None) -> bytes:
    """The ACK as bytes, in the message's own charset and separators. ``msg`` is None when the input
    could not even be split: the ACK then uses the defaults and empty MSA-2."""
    now = now or dt.datetime.now(dt.UTC)
    fs, cs, rs, es, ss = ("|", "^", "~", "\\", "&") if msg is None else (
        msg.field_sep, msg.component_sep, msg.repetition_sep, msg.escape_char, msg.subcomponent_sep)
    codec = "utf-8" if msg is None else msg.codec

    def esc(value: str) -> str:
        value = value.replace(es, f"{es}E{es}")
        for ch, code in ((fs, "F"), (cs, "S"), (rs, "R"), (ss, "T")):
            value = value.replace(ch, f"{es}{code}{es}")
        return value.replace("\r", " ").replace("\n", " ")

    g = (lambda n: msg.field("MSH", n)) if msg is not None else (lambda n: "")
    version = (msg.version if msg is not None and msg.version in SUPPORTED_VERSIONS else "2.5.1")
    trigger = msg.trigger_event if msg is not None else ""
    msh = ["MSH", cs + rs + es + ss, "ONETRIP", "ONETRIP", g(3), g(4), _ts(now), "",
           cs.join(["ACK", trigger, "ACK"]) if trigger else "ACK",
           control_id or uuid.uuid4().hex[:20], "P", version]
    if msg is not None and msg.charset:
        msh += [""] * 5 + [msg.charset]
    segments = [fs.join(msh), fs.join(["MSA", ack_code, esc(g(10)), esc(text)])]
    if problem is not None:
        err3 = cs.join([problem.code, esc(ERROR_NAMES[problem.code]), "HL70357"])
        location = cs.join(esc(p) for p in problem.location.split("^")) if problem.location else ""
        # ERR-2 location, ERR-3 code (CWE, table 0357), ERR-4 severity, ERR-8 user message (v2.5 layout).
        segments.append(fs.join(["ERR", "", location, err3, "E", "", "", "", esc(problem.text)]))
    return ("\r".join(segments) + "\r").encode(codec)


def hl7_date(value: str) -> dt.date | None:
    """PID-7 and friends: YYYY[MM[DD[...]]] → a date (only full dates are kept)."""
    digits = value.strip()[:8]
    if len(digits) < 8 or not digits.isdigit():
        return None
    try:
        return dt.date(int(digits[:4]), int(digits[4:6]), int(digits[6:8]))
    except ValueError:
        return None


def ack_code_of(ack: bytes) -> str:
    """MSA-1 of an ACK (used by tests and the CLI)."""
    for seg in ack.split(b"\r"):
        if seg.startswith(b"MSA"):
            return seg.split(seg[3:4])[1].decode("ascii")
    return ""
