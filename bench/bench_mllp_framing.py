"""MLLP framing cost: the old listener loop against ``mllp.Framer`` (issue 26). Not part of the test run.

One HL7 message (an ORU^R01 made of OBX lines) of 1, 4 and 16 MB is fed in fixed chunks (64 KB by default, the
listener's read size) to both, with no socket and no database, so only framing is timed:

- **old**: the loop the listener had before issue 26 — append the read to one buffer, then search the whole
  buffer again for the start and end markers (quadratic in the message size);
- **new**: ``Framer.feed`` — each received byte examined once (linear).

Both must return the same single payload. Best of ``--repeat`` runs; "scanned" is the bytes each searched.

    .venv/bin/python bench/bench_mllp_framing.py
    .venv/bin/python bench/bench_mllp_framing.py --sizes 1 4 16 --chunk-kb 64 --repeat 3
"""

from __future__ import annotations

import argparse
import os
import platform
import time

from onetrip.interop.hl7v2.mllp import END_BLOCK, START_BLOCK, Framer

MB = 1024 * 1024


def message(size: int) -> bytes:
    """An ORU^R01 of about ``size`` bytes (MSH, PID, OBR, then numbered OBX lines)."""
    head = ("MSH|^~\\&|LIS|H001|ONETRIP|ONETRIP|20261123080000||ORU^R01^ORU_R01|BENCH-1|P|2.5.1\r"
            "PID|1||M001^^^H001^MR||张^三\rOBR|1||L1|718-7^Hemoglobin^LN\r").encode()
    lines, total, i = [head], len(head), 0
    while total < size:
        i += 1
        line = f"OBX|{i}|NM|718-7^Hemoglobin^LN||{100 + i % 60}|g/L|130-175|N|||F\r".encode()
        lines.append(line)
        total += len(line)
    return b"".join(lines)


def old_intake(chunks: list[bytes], max_bytes: int) -> tuple[list[bytes], int]:
    """The listener's framing before issue 26 (``mllp.py`` ``_client``), without the socket."""
    buf, frames, scanned = bytearray(), [], 0
    for chunk in chunks:
        buf += chunk
        while True:
            start = buf.find(START_BLOCK)
            if start < 0:
                scanned += len(buf)
                buf.clear()
                break
            end = buf.find(END_BLOCK, start + 1)
            scanned += (len(buf) if end < 0 else end + 2)
            if end < 0:
                del buf[:start]
                if len(buf) > max_bytes:
                    raise ValueError("frame over the limit")
                break
            frames.append(bytes(buf[start + 1:end]))
            del buf[:end + len(END_BLOCK)]
    return frames, scanned


def new_intake(chunks: list[bytes], max_bytes: int) -> tuple[list[bytes], int]:
    framer, frames = Framer(max_bytes), []
    for chunk in chunks:
        frames += framer.feed(chunk)
    return frames, framer.scanned


def best(fn, chunks: list[bytes], max_bytes: int, repeat: int, expected: bytes) -> tuple[float, int]:
    times, scanned = [], 0
    for _ in range(repeat):
        t0 = time.perf_counter()
        frames, scanned = fn(chunks, max_bytes)
        times.append(time.perf_counter() - t0)
        assert frames == [expected], "framing returned something else"
    return min(times), scanned


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[1, 4, 16], help="message sizes in MB")
    ap.add_argument("--chunk-kb", type=int, default=64, help="bytes per read, in KB")
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    chunk = args.chunk_kb * 1024
    print(f"python {platform.python_version()}, {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}; "
          f"{args.chunk_kb} KB reads, best of {args.repeat}")
    print(f"{'message':>10} {'reads':>6} {'old ms':>9} {'new ms':>9} {'old/new':>8} {'old scanned':>13} "
          f"{'new scanned':>13}")
    for size_mb in args.sizes:
        payload = message(size_mb * MB)
        wire = START_BLOCK + payload + END_BLOCK
        chunks = [wire[i:i + chunk] for i in range(0, len(wire), chunk)]
        limit = 2 * len(wire)  # both accept the message: only framing is measured
        old_s, old_scan = best(old_intake, chunks, limit, args.repeat, payload)
        new_s, new_scan = best(new_intake, chunks, limit, args.repeat, payload)
        print(f"{size_mb:>7} MB {len(chunks):>6} {old_s * 1000:>9.1f} {new_s * 1000:>9.1f} {old_s / new_s:>7.1f}x "
              f"{old_scan / MB:>10.0f} MB {new_scan / MB:>10.1f} MB")


if __name__ == "__main__":
    main()
