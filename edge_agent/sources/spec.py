"""Camera source specs: what a camera's `source` setting means (file, network stream, USB device).

Parsing is pure (no filesystem or network access); `open_source` in `capture.py` does the I/O.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from edge_agent.errors import SourceError

#: URL schemes OpenCV's FFmpeg backend reads as live network streams.
NETWORK_SCHEMES: frozenset[str] = frozenset(
    {"rtsp", "rtsps", "rtmp", "rtmps", "http", "https", "tcp", "udp", "srt"}
)

_SCHEME_RE = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")
_DEVICE_PATH_RE = re.compile(r"^/dev/video\d+$")


class SourceKind(enum.StrEnum):
    """How a camera source is read: a recorded file, a network stream or a local device."""

    FILE = "file"
    NETWORK = "network"
    DEVICE = "device"


@dataclass(frozen=True, slots=True)
class SourceSpec:
    """A parsed camera source.

    Attributes:
        kind: file, network stream or USB/V4L2 device.
        location: the file path, the full URL, or the device path (`/dev/videoN`).
        device_index: the OpenCV device index for `DEVICE` sources given as a number, else None.
    """

    kind: SourceKind
    location: str
    device_index: int | None = None

    @property
    def is_live(self) -> bool:
        """True for sources that produce frames in real time (network streams, devices)."""
        return self.kind is not SourceKind.FILE

    @property
    def display(self) -> str:
        """The source as it may appear in logs and error messages (URL passwords redacted)."""
        if self.kind is SourceKind.DEVICE:
            return (
                f"USB camera {self.device_index}"
                if self.device_index is not None
                else f"camera device {self.location}"
            )
        if self.kind is SourceKind.NETWORK:
            return redact_url(self.location)
        return self.location


def redact_url(url: str) -> str:
    """Replace the password in `scheme://user:password@host/...` with `***`."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    netloc = f"{parts.username}:***@{host}"
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def parse_source(source: str | int | Path) -> SourceSpec:
    """Parse a camera `source` setting.

    Accepted forms: a device index (`0`, `"1"`), a device path (`/dev/video0`), a network URL
    (`rtsp://`, `rtsps://`, `http(s)://`, `tcp://`, `udp://`, `rtmp://`, `srt://`), a `file://`
    URL, or a file path (absolute or relative). The file's existence is checked when it is
    opened, not here.

    Raises:
        SourceError: empty source, negative device index, or an unknown URL scheme.
    """
    if isinstance(source, bool):
        raise SourceError(f"camera source must be a path, URL or device index, not {source!r}")
    if isinstance(source, int):
        if source < 0:
            raise SourceError(f"USB camera index must be 0 or more, got {source}")
        return SourceSpec(SourceKind.DEVICE, str(source), source)
    if isinstance(source, Path):
        return SourceSpec(SourceKind.FILE, str(source))
    text = source.strip()
    if not text:
        raise SourceError("camera source is empty: give a file path, a stream URL or a USB index")
    if text.isdecimal():
        return SourceSpec(SourceKind.DEVICE, text, int(text))
    if _DEVICE_PATH_RE.match(text):
        return SourceSpec(SourceKind.DEVICE, text)
    match = _SCHEME_RE.match(text)
    if match is None:
        return SourceSpec(SourceKind.FILE, text)
    scheme = match.group(1).lower()
    if scheme == "file":
        path = urlsplit(text).path
        if not path:
            raise SourceError(f"file URL has no path: {text!r}")
        return SourceSpec(SourceKind.FILE, path)
    if scheme in NETWORK_SCHEMES:
        if not urlsplit(text).hostname:
            raise SourceError(f"stream URL has no host: {redact_url(text)!r}")
        return SourceSpec(SourceKind.NETWORK, text)
    known = ", ".join(f"{s}://" for s in sorted(NETWORK_SCHEMES))
    raise SourceError(
        f"unknown camera source scheme {scheme!r} in {redact_url(text)!r}: "
        f"use a file path, a USB index, or one of {known}"
    )
