"""Real services on loopback for tests: a private Mosquitto and a private PostgreSQL.

Each runs as its own process on a free port so a test can stop, kill and restart it without
touching the machine's shared services. ``wait_for_port`` waits on a condition with a generous
timeout instead of sleeping a fixed time.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    """Whether something accepts TCP connections on ``host:port``."""
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex((host, port)) == 0


def wait_for(condition: object, timeout_s: float = 30.0, what: str = "condition") -> None:
    """Poll ``condition()`` every 50 ms until true; raise TimeoutError after ``timeout_s``."""
    assert callable(condition)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)
    raise TimeoutError(f"{what} not reached within {timeout_s} s")


def wait_for_port(port: int, timeout_s: float = 30.0, up: bool = True) -> None:
    """Wait until ``port`` accepts connections (``up``) or refuses them (not ``up``)."""
    wait_for(lambda: port_open(port) == up, timeout_s, f"port {port} {'up' if up else 'down'}")


class MosquittoProcess:
    """A private Mosquitto broker with persistence, on a free port (or the one given)."""

    def __init__(self, workdir: Path, port: int | None = None, extra_conf: str = "") -> None:
        self.workdir = workdir
        self.port = port or free_port()
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.conf = workdir / "mosquitto.conf"
        self.conf.write_text(
            f"listener {self.port} 127.0.0.1\n"
            "allow_anonymous true\n"
            "persistence true\n"
            f"persistence_location {workdir}/\n"
            "autosave_interval 1\n"
            "max_queued_messages 0\n"
            "max_inflight_messages 100\n"
            f"log_dest file {workdir}/mosquitto.log\n"
            # As root, Mosquitto drops to the `mosquitto` user, which cannot write the
            # persistence file in root's temp dir: a restart would then lose queued messages.
            + ("user root\n" if os.geteuid() == 0 else "")
            + extra_conf
        )
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        """Start the broker and wait until it accepts connections."""
        binary = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
        self.proc = subprocess.Popen([binary, "-c", str(self.conf)], stdout=subprocess.DEVNULL)
        wait_for_port(self.port)

    def stop(self, kill: bool = False) -> None:
        """Stop the broker (SIGTERM, or SIGKILL with ``kill``) and wait until it is gone."""
        if self.proc is None:
            return
        self.proc.send_signal(signal.SIGKILL if kill else signal.SIGTERM)
        self.proc.wait(timeout=30)
        self.proc = None
        wait_for_port(self.port, up=False)

    def __enter__(self) -> MosquittoProcess:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


class PostgresProcess:
    """A private PostgreSQL cluster on a free port (initdb once; start/stop/restart freely).

    Runs as the ``postgres`` user when the tests run as root (PostgreSQL refuses root).
    """

    def __init__(self, workdir: Path, port: int | None = None, fsync: bool = False) -> None:
        self.workdir = workdir
        self.port = port or free_port()
        self.fsync = fsync  # off for tests (speed); benchmarks turn it on
        self.datadir = workdir / "pgdata"
        self._bin = _pg_bindir()
        self._as = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []

    @property
    def url(self) -> str:
        """SQLAlchemy URL (psycopg 3) of the ``postgres`` database."""
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, *args: str) -> None:
        subprocess.run([*self._as, *args], check=True, capture_output=True, timeout=120, cwd="/")

    def init(self) -> None:
        """Create the cluster (trust auth on loopback)."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        if self._as:
            shutil.chown(self.workdir, "postgres", "postgres")
        self._run(
            str(self._bin / "initdb"), "-D", str(self.datadir), "-U", "postgres",
            "--auth=trust", "--no-sync",
        )  # fmt: skip

    def start(self) -> None:
        """Start the server and wait until it accepts connections."""
        if not self.datadir.exists():
            self.init()
        fsync = "on" if self.fsync else "off"
        opts = f"-p {self.port} -c listen_addresses=127.0.0.1 -c fsync={fsync} -k {self.workdir}"
        self._run(
            str(self._bin / "pg_ctl"), "-D", str(self.datadir), "-o", opts,
            "-l", str(self.workdir / "pg.log"), "-w", "-t", "60", "start",
        )  # fmt: skip
        wait_for_port(self.port)

    def stop(self, mode: str = "fast") -> None:
        """Stop the server (``fast`` or ``immediate``, which is like a crash)."""
        with contextlib.suppress(subprocess.CalledProcessError):
            self._run(str(self._bin / "pg_ctl"), "-D", str(self.datadir), "-m", mode, "-w", "stop")
        wait_for_port(self.port, up=False)

    def __enter__(self) -> PostgresProcess:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _pg_bindir() -> Path:
    found = shutil.which("pg_ctl")
    if found:
        return Path(found).resolve().parent
    for cand in sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True):
        if (cand / "pg_ctl").exists():
            return cand
    raise FileNotFoundError("PostgreSQL server binaries (pg_ctl, initdb) are not installed")


def shared_postgres_admin_url() -> str | None:
    """URL of the machine's running PostgreSQL (``RETAIL_CV_PG_URL`` or 127.0.0.1:5432), or
    None when none answers."""
    url = os.environ.get(
        "RETAIL_CV_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
    )
    return url if port_open(int(url.rsplit(":", 1)[1].split("/")[0])) else None
