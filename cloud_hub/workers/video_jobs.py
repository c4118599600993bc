"""The video job runner: takes queued processing jobs one at a time and runs the edge pipeline
on each uploaded clip, as the store's virtual upload device, through the edge's own CLI.

For a job it writes a store config (``services.video_edge.edge_config``), then runs, each as
``python -m edge_agent.cli``:

1. ``check-config``: the requested camera (lines, zones) is what an edge accepts;
2. ``enroll`` with a one-time token the runner issues: the virtual device gets its own secret
   through the normal enrollment path;
3. ``sync`` on the still empty outbox: lines the outbox's seqs up above what the hub already
   holds of the device (earlier clips of the store), before anything is appended;
4. ``process CLIP --outbox --recorded-at T``: the same pipeline as a store box;
5. ``sync``: the records reach the hub through the same ingest path as a store box's.

While a step runs the runner renews the job's lease and records progress. A step's failure
fails the job with the edge's own message; a runner that stops hands its job back to the queue;
a runner that dies leaves a lease that runs out, and another runner takes the job again (after
step 4 it only syncs what is left). The clip and the job's files are deleted when the job ends.
``retail-hub worker`` runs one runner (``RETAIL_HUB_VIDEO_JOBS``), ``retail-hub serve`` one more
with ``RETAIL_HUB_VIDEO_JOBS_IN_SERVE``.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from cloud_hub.core.config import HubSettings
from cloud_hub.services.enrollment import create_enrollment_token
from cloud_hub.services.jobs import default_runner_name
from cloud_hub.services.video_edge import (
    EdgeModels,
    JobFiles,
    edge_config,
    edge_failure,
    progress_of,
)
from cloud_hub.services.video_jobs import (
    ClaimedJob,
    claim_job,
    fail_abandoned,
    finish_job,
    job_upload,
    mark_processed,
    release_job,
    renew_lease,
    virtual_device_id,
)
from cloud_hub.services.video_uploads import clip_path, delete_clip, delete_expired_clips

log = logging.getLogger(__name__)

JOBS_DIR = "jobs"
TOKEN_TTL_S = 600.0
RESUME_SYNC_TIMEOUT_S = 60.0
STDERR_KEEP_CHARS = 64 * 1024
# The hub's own settings and secrets stay out of the edge's environment; RETAIL_EDGE_* would
# override the virtual device's enrolled credentials.
_PRIVATE_ENV_PREFIXES = ("RETAIL_HUB_", "RETAIL_EDGE_")
_PRIVATE_ENV = frozenset({"DATABASE_URL"})


class JobFailedError(Exception):
    """The job cannot succeed; the message says why (shown to the API caller)."""


class _LeaseLostError(Exception):
    """Another runner holds the job now."""


class _StoppingError(Exception):
    """The runner is stopping."""


def edge_environment() -> dict[str, str]:
    """The environment of an edge step: this process's, without the hub's settings."""
    return {
        k: v
        for k, v in os.environ.items()
        if k not in _PRIVATE_ENV and not k.startswith(_PRIVATE_ENV_PREFIXES)
    }


class VideoJobRunner:
    """Runs queued video jobs one at a time in its own thread: ``start()`` / ``stop()``."""

    def __init__(
        self,
        engine: Engine,
        settings: HubSettings,
        clock: Callable[[], float] = time.time,
        runner: str | None = None,
    ) -> None:
        self.engine = engine
        self.settings = settings
        self.clock = clock
        self.runner = runner or default_runner_name()
        self.data_dir = settings.video_data_dir.resolve()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Start the runner thread."""
        if self._thread is not None:
            raise RuntimeError("video job runner already started")
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="video-jobs", daemon=True)
        self._thread.start()
        log.info("video job runner %s: clips in %s", self.runner, self.data_dir)

    def stop(self, timeout_s: float = 30.0) -> None:
        """Stop: a job in progress is handed back to the queue (its edge step is ended)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout_s)
            if self._thread.is_alive():
                log.warning("video job runner still busy at stop; abandoned")
            self._thread = None

    # -- the loop ---------------------------------------------------------------------------

    def _loop(self) -> None:
        failing = False
        while not self._stop.is_set():
            try:
                job = self._next_job()
                failing = False
            except SQLAlchemyError as exc:
                log.log(
                    logging.DEBUG if failing else logging.WARNING,
                    "video jobs: database unreachable (%s); trying again",
                    " ".join(str(exc).split())[:300],
                )
                failing = True
                job = None
            if job is None:
                self._stop.wait(self.settings.video_poll_s)
                continue
            self.run(job)

    def _next_job(self) -> ClaimedJob | None:
        s = self.settings
        with self.engine.begin() as conn:
            dead = fail_abandoned(conn, self.clock(), s.video_job_max_attempts)
        for job_id in dead:
            log.warning(
                "video job %d failed: its runner died %d time(s)", job_id, s.video_job_max_attempts
            )
            self._clean_up(job_id)
        with self.engine.begin() as conn:
            return claim_job(conn, self.runner, self.clock(), s.video_job_lease_s)

    def run(self, job: ClaimedJob) -> None:
        """Run one claimed job to its end (or hand it back when stopping)."""
        log.info(
            "video job %d: store %s, upload %s, take %d",
            job.job_id, job.store_id, job.upload_id, job.attempts,
        )  # fmt: skip
        error: str | None = None
        try:
            self._run_steps(job)
        except JobFailedError as exc:
            error = str(exc)
        except _LeaseLostError:
            log.warning("video job %d: lease lost to another runner; leaving it", job.job_id)
            return
        except _StoppingError:
            with self.engine.begin() as conn:
                release_job(conn, job.job_id, self.runner, self.clock())
            log.info("video job %d handed back to the queue (runner stopping)", job.job_id)
            return
        except Exception as exc:  # a bug or the file system: fail the job loudly, keep running
            log.exception("video job %d: unexpected error", job.job_id)
            error = f"the job runner failed: {type(exc).__name__}: {exc}"
        with self.engine.begin() as conn:
            finish_job(conn, job.job_id, self.runner, self.clock(), error=error)
        if error is None:
            log.info("video job %d succeeded", job.job_id)
        else:
            log.warning("video job %d failed: %s", job.job_id, error)
        self._clean_up(job.job_id)

    def _clean_up(self, job_id: int) -> None:
        with self.engine.begin() as conn:
            upload_id = job_upload(conn, job_id)
            if upload_id is not None:
                delete_clip(conn, self.data_dir, upload_id, self.clock())
        shutil.rmtree(self._files(job_id).folder, ignore_errors=True)

    def _files(self, job_id: int) -> JobFiles:
        return JobFiles(self.data_dir / JOBS_DIR / str(job_id))

    # -- the steps --------------------------------------------------------------------------

    def _run_steps(self, job: ClaimedJob) -> None:
        s = self.settings
        if s.video_model is None:
            raise JobFailedError(
                "no detector model for video jobs: set RETAIL_HUB_VIDEO_MODEL on the job worker "
                "(an ONNX file, OpenVINO .xml or signed bundle, as an edge config's model.path)"
            )
        files = self._files(job.job_id)
        clip = clip_path(self.data_dir, job.upload_id, job.container)
        if not job.processed:
            # A take that died before the clip was processed sent nothing: start afresh.
            shutil.rmtree(files.folder, ignore_errors=True)
            if not clip.is_file():
                raise JobFailedError(f"the uploaded clip is gone from {clip.parent}")
        files.folder.mkdir(parents=True, exist_ok=True)
        device_id = virtual_device_id(job.store_id)
        config = edge_config(
            store_id=job.store_id,
            device_id=device_id,
            timezone=job.timezone,
            camera=job.camera,
            clip=clip,
            models=EdgeModels(
                detector=s.video_model.resolve(),
                trusted_keys=None
                if s.video_model_trusted_keys is None
                else s.video_model_trusted_keys.resolve(),
                face=None if s.video_face_model is None else s.video_face_model.resolve(),
            ),
            files=files,
            hub_url=s.video_hub_url,
        )
        # JSON is YAML: the edge's loader reads it as it is.
        files.config.write_text(json.dumps(config, indent=2))
        cfg = str(files.config)
        self._edge(job, "check-config", [cfg], 0.01)
        with self.engine.begin() as conn:
            token = create_enrollment_token(
                conn, job.store_id, created_by=f"video job {job.job_id}", now=self.clock(),
                ttl_s=TOKEN_TTL_S,
            ).token  # fmt: skip
        # The token goes in the environment, never on the command line (`ps` shows that).
        self._edge(job, "enroll", ["--config", cfg], 0.02, env={"RETAIL_EDGE_ENROLL_TOKEN": token})
        if not job.processed:
            self._edge(
                job, "sync", ["--config", cfg, "--timeout", str(RESUME_SYNC_TIMEOUT_S)], 0.03
            )
            self._edge(
                job, "process",
                [str(clip), "--config", cfg, "--camera", str(job.camera["id"]), "--outbox",
                 "--recorded-at", repr(job.recorded_at), "--report", str(files.report)],
                0.05, progress_span=(0.05, 0.9),
            )  # fmt: skip
            report = json.loads(files.report.read_text())
            report.pop("video", None)  # the hub's own path to the clip
            with self.engine.begin() as conn:
                mark_processed(conn, job.job_id, self.runner, self.clock(), report)
        out = self._edge(
            job, "sync", ["--config", cfg, "--timeout", str(s.video_job_timeout_s)], 0.9
        )
        result = json.loads(out)
        if result["pending"]:
            raise JobFailedError(f"sync: {result['pending']} record(s) still pending at the end")
        if result["dead_lettered"]:
            raise JobFailedError(
                f"sync: the hub dead-lettered {result['dead_lettered']} record(s) of this clip "
                "(GET /api/v1 dead letters, or the dead_letters table, say why)"
            )
        if not job.processed and result["duplicates"]:
            # Records processed in this take are all new; duplicates mean their seqs collided
            # with records the hub held already, which it ignored: the results are incomplete.
            raise JobFailedError(
                f"sync: the hub already held {result['duplicates']} of this clip's record seqs "
                f"for device {device_id}; results incomplete (was another {device_id} running?)"
            )

    def _edge(
        self,
        job: ClaimedJob,
        step: str,
        args: list[str],
        progress: float,
        progress_span: tuple[float, float] | None = None,
        env: dict[str, str] | None = None,
    ) -> str:
        """Run one edge CLI step (``env`` added to its environment), renewing the lease
        meanwhile; its stdout.

        Raises:
            JobFailedError: the step failed (the edge's message) or ran out of time.
        """
        s = self.settings
        python = str(s.video_edge_python) if s.video_edge_python is not None else sys.executable
        cmd = [python, "-m", "edge_agent.cli", step, *args]
        proc = subprocess.Popen(
            cmd,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env={**edge_environment(), **(env or {})},
            cwd=self._files(job.job_id).folder,
        )
        out: list[bytes] = []
        err = bytearray()

        def pump_out() -> None:
            assert proc.stdout is not None
            out.append(proc.stdout.read())

        def pump_err() -> None:
            assert proc.stderr is not None
            fd = proc.stderr.fileno()
            while chunk := os.read(fd, 4096):
                err.extend(chunk)
                if len(err) > STDERR_KEEP_CHARS:
                    del err[: len(err) - STDERR_KEEP_CHARS]

        pumps = [threading.Thread(target=f, daemon=True) for f in (pump_out, pump_err)]
        for t in pumps:
            t.start()
        started = time.monotonic()
        renew_every = s.video_job_lease_s / 3.0
        next_renew = 0.0
        try:
            while proc.poll() is None:
                now_m = time.monotonic()
                if now_m - started > s.video_job_timeout_s:
                    raise JobFailedError(f"{step} ran longer than {s.video_job_timeout_s:g} s")
                if self._stop.is_set():
                    raise _StoppingError
                if now_m >= next_renew:
                    frac = progress_of(err[-4096:].decode(errors="replace"))
                    done = progress
                    if progress_span is not None and frac is not None:
                        done = progress_span[0] + frac * (progress_span[1] - progress_span[0])
                    with self.engine.begin() as conn:
                        held = renew_lease(
                            conn, job.job_id, self.runner, self.clock(), s.video_job_lease_s,
                            round(done, 3),
                        )  # fmt: skip
                    if not held:
                        raise _LeaseLostError
                    next_renew = now_m + min(renew_every, 2.0)
                self._stop.wait(0.2)
        finally:
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(10)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
            for t in pumps:
                t.join(10)
        # The hub's own paths stay inside: the caller knows the camera, not the worker's disk.
        text = err.decode(errors="replace").replace(str(self._files(job.job_id).config), "config")
        text = text.replace(str(self.data_dir) + os.sep, "")
        if proc.returncode != 0:
            raise JobFailedError(edge_failure(f"edge {step}", proc.returncode, text))
        return b"".join(out).decode(errors="replace")


def job_files_root(data_dir: Path) -> Path:
    """Where job folders live under the video data dir."""
    return data_dir / JOBS_DIR


def video_retention(engine: Engine, settings: HubSettings, now: float) -> None:
    """Delete clips no job took within the retention age, and leftovers of ended jobs."""
    with engine.begin() as conn:
        delete_expired_clips(
            conn, settings.video_data_dir.resolve(), now, settings.video_upload_retention_s
        )
