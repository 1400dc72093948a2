"""The binary layout in which float32 tensors travel between Python and a page (one request):
uint32 header length (little endian), JSON header, zero padding to 4 bytes, float32 data.
The header is `{"tensors": [{"name", "dims", "offset", "length"}], ...}`, offsets in floats."""

from __future__ import annotations

import json
import struct

import numpy as np


def encode(tensors: dict[str, np.ndarray], **extra) -> bytes:
    entries, chunks, offset = [], [], 0
    for name, a in tensors.items():
        a = np.ascontiguousarray(a, dtype="<f4")
        entries.append({"name": name, "dims": list(a.shape), "offset": offset, "length": int(a.size)})
        chunks.append(a.tobytes())
        offset += a.size
    head = json.dumps({**extra, "tensors": entries}).encode()
    pad = (4 - (4 + len(head)) % 4) % 4
    return struct.pack("<I", len(head)) + head + b"\0" * pad + b"".join(chunks)


def decode(data: bytes) -> tuple[dict, dict[str, np.ndarray]]:
    (n,) = struct.unpack_from("<I", data)
    header = json.loads(data[4:4 + n])
    start = 4 + n + (4 - (4 + n) % 4) % 4
    flat = np.frombuffer(data, dtype="<f4", offset=start)
    return header, {t["name"]: flat[t["offset"]:t["offset"] + t["length"]].reshape(t["dims"]).astype(np.float32)
                    for t in header["tensors"]}
