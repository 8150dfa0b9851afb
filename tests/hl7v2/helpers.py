"""HL7 test messages and a raw-socket MLLP peer (no library between the test and the wire)."""

from __future__ import annotations

import socket

START, END = b"\x0b", b"\x1c\x0d"


def adt(facility: str, control_id: str, *, event: str = "A04", mrn: str = "M001", family: str = "张",
        given: str = "三", birth: str = "19900307", sex: str = "M", id_number: str = "", phone: str = "",
        version: str = "2.5", charset: str = "", app: str = "HIS", mrg: str = "") -> str:
    pid3 = f"{mrn}^^^{facility}^MR" + (f"~{id_number}^^^CHN^NNCHN" if id_number else "")
    msh = (f"MSH|^~\\&|{app}|{facility}|ONETRIP|ONETRIP|20261123080000||ADT^{event}^ADT_A01|{control_id}|P|{version}"
           + (f"||||||{charset}" if charset else ""))
    segs = [msh, "EVN|" + event + "|20261123080000",
            f"PID|1||{pid3}||{family}^{given}||{birth}|{sex}|||北京路1号^^广州市^广东省||{phone}"]
    if mrg:
        segs.append(f"MRG|{mrg}^^^{facility}^MR")
    return "\r".join(segs) + "\r"


def oru(facility: str, control_id: str) -> str:
    return "\r".join([
        f"MSH|^~\\&|LIS|{facility}|ONETRIP|ONETRIP|20261123080000||ORU^R01^ORU_R01|{control_id}|P|2.5.1",
        f"PID|1||M001^^^{facility}^MR||张^三",
        "OBR|1||L1|718-7^Hemoglobin^LN",
        "OBX|1|NM|718-7^Hemoglobin^LN||135|g/L|||||F"]) + "\r"


class Peer:
    """A raw MLLP client: send a frame, read one framed reply."""

    def __init__(self, port: int, timeout: float = 20.0) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.buf = b""

    def send(self, payload: bytes) -> None:
        self.sock.sendall(START + payload + END)

    def read_ack(self) -> bytes:
        while END not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("closed")
            self.buf += chunk
        frame, self.buf = self.buf.split(END, 1)
        return frame[frame.index(START) + 1:]

    def call(self, payload: bytes | str, encoding: str = "utf-8") -> bytes:
        self.send(payload.encode(encoding) if isinstance(payload, str) else payload)
        return self.read_ack()

    def close(self) -> None:
        self.sock.close()


def segment(ack: bytes, seg_id: str, encoding: str = "utf-8") -> list[str]:
    for seg in ack.decode(encoding).split("\r"):
        if seg.startswith(seg_id + "|"):
            return seg.split("|")
    return []
