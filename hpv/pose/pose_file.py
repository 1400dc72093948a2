"""The bytes of a `.pose` file, read only as far as its header's claims reach.

pose-format parses with `struct` and `np.ndarray(buffer=...)` and trusts every count it reads, so a
bad file surfaces as struct.error, TypeError, UnicodeDecodeError, ... Here the header is walked
first, the header is checked (`check`: the layout) before the body is touched, and the body's size
is bounded by the header's claims and by `MAX_BODY_BYTES` before anything is allocated. A truncated
file, `/dev/zero`, or a header that claims terabytes is refused with a `PoseFileError` after reading
a few bytes. Versions 0.0, 0.1 and 0.2 are read (the versions pose-format's reader handles).
"""

from __future__ import annotations

import os
import stat
import struct
from collections.abc import Callable

from pose_format import Pose
from pose_format.pose_header import PoseHeader
from pose_format.utils.reader import BufferReader

from hpv.errors import PoseFileError

PoseSource = str | os.PathLike | bytes

MAX_HEADER_BYTES = 16 << 20  # a 586-point holistic header is about 10 KB
MAX_BODY_BYTES = 4 << 30  # about 7 hours of 586-point XYZC frames at 25 fps
VERSIONS = (0.0, 0.1, 0.2)


def _gib(n: int) -> str:
    return f"{n / 2**30:.3g} GiB"


class _Bytes:
    """A source's bytes, read from its file on demand (never past what a caller asks for)."""

    def __init__(self, source: PoseSource):
        self._stream = None
        if isinstance(source, (bytes, bytearray, memoryview)):
            self.label, self._buf, self.size = "<bytes>", bytes(source), len(source)
            return
        self.label = str(os.fspath(source))
        try:
            self._stream = open(self.label, "rb")
            info = os.fstat(self._stream.fileno())
        except FileNotFoundError:
            raise PoseFileError(f"{self.label}: no such file") from None
        except OSError as e:
            self.close()
            raise PoseFileError(f"{self.label}: cannot read: {e.strerror or e}") from None
        # Only a regular file's size is known up front; a device or a pipe is read as far as needed.
        self.size = info.st_size if stat.S_ISREG(info.st_mode) else None
        self._buf = bytearray()

    def have(self, n: int) -> bool:
        """Whether the source holds at least `n` bytes (reading up to `n` of them)."""
        if self.size is not None and n > self.size:
            return False
        while len(self._buf) < n and self._stream is not None:
            try:
                chunk = self._stream.read(n - len(self._buf))
            except OSError as e:
                raise PoseFileError(f"{self.label}: cannot read: {e.strerror or e}") from None
            if not chunk:
                self.close()
                break
            self._buf += chunk
        return len(self._buf) >= n

    def __len__(self) -> int:
        return len(self._buf)

    def unpack(self, fmt: str, offset: int) -> tuple:
        return struct.unpack_from(fmt, self._buf, offset)

    def data(self) -> bytes:
        return self._buf if isinstance(self._buf, bytes) else bytes(self._buf)

    def close(self) -> None:
        if self._stream is not None:
            self._stream.close()
            self._stream = None


def _need(src: _Bytes, end: int, where: str) -> None:
    if end > MAX_HEADER_BYTES:
        raise PoseFileError(f"{src.label}: corrupt header: it claims more than {MAX_HEADER_BYTES >> 20} MiB")
    if not src.have(end):
        raise PoseFileError(f"{src.label}: truncated: file ends inside the header ({where})")


def _header_end(src: _Bytes) -> int:
    """Offset just past the header, walking its counts (pose-format's layout) without parsing."""

    def skip_str(offset: int, what: str) -> int:
        _need(src, offset + 2, what)
        (length,) = src.unpack("<H", offset)
        _need(src, offset + 2 + length, what)
        return offset + 2 + length

    _need(src, 12, "dimensions")
    (components,) = src.unpack("<H", 10)
    offset = 12
    for k in range(components):
        offset = skip_str(skip_str(offset, f"component {k} name"), f"component {k} format")
        _need(src, offset + 6, f"component {k} counts")
        points, limbs, colors = src.unpack("<HHH", offset)
        offset += 6
        for _ in range(points):
            offset = skip_str(offset, f"component {k} point names")
        offset += 4 * limbs + 6 * colors
        _need(src, offset, f"component {k} limbs and colors")
    return offset


def _check_size(label: str, claimed: int, what: str) -> None:
    if claimed > MAX_BODY_BYTES:
        raise PoseFileError(
            f"{label}: {what}: {_gib(claimed)} of frame data, more than the {_gib(MAX_BODY_BYTES)} this "
            f"reader accepts; the file is corrupt, or split the sequence into shorter files"
        )


def _body_end(src: _Bytes, header: PoseHeader, start: int) -> int:
    """Offset just past the frame data that the body header at `start` announces; checks it is there."""
    label, points = src.label, header.total_points()
    if header.version == 0.0:
        return _body_end_v0_0(src, header, start)
    size = 10 if round(header.version, 3) == 0.2 else 6
    if not src.have(start + size):
        raise PoseFileError(f"{label}: truncated: file ends inside the body header")
    if size == 10:  # 0.2: fps float32, frames uint32, people uint16
        _, frames, people = src.unpack("<fIH", start)
    else:  # 0.1: fps, frames, people uint16; the frame count overflows, so pose-format counts bytes instead
        _, frames, people = src.unpack("<HHH", start)
    start += size
    frame_bytes = people * points * (header.num_dims() + 1) * 4
    if people == 0:
        raise PoseFileError(f"{label}: zero people")
    if size == 6:  # the frames are what the rest of the file holds
        if src.size is None and src.have(start + MAX_BODY_BYTES + 1):
            _check_size(label, MAX_BODY_BYTES + 1, "the body runs on past the limit")
        present = (src.size if src.size is not None else len(src)) - start
        _check_size(label, present, f"the body holds {present} bytes")
        frames = present // frame_bytes if frame_bytes else 0
    if frames == 0:
        raise PoseFileError(f"{label}: zero frames")
    expected = frames * frame_bytes
    _check_size(label, expected, f"the header claims {frames} frames x {people} people x {points} points")
    if not src.have(start + expected):
        raise PoseFileError(
            f"{label}: truncated: expected {expected} bytes of frame data "
            f"({frames} frames x {people} people x {points} points), found {max(len(src) - start, 0)}"
        )
    return start + expected


def _body_end_v0_0(src: _Bytes, header: PoseHeader, start: int) -> int:
    """0.0 stores each frame as a people count, then per person an id and every point with its confidence."""
    label = src.label
    formats = {len(c.format) for c in header.components}
    if len(formats) != 1:
        raise PoseFileError(f"{label}: corrupt: a version 0.0 file needs one point format for every "
                            f"component; found {[c.format for c in header.components]}")
    person_bytes = 2 + header.total_points() * formats.pop() * 4
    if not src.have(start + 4):
        raise PoseFileError(f"{label}: truncated: file ends inside the body header")
    _, frames = src.unpack("<HH", start)
    if frames == 0:
        raise PoseFileError(f"{label}: zero frames")
    offset, most_people = start + 4, 0
    for frame in range(frames):
        if not src.have(offset + 2):
            raise PoseFileError(f"{label}: truncated: file ends before frame {frame} of {frames}")
        (people,) = src.unpack("<H", offset)
        offset += 2 + people * person_bytes
        _check_size(label, offset - start, f"the header claims {frames} frames; the first {frame + 1} hold")
        if not src.have(offset):
            raise PoseFileError(f"{label}: truncated: file ends inside frame {frame} of {frames} "
                                f"({people} people x {header.total_points()} points)")
        most_people = max(most_people, people)
    if most_people == 0:
        raise PoseFileError(f"{label}: zero people")
    return offset


def read_pose_file(source: PoseSource, check: Callable[[PoseHeader], None] = lambda header: None) -> Pose:
    """Read a `.pose` file (a path, or its bytes) of version 0.0, 0.1 or 0.2; `check(header)` runs
    before the body is read and raises to refuse it. Every fault is a `PoseFileError`."""
    src = _Bytes(source)
    try:
        label = src.label
        if not src.have(1):
            raise PoseFileError(f"{label}: empty file")
        if not src.have(4):
            raise PoseFileError(f"{label}: not a .pose file ({len(src)} bytes)")
        (version,) = src.unpack("<f", 0)
        if not (version == 0.0 or round(version, 3) in VERSIONS):
            raise PoseFileError(f"{label}: not a .pose file (version field reads {version:.4g}; "
                                f"expected one of {', '.join(map(str, VERSIONS))})")
        end = _header_end(src)
        try:
            header = PoseHeader.read(BufferReader(bytes(src.data()[:end])))
        except Exception as e:  # any parser failure on these bytes means a corrupt header
            raise PoseFileError(f"{label}: not a .pose file: header unreadable ({type(e).__name__}: {e})") from None
        if not header.components:
            raise PoseFileError(f"{label}: not a .pose file: its header lists no components")
        check(header)
        body_end = _body_end(src, header, end)
        if src.have(body_end + 1):
            extra = src.size - body_end if src.size is not None else None
            raise PoseFileError(f"{label}: corrupt: {extra if extra is not None else 'some'} unexpected "
                                f"bytes after the frame data")
        buffer = src.data()
    finally:
        src.close()
    try:
        return Pose.read(buffer)
    except Exception as e:  # sizes matched, so this is a fault we did not foresee; still the file's
        raise PoseFileError(f"{label}: corrupt .pose file ({type(e).__name__}: {e})") from None
