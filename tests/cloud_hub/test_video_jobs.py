"""Uploaded clips processed by the hub: a real ``retail-hub serve`` and a real ``retail-hub
worker`` (job runner) on SQLite, the real detector on real footage, the results landing in the
store's analytics through the normal enrollment and ingest path.

The clip is the first 24 s of the one-by-one footage (one person walks in across the demo's
entry line at about 7 s), written with OpenCV here to keep the test short.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import httpx
import pytest
import yaml

from cloud_hub.core.security import Role
from cloud_hub.db import create_hub_engine
from cloud_hub.migrate import upgrade_database
from cloud_hub.services.api_keys import create_api_key
from cloud_hub.services.offline import check_devices
from cloud_hub.services.stores import ensure_store
from cloud_hub.services.video_edge import edge_failure, progress_of
from cloud_hub.services.video_uploads import (
    VideoContainer,
    delete_expired_clips,
    sniff_container,
)
from tests.cloud_hub.hub_process import HubProcess
from tests.cloud_hub.mqtt_clients import WorkerProcess
from tests.services import MosquittoProcess, wait_for

API = "/api/v1"
STORE = "demo-store"
OTHER = "other-store"
RECORDED_AT = "2026-11-24T09:00:00+00:00"
RECORDED_AT_UNIX = 1795510800
CLIP_SECONDS = 24.0
MAX_UPLOAD = 4 * 1024 * 1024  # the cut clip is well under this, the full footage is not


@dataclass
class Hub:
    """The served hub, its worker, keys by name and the clip."""

    hub: HubProcess
    worker: WorkerProcess
    keys: dict[str, str]
    clip: Path
    data_dir: Path
    database_url: str

    def call(self, method: str, path: str, key: str, **kw: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self.keys[key]}", **kw.pop("headers", {})}
        return httpx.request(method, self.hub.url + API + path, headers=headers, timeout=60, **kw)

    def upload(self, content: Any, key: str = "admin", store: str = STORE) -> httpx.Response:
        params = {"store_id": store, "recorded_at": RECORDED_AT}
        return self.call("POST", "/video/upload", key, params=params, content=content)

    def wait_job(self, job_id: int, timeout_s: float = 240.0) -> dict[str, Any]:
        seen: dict[str, Any] = {}

        def finished() -> bool:
            seen.update(self.call("GET", f"/inference/jobs/{job_id}", "admin").json())
            return seen["state"] in ("succeeded", "failed")

        try:
            wait_for(finished, timeout_s, f"job {job_id} to finish")
        except TimeoutError as exc:
            raise TimeoutError(f"{exc}: {seen}\n{self.worker.log()}") from None
        return seen

    def clips_on_disk(self) -> list[Path]:
        folder = self.data_dir / "uploads"
        return sorted(folder.iterdir()) if folder.is_dir() else []

    def clip_kept(self, upload_id: str) -> bool:
        return any(p.name.startswith(upload_id) for p in self.clips_on_disk())


def _demo_camera() -> dict[str, Any]:
    demo = yaml.safe_load((Path(__file__).parents[2] / "examples/demo-store.yaml").read_text())
    camera = dict(demo["cameras"][0])
    camera.pop("source")
    return camera


def _cut_clip(source: Path, dest: Path, seconds: float) -> None:
    cap = cv2.VideoCapture(str(source))
    fps = cap.get(cv2.CAP_PROP_FPS)
    size = (int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT)))
    out = cv2.VideoWriter(str(dest), cv2.VideoWriter_fourcc(*"mp4v"), fps, size)
    try:
        for _ in range(round(seconds * fps)):
            ok, frame = cap.read()
            assert ok
            out.write(frame)
    finally:
        out.release()
        cap.release()


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory, assets: Path) -> Iterator[Hub]:
    folder = tmp_path_factory.mktemp("video-jobs")
    clip = folder / "clip.mp4"
    _cut_clip(assets / "videos/one-by-one-person-detection.mp4", clip, CLIP_SECONDS)
    url = f"sqlite:///{folder / 'hub.db'}"
    upgrade_database(url)
    engine = create_hub_engine(url, pool_size=1)
    keys: dict[str, str] = {}
    with engine.begin() as conn:
        now = time.time()
        for store in (STORE, OTHER):
            ensure_store(conn, store, now)
        keys["admin"], _ = create_api_key(conn, Role.HQ_ADMIN, name="admin", now=now)
        keys["manager"], _ = create_api_key(conn, Role.STORE_MANAGER, [STORE], now=now)
        keys["other"], _ = create_api_key(conn, Role.STORE_MANAGER, [OTHER], now=now)
        keys["integrator"], _ = create_api_key(conn, Role.INTEGRATOR, [STORE], now=now)
    engine.dispose()
    data_dir = folder / "video-data"
    hub = HubProcess(folder / "hub")
    video_env = {
        "RETAIL_HUB_VIDEO_DATA_DIR": str(data_dir),
        "RETAIL_HUB_VIDEO_MAX_UPLOAD_BYTES": str(MAX_UPLOAD),
        "RETAIL_HUB_VIDEO_HUB_URL": hub.url,
        "RETAIL_HUB_VIDEO_MODEL": str(assets / "models/person/yolox_nano.onnx"),
        "RETAIL_HUB_VIDEO_POLL_S": "0.5",
        "RETAIL_HUB_OFFLINE_CHECK_INTERVAL_S": "0",
        "RETAIL_HUB_THRESHOLD_INTERVAL_S": "0",
    }
    broker = MosquittoProcess(folder / "mosquitto")
    broker.start()
    hub.start(url, env=video_env)
    worker = WorkerProcess(folder / "worker", broker.port, url)
    worker.env.update(video_env)
    worker.start()
    try:
        yield Hub(hub, worker, keys, clip, data_dir, url)
    finally:
        worker.stop()
        hub.stop()
        broker.stop()


def test_a_clip_is_processed_into_the_stores_footfall(served: Hub) -> None:
    up = served.upload(served.clip.read_bytes())
    assert up.status_code == 201, up.text
    upload = up.json()
    assert upload["container"] == "mp4" and upload["size"] == served.clip.stat().st_size
    assert upload["recorded_at"] == RECORDED_AT_UNIX
    # Stored under a random name, never the client's.
    assert upload["upload_id"] + ".mp4" in [p.name for p in served.clips_on_disk()]

    # Another store's manager cannot start it (role) nor see it (404 as for nothing).
    body = {"upload_id": upload["upload_id"], "camera": _demo_camera()}
    assert served.call("POST", "/inference/process", "other", json=body).status_code == 403
    started = served.call("POST", "/inference/process", "admin", json=body)
    assert started.status_code == 202, started.text
    job_id = started.json()["job_id"]
    assert started.json()["state"] in ("queued", "running")
    again = served.call("POST", "/inference/process", "admin", json=body)
    assert again.status_code == 409

    job = served.wait_job(job_id)
    assert job["state"] == "succeeded", job
    assert job["progress"] == 1.0 and job["error"] is None
    assert job["device_id"] == f"upload-{STORE}"
    assert job["records_appended"] > 0
    assert job["records_delivered"] == job["records_appended"]
    report = job["report"]
    assert "video" not in report  # the hub's own path to the clip stays inside
    walked_in = report["lines"]["entry"]["in"]
    assert walked_in == 1  # one person walks in within the first 24 s

    # The store's analytics say what the edge's report says, in the recorded time buckets.
    footfall = served.call(
        "GET", "/analytics/footfall", "manager",
        params={"store_id": STORE, "start": "2026-11-24T08:00:00Z",
                "end": "2026-11-24T10:00:00Z", "bucket": "hour"},
    )  # fmt: skip
    assert footfall.status_code == 200, footfall.text
    buckets = footfall.json()["items"]
    assert sum(b["footfall_in"] for b in buckets) == walked_in
    assert sum(b["footfall_out"] for b in buckets) == report["lines"]["entry"]["out"]
    assert [b["start"][:13] for b in buckets if b["footfall_in"]] == ["2026-11-24T09"]

    # Store scoping of the job itself.
    assert served.call("GET", f"/inference/jobs/{job_id}", "manager").status_code == 200
    assert served.call("GET", f"/inference/jobs/{job_id}", "other").status_code == 404
    assert served.call("GET", f"/inference/jobs/{job_id}", "integrator").status_code == 403
    listed = served.call("GET", "/inference/jobs", "other").json()
    assert listed["total"] == 0
    mine = served.call("GET", "/inference/jobs", "manager").json()
    assert [j["job_id"] for j in mine["items"]] == [job_id]

    # The clip is gone; its upload cannot be processed again.
    assert not served.clip_kept(upload["upload_id"])
    assert served.call("POST", "/inference/process", "admin", json=body).status_code == 409

    # The virtual device is no store box: its silence after the job is no device_offline alert.
    engine = create_hub_engine(served.database_url, pool_size=1)
    try:
        with engine.begin() as conn:
            assert check_devices(conn, time.time() + 86400, 300.0).opened == 0
    finally:
        engine.dispose()


def test_a_corrupt_clip_fails_its_job_with_the_edges_message(served: Hub) -> None:
    head = served.clip.read_bytes()[:32]
    assert head[4:8] == b"ftyp"
    up = served.upload(head + bytes(range(256)) * 400)
    assert up.status_code == 201, up.text
    body = {"upload_id": up.json()["upload_id"], "camera": _demo_camera()}
    started = served.call("POST", "/inference/process", "admin", json=body)
    assert started.status_code == 202, started.text
    job = served.wait_job(started.json()["job_id"])
    assert job["state"] == "failed"
    assert job["error"].startswith("edge process: "), job["error"]
    assert "Traceback" not in job["error"] and str(served.data_dir) not in job["error"]
    assert not served.clip_kept(body["upload_id"])


def test_a_camera_the_edge_refuses_fails_the_job_naming_the_field(served: Hub) -> None:
    up = served.upload(served.clip.read_bytes())
    assert up.status_code == 201, up.text
    camera = _demo_camera()
    camera["lines"][0]["points"] = [[0.0, 1.5], [1.0, 0.96]]
    body = {"upload_id": up.json()["upload_id"], "camera": camera}
    started = served.call("POST", "/inference/process", "admin", json=body)
    assert started.status_code == 202, started.text
    job = served.wait_job(started.json()["job_id"])
    assert job["state"] == "failed"
    assert job["error"].startswith("edge check-config: ")
    assert "cameras.0.lines.0.points" in job["error"], job["error"]
    assert "outside the frame" in job["error"] and str(served.data_dir) not in job["error"]
    assert not served.clip_kept(body["upload_id"])


def test_uploads_are_checked_by_content_and_size(served: Hub) -> None:
    # A text file named like a video is refused on its bytes.
    text = served.call(
        "POST", "/video/upload", "admin",
        params={"store_id": STORE, "recorded_at": RECORDED_AT},
        content=b"hello, this is not a video at all\n" * 10,
        headers={"Content-Type": "video/mp4", "Content-Disposition": "filename=clip.mp4"},
    )  # fmt: skip
    assert text.status_code == 415, text.text
    assert served.upload(b"").status_code == 415
    # AVI and Matroska/WebM pass the content check (decoding is the edge's job).
    assert served.upload(b"RIFF\x00\x00\x00\x00AVI LIST" + bytes(64)).status_code == 201
    assert served.upload(b"\x1a\x45\xdf\xa3" + bytes(64)).status_code == 201

    before = served.clips_on_disk()
    too_big = served.clip.read_bytes()[:1024] + bytes(MAX_UPLOAD)
    declared = served.upload(too_big)
    assert declared.status_code == 413, declared.text

    def chunks() -> Iterator[bytes]:  # no Content-Length: refused while it streams
        for i in range(0, len(too_big), 256 * 1024):
            yield too_big[i : i + 256 * 1024]

    streamed = served.upload(chunks())
    assert streamed.status_code == 413, streamed.text
    assert served.clips_on_disk() == before  # nothing left of either, not even a partial file

    # Roles and scoping of uploads.
    assert served.upload(b"\x1a\x45\xdf\xa3" + bytes(64), key="manager").status_code == 403
    assert served.upload(b"\x1a\x45\xdf\xa3", store="no-such-store").status_code == 404
    naive = served.call(
        "POST", "/video/upload", "admin",
        params={"store_id": STORE, "recorded_at": "2026-11-24T09:00:00"}, content=b"x",
    )  # fmt: skip
    assert naive.status_code == 422
    unknown = {"upload_id": "0" * 32, "camera": _demo_camera()}
    assert served.call("POST", "/inference/process", "admin", json=unknown).status_code == 404
    sourced = {"upload_id": "0" * 32, "camera": {**_demo_camera(), "source": "/etc/passwd"}}
    assert served.call("POST", "/inference/process", "admin", json=sourced).status_code == 422

    # Clips no job took are deleted at the retention age (24 h by default); then 410.
    kept = {p.stem for p in served.clips_on_disk()}
    assert kept
    engine = create_hub_engine(served.database_url, pool_size=1)
    try:
        with engine.begin() as conn:
            gone = delete_expired_clips(conn, served.data_dir, time.time() + 86401, 86400.0)
    finally:
        engine.dispose()
    assert gone == len(kept) and served.clips_on_disk() == []
    late = {"upload_id": sorted(kept)[0], "camera": _demo_camera()}
    assert served.call("POST", "/inference/process", "admin", json=late).status_code == 410


def test_sniffing_and_edge_output_parsing() -> None:
    assert sniff_container(b"\x00\x00\x00\x20ftypisom\x00\x00") is VideoContainer.MP4
    assert sniff_container(b"RIFF\x10\x00\x00\x00AVI ") is VideoContainer.AVI
    assert sniff_container(b"RIFF\x10\x00\x00\x00WAVE") is None
    assert sniff_container(b"\x1a\x45\xdf\xa3\x01") is VideoContainer.MATROSKA
    assert sniff_container(b"GIF89a") is None
    bar = "\rclip.mp4:  10%|#         | 24/240 [00:01<00:09, 23.1frame/s]"
    assert (
        progress_of(bar + "\rclip.mp4:  50%|#####     | 120/240 [00:05<00:05, 23.1frame/s]") == 0.5
    )
    assert progress_of("clip.mp4: 120frame [00:05, 23.1frame/s]") is None
    said = edge_failure("edge process", 2, "a warning\nerror: bad config:\n  - fps: too high\n")
    assert said == "edge process: bad config: - fps: too high"
    crashed = edge_failure("edge sync", 1, "Traceback...\nValueError: boom\n")
    assert crashed == "edge sync exited with code 1: ValueError: boom"
    missing = edge_failure("edge check-config", 1, "No module named edge_agent.cli\n")
    assert "not installed" in missing
