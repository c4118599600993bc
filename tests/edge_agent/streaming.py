"""Test helper: serve a real video file as a live MPEG-TS stream over TCP on loopback.

Uses the FFmpeg binary shipped in the imageio-ffmpeg wheel, paced in real time (`-re`) and
looped forever, so a `CameraReader` sees what it would see from a network camera or encoder.
The server accepts one client at a time (FFmpeg `listen=1`); it is never probed with a test
connection, since that would use up its single accept.
"""

from __future__ import annotations

import logging
import socket
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import imageio_ffmpeg

logger = logging.getLogger(__name__)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class StreamServer:
    """An FFmpeg process streaming `video` to `tcp://127.0.0.1:port` (MPEG-TS, stream copy)."""

    def __init__(self, video: Path, port: int, log_path: Path | None = None) -> None:
        """Configure; nothing runs until `start()`. FFmpeg's errors go to `log_path`."""
        if not video.is_file():
            raise FileNotFoundError(video)
        self.video = video
        self.port = port
        self.log_path = log_path
        self._process: subprocess.Popen[bytes] | None = None
        self.starts = 0

    @property
    def url(self) -> str:
        """The URL a client connects to."""
        return f"tcp://127.0.0.1:{self.port}"

    @property
    def running(self) -> bool:
        """True while the FFmpeg process is alive."""
        return self._process is not None and self._process.poll() is None

    def start(self) -> None:
        """Start FFmpeg listening on the port (stops a previous process first)."""
        self.stop()
        command = [
            imageio_ffmpeg.get_ffmpeg_exe(),
            "-hide_banner",
            "-nostdin",
            "-loglevel",
            "error",
            "-re",
            "-stream_loop",
            "-1",
            "-i",
            str(self.video),
            "-c",
            "copy",
            "-f",
            "mpegts",
            f"{self.url}?listen=1",
        ]
        if self.log_path is None:
            self._process = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        else:
            # The child keeps its own copy of the descriptor; ours can close at once.
            with self.log_path.open("ab") as log:
                self._process = subprocess.Popen(
                    command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=log
                )
        self.starts += 1
        logger.info("stream server %d started on %s", self._process.pid, self.url)

    def stop(self) -> None:
        """Kill the FFmpeg process (an abrupt outage, like a camera losing power) and reap it."""
        process, self._process = self._process, None
        if process is None:
            return
        if process.poll() is None:
            process.kill()
        process.wait(timeout=30)
        logger.info("stream server %d stopped", process.pid)


@contextmanager
def serve_stream(
    video: Path, port: int | None = None, log_path: Path | None = None
) -> Iterator[StreamServer]:
    """Serve `video` on a free (or the given) loopback port; the process is killed on exit."""
    server = StreamServer(video, port if port is not None else free_port(), log_path)
    server.start()
    try:
        yield server
    finally:
        server.stop()
