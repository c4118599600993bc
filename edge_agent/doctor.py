"""``retail-edge doctor``: check a store box end to end and say what to fix.

Each check returns one ``CheckResult`` (PASS, FAIL or SKIP, what was seen, and for a FAIL what
an installer should do about it): the config is valid; the model loads and runs one inference;
every enabled camera opens and gives a frame; the outbox's disk is writable with room to
spare; the clock agrees with the hub's (its HTTP ``Date`` header); the hub answers and accepts
this box's credentials (``GET /api/v1/devices/{id}/sync``); the MQTT broker takes the box's
login (transport mqtt). Checks that need an earlier one (the model needs the config) are
skipped when it failed.
"""

from __future__ import annotations

import enum
import os
import shutil
import ssl
import threading
import time
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from pathlib import Path

import httpx
import numpy as np

from edge_agent.config import CameraConfig, StoreConfig, load_config
from edge_agent.errors import RetailCVError
from edge_agent.settings import EdgeSecrets
from edge_agent.sync.enroll import DeviceCredentials, load_credentials

MIB = 1024 * 1024
MIN_FREE_BYTES = 256 * MIB  # below this the outbox has little room for an outage
MAX_CLOCK_SKEW_S = 10.0  # rollup buckets are a minute; events are stamped by this clock


class Status(enum.StrEnum):
    """Outcome of one check."""

    PASS = "PASS"
    FAIL = "FAIL"
    SKIP = "SKIP"


@dataclass(frozen=True, slots=True)
class CheckResult:
    """One line of the doctor's report; ``fix`` says what to do about a FAIL."""

    name: str
    status: Status
    detail: str
    fix: str | None = None

    def lines(self) -> list[str]:
        """The report lines: ``STATUS  name: detail`` and, for a FAIL, ``fix: ...``."""
        out = [f"{self.status.value}  {self.name}: {self.detail}"]
        if self.fix:
            out.append(f"      fix: {self.fix}")
        return out


def _ok(name: str, detail: str) -> CheckResult:
    return CheckResult(name, Status.PASS, detail)


def _fail(name: str, detail: str, fix: str) -> CheckResult:
    return CheckResult(name, Status.FAIL, " ".join(detail.split()), fix)


def _skip(name: str, why: str) -> CheckResult:
    return CheckResult(name, Status.SKIP, why)


def check_config(path: Path) -> tuple[CheckResult, StoreConfig | None]:
    """Load and validate the store config."""
    try:
        config = load_config(path)
    except RetailCVError as exc:
        return _fail("config", str(exc), f"correct the fields named above in {path}"), None
    n = sum(c.enabled for c in config.cameras)
    detail = f"{path}: store {config.store_id}, device {config.device_id}, {n} camera(s) on"
    return _ok("config", detail), config


def check_model(config: StoreConfig) -> CheckResult:
    """Load the detector and run one inference on a grey frame of its input size."""
    from edge_agent.process import open_detector

    path = config.model.path
    if not path.is_file():
        return _fail(
            "model",
            f"model file not found: {path}",
            "copy the model there (install-edge.sh --model PATH does) or correct model.path",
        )
    try:
        detector = open_detector(config)
        spec = detector.manifest.input
        frame = np.full((spec.height, spec.width, 3), 114, np.uint8)
        t0 = time.perf_counter()
        detector.detect([frame])
        ms = (time.perf_counter() - t0) * 1000
    except (RetailCVError, OSError, RuntimeError, ValueError) as exc:
        return _fail(
            "model",
            f"{path.name} does not load or run: {exc}",
            "use a model exported by `retail-export` (with its manifest) or a supported file",
        )
    return _ok(
        "model",
        f"{detector.manifest.name} on {detector.backend.name}: one inference in {ms:.0f} ms",
    )


def check_camera(camera: CameraConfig, timeout_s: float) -> CheckResult:
    """Open the camera's source and read one frame, waiting at most about ``timeout_s``."""
    from edge_agent.sources import open_source, parse_source
    from edge_agent.sources.capture import retrieve_bgr

    name = f"camera {camera.id}"
    if not camera.enabled:
        return _skip(name, "disabled in the config")
    spec = parse_source(camera.source)
    fix = (
        "check the camera is powered and on the network, and its URL, user and password "
        f"(open {spec.display} in VLC from this box); then cameras[{camera.id}].source"
    )
    try:
        capture = open_source(spec, open_timeout_s=timeout_s, read_timeout_s=timeout_s)
    except RetailCVError as exc:
        return _fail(name, str(exc), fix)
    try:
        image = retrieve_bgr(capture) if capture.grab() else None
    finally:
        capture.release()
    if image is None:
        return _fail(name, f"{spec.display} opened but gave no frame within {timeout_s:g} s", fix)
    return _ok(name, f"{spec.display}: {image.shape[1]}x{image.shape[0]} frame")


def check_disk(config: StoreConfig, min_free_bytes: int = MIN_FREE_BYTES) -> CheckResult:
    """The outbox's folder (or its nearest existing parent) is writable with space to spare."""
    folder = config.outbox.path.parent
    existing = folder
    while not existing.exists():
        existing = existing.parent
    fix_place = f"or set outbox.path to a disk with room (now {config.outbox.path})"
    if not os.access(existing, os.W_OK | os.X_OK):
        return _fail(
            "disk",
            f"{existing} is not writable by this user (uid {os.getuid()})",
            f"give the service user write access to {folder} {fix_place}",
        )
    free = shutil.disk_usage(existing).free
    need = max(min_free_bytes, config.outbox.reserve_bytes)
    if free < need:
        return _fail(
            "disk",
            f"{free / MIB:.0f} MiB free at {existing}, under {need / MIB:.0f} MiB",
            f"free space on that disk {fix_place}",
        )
    return _ok("disk", f"{free / MIB / 1024:.1f} GiB free at {existing}")


def _credentials(config: StoreConfig) -> DeviceCredentials | None:
    sync = config.sync
    if sync is None or sync.credentials_file is None:
        return None
    return load_credentials(sync.credentials_file, config.store_id, config.device_id)


def check_hub(config: StoreConfig, timeout_s: float = 10.0) -> list[CheckResult]:
    """Hub reachable, clock in step with it, and this box's credentials accepted."""
    sync = config.sync
    if sync is None:
        why = "no sync section: records stay on this box"
        return [_skip("hub", why), _skip("clock", why)]
    enroll_fix = (
        "enroll this box: `retail-edge enroll --config CONFIG --token TOKEN` with a token from "
        "HQ (`retail-hub admin enroll-token --store STORE`)"
    )
    try:
        creds = _credentials(config)
    except RetailCVError as exc:
        return [_fail("hub", str(exc), enroll_fix), _skip("clock", "no hub to compare with")]
    hub_url = sync.hub_url or (creds.hub_url if creds is not None else None)
    if hub_url is None:
        why = "no sync.hub_url and no credentials file naming the hub"
        return [_skip("hub", why), _skip("clock", why)]
    headers = EdgeSecrets().http_headers() or (creds.http_headers() if creds else {})
    base = hub_url.rstrip("/")
    try:
        sent = time.time()
        health = httpx.get(f"{base}/api/v1/health", timeout=timeout_s)
        received = time.time()
        state = httpx.get(
            f"{base}/api/v1/devices/{config.device_id}/sync", headers=headers, timeout=timeout_s
        )
    except httpx.HTTPError as exc:
        return [
            _fail(
                "hub",
                f"cannot reach the hub at {hub_url}: {exc}",
                "check sync.hub_url, DNS, the firewall or proxy to the hub, and that it is up "
                f"(curl {base}/api/v1/health from this box)",
            ),
            _skip("clock", "no hub to compare with"),
        ]
    clock = _check_clock(health.headers.get("date"), (sent + received) / 2, hub_url)
    if health.status_code != 200:
        detail = f"{base}/api/v1/health answered {health.status_code}"
        fix = "is sync.hub_url the hub's base URL (no /api path)? If so, see the hub's log"
        return [_fail("hub", detail, fix), clock]
    if state.status_code in (200, 404):  # 404: accepted, but nothing received from it yet
        seq = state.json().get("max_seq", 0) if state.status_code == 200 else 0
        return [_ok("hub", f"{hub_url} accepts device {config.device_id} (max_seq {seq})"), clock]
    if state.status_code in (401, 403):
        why = "none configured" if not headers else "unknown, revoked or another store's"
        detail = f"{hub_url} refused this box's credentials ({state.status_code}): {why}"
        return [_fail("hub", detail, enroll_fix), clock]
    return [
        _fail(
            "hub",
            f"{hub_url} answered {state.status_code} to the device sync call",
            "see the hub's log; is sync.hub_url the hub's base URL (no /api path)?",
        ),
        clock,
    ]


def _check_clock(date_header: str | None, local_s: float, hub_url: str) -> CheckResult:
    """Compare this box's clock (``local_s``, UNIX s at the request's midpoint) with the hub's
    ``Date`` header (1 s resolution)."""
    if not date_header:
        return _skip("clock", f"{hub_url} sent no Date header")
    hub_s = parsedate_to_datetime(date_header).timestamp()
    skew = local_s - hub_s
    if abs(skew) > MAX_CLOCK_SKEW_S + 1.0:
        ahead = "ahead of" if skew > 0 else "behind"
        return _fail(
            "clock",
            f"this box is {abs(skew):.0f} s {ahead} the hub",
            "turn on time sync (`timedatectl set-ntp true`, or chrony) and check the time zone",
        )
    return _ok("clock", f"within {abs(skew):.0f} s of the hub")


def check_broker(config: StoreConfig, timeout_s: float = 10.0) -> CheckResult:
    """Log in to the MQTT broker as the agent would (TLS, user and password) and log out."""
    sync = config.sync
    if sync is None or sync.transport != "mqtt" or sync.mqtt_host is None:
        return _skip("broker", "sync transport is not mqtt")
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion
    from paho.mqtt.reasoncodes import ReasonCode

    where = f"{sync.mqtt_host}:{sync.mqtt_port}"
    try:
        creds = _credentials(config)
    except RetailCVError as exc:
        return _fail("broker", str(exc), "enroll this box first (`retail-edge enroll`)")
    password = EdgeSecrets().mqtt_password_value()
    username = sync.mqtt_username
    if password is None and creds is not None:
        password = creds.device_secret.get_secret_value()
        username = username or creds.device_id
    client = mqtt.Client(
        CallbackAPIVersion.VERSION2,
        client_id=f"doctor-{config.store_id}-{config.device_id}"[:64],
        protocol=mqtt.MQTTv5,
    )
    if username is not None:
        client.username_pw_set(username, password)
    if sync.mqtt_tls:
        client.tls_set(
            ca_certs=None if sync.mqtt_ca_file is None else str(sync.mqtt_ca_file),
            certfile=None if sync.mqtt_cert_file is None else str(sync.mqtt_cert_file),
            keyfile=None if sync.mqtt_key_file is None else str(sync.mqtt_key_file),
        )
    answered = threading.Event()
    reason: list[ReasonCode] = []

    def on_connect(
        _c: mqtt.Client, _u: object, _f: object, rc: ReasonCode, _p: object = None
    ) -> None:
        reason.append(rc)
        answered.set()

    client.on_connect = on_connect
    try:
        client.connect(sync.mqtt_host, sync.mqtt_port, keepalive=30)
    except ssl.SSLError as exc:
        return _fail(
            "broker",
            f"TLS with {where} failed: {exc}",
            "set sync.mqtt_ca_file to the CA that signed the broker's certificate, and use the "
            "host name the certificate names",
        )
    except OSError as exc:
        return _fail(
            "broker",
            f"cannot reach the broker at {where}: {exc}",
            "check sync.mqtt_host and sync.mqtt_port and that the firewall lets this box out "
            "to that port",
        )
    client.loop_start()
    try:
        if not answered.wait(timeout_s):
            return _fail(
                "broker",
                f"{where} accepted the connection but did not answer the login in {timeout_s:g} s",
                "check it is an MQTT listener (TLS on the TLS port: sync.mqtt_tls)",
            )
        rc = reason[0]
        if rc.is_failure:
            return _fail(
                "broker",
                f"{where} refused the login of {username!r}: {rc}",
                "HQ: run `retail-hub broker-config` and reload the broker (SIGHUP) after "
                "enrolling this box; if it was revoked, enroll it again",
            )
    finally:
        client.disconnect()
        client.loop_stop()
    return _ok("broker", f"{where} accepted {username!r}" + (" over TLS" if sync.mqtt_tls else ""))


def run_checks(config_path: Path, camera_timeout_s: float = 10.0) -> list[CheckResult]:
    """Every check, in the order an installer fixes things."""
    first, config = check_config(config_path)
    if config is None:
        return [first]
    results = [first, check_model(config)]
    results += [check_camera(c, camera_timeout_s) for c in config.cameras]
    results.append(check_disk(config))
    results += check_hub(config)
    results.append(check_broker(config))
    return results
