"""Extract frames from videos for labelling: sampled to a chosen fps, near-duplicates dropped.

``extract_frames(video, out_dir)`` writes ``out_dir/<video stem>/<stem>_f<frame>.jpg`` and
returns one :class:`FrameRecord` per kept frame; ``FRAMES_INDEX`` (``frames.jsonl`` in
``out_dir``) lists every extracted frame with its source video and media time, so that the
dataset split can keep all frames of one video on the same side.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from model_export.dataset.errors import DatasetError
from model_export.dataset.sampling import (
    DEFAULT_MIN_CHANGE,
    DEFAULT_PIXEL_DELTA,
    FpsSampler,
    NearDuplicateFilter,
    thumbnail,
)

log = logging.getLogger(__name__)

#: Name of the index of extracted frames inside the frames folder.
FRAMES_INDEX = "frames.jsonl"
#: Frames per second sampled by default.
DEFAULT_FPS = 3.0
#: Frame period assumed when a video reports no frame rate (seconds).
FALLBACK_FRAME_PERIOD_S = 1.0 / 25.0


class FrameRecord(BaseModel):
    """One extracted frame: where it is and where in which video it came from."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    image: str = Field(description="path relative to the frames folder, '/' separated")
    video: str = Field(description="absolute path of the source video")
    frame_index: int = Field(ge=0, description="index of the frame in the video, from 0")
    time_s: float = Field(ge=0, description="media time of the frame in seconds")


@dataclass(frozen=True, slots=True)
class Extraction:
    """What ``extract_frames`` did with one video.

    Attributes:
        video: the video file.
        frames_read: frames decoded from the file.
        sampled: frames selected by the fps sampler.
        records: the frames kept after near-duplicate removal (written as JPEG).
        ended_early: the file yielded fewer frames than its container announces.
    """

    video: Path
    frames_read: int
    sampled: int
    records: tuple[FrameRecord, ...]
    ended_early: bool


def _open(video: Path) -> cv2.VideoCapture:
    if not video.is_file():
        raise DatasetError(f"video {video} not found")
    capture = cv2.VideoCapture(str(video))
    if not capture.isOpened():
        capture.release()
        raise DatasetError(
            f"video {video} cannot be opened: not a video OpenCV/FFmpeg can read, or damaged"
        )
    return capture


def extract_frames(
    video: Path,
    out_dir: Path,
    fps: float = DEFAULT_FPS,
    min_change: float = DEFAULT_MIN_CHANGE,
    pixel_delta: int = DEFAULT_PIXEL_DELTA,
    end_s: float | None = None,
    progress: Callable[[int, int | None], None] | None = None,
    jpeg_quality: int = 95,
) -> Extraction:
    """Write the frames of ``video`` sampled at ``fps``, without near-duplicates, as JPEGs.

    Frame times are ``index / container fps`` seconds. ``min_change`` and ``pixel_delta``
    configure the near-duplicate test (see ``model_export.dataset.sampling``; ``min_change=0``
    keeps every sampled frame). ``end_s`` stops at that media time (seconds). ``progress``
    is called with (frames read, frames expected or None) every few frames.

    Raises ``DatasetError`` when the file is missing, cannot be opened, or not even its
    first frame decodes. A file that breaks part way keeps the frames read so far, with a
    warning (``Extraction.ended_early``).
    """
    video = video.resolve()
    try:
        FpsSampler(fps, 0.0)  # validates fps before any I/O
        dedup = NearDuplicateFilter(min_change, pixel_delta)
    except ValueError as exc:
        raise DatasetError(str(exc)) from None
    if end_s is not None and not end_s > 0:
        raise DatasetError(f"end time must be > 0 seconds, got {end_s!r}")
    capture = _open(video)
    try:
        native_fps = capture.get(cv2.CAP_PROP_FPS)
        if not (math.isfinite(native_fps) and native_fps > 0):
            log.warning(
                "%s reports no frame rate: assuming %.0f fps", video, 1 / FALLBACK_FRAME_PERIOD_S
            )
            native_fps = 1.0 / FALLBACK_FRAME_PERIOD_S
        sampler = FpsSampler(fps, 1.0 / native_fps)
        count = int(capture.get(cv2.CAP_PROP_FRAME_COUNT))
        expected = count if count > 0 else None
        if expected is not None and end_s is not None:
            expected = min(expected, math.ceil(end_s * native_fps))
        folder = out_dir / video.stem
        folder.mkdir(parents=True, exist_ok=True)
        records: list[FrameRecord] = []
        frames_read = 0
        sampled = 0
        while capture.grab():
            index = frames_read
            t = index / native_fps
            if end_s is not None and t >= end_s:
                break
            frames_read += 1
            if progress is not None and index % 10 == 0:
                progress(index, expected)
            if not sampler.select(t):
                continue
            ok, image = capture.retrieve()
            if not ok or image is None:
                log.warning("%s: frame %d grabbed but could not be decoded", video, index)
                continue
            sampled += 1
            if not dedup.keep(thumbnail(np.asarray(image, np.uint8))):
                continue
            name = f"{video.stem}_f{index:06d}.jpg"
            if not cv2.imwrite(str(folder / name), image, [cv2.IMWRITE_JPEG_QUALITY, jpeg_quality]):
                raise DatasetError(f"cannot write {folder / name} (disk full or read-only?)")
            records.append(
                FrameRecord(
                    image=f"{video.stem}/{name}",
                    video=str(video),
                    frame_index=index,
                    time_s=round(t, 6),
                )
            )
    finally:
        capture.release()
    if frames_read == 0:
        with contextlib.suppress(OSError):
            folder.rmdir()  # created above, empty
        raise DatasetError(f"no frame could be decoded from video {video}: damaged or truncated")
    if progress is not None:
        progress(frames_read, expected)
    ended_early = end_s is None and count > 0 and frames_read < count
    if ended_early:
        log.warning(
            "video %s ended after %d of %d frames (truncated or damaged?); keeping those",
            video,
            frames_read,
            count,
        )
    log.info(
        "%s: %d frames read, %d sampled at %g fps, %d kept after near-duplicate removal",
        video.name,
        frames_read,
        sampled,
        fps,
        len(records),
    )
    return Extraction(video, frames_read, sampled, tuple(records), ended_early)


def read_frame_index(frames_dir: Path) -> dict[str, FrameRecord]:
    """The frames listed in ``frames_dir/frames.jsonl`` by image path ({} if there is none)."""
    path = frames_dir / FRAMES_INDEX
    if not path.is_file():
        return {}
    out: dict[str, FrameRecord] = {}
    for n, line in enumerate(path.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = FrameRecord.model_validate_json(line)
        except ValidationError as exc:
            raise DatasetError(f"{path}:{n}: {exc.errors()[0]['msg']}") from None
        out[record.image] = record
    return out


def check_video_names(frames_dir: Path, videos: Iterable[Path]) -> None:
    """Refuse videos whose frames would land in the same subfolder as another video's.

    Frames go to ``frames_dir/<video stem>/``: two different videos with one stem (in this
    call, or one already in the index) would mix their frames and break the split by video.
    """
    owner = {Path(r.image).parts[0]: r.video for r in read_frame_index(frames_dir).values()}
    for video in videos:
        path = str(video.resolve())
        other = owner.setdefault(video.stem, path)
        if other != path:
            raise DatasetError(
                f"videos {other} and {path} have the same name {video.stem!r}: their frames "
                f"would share {frames_dir / video.stem}; rename one or use another --out"
            )


def update_frame_index(frames_dir: Path, extractions: Iterable[Extraction]) -> int:
    """Merge new extractions into ``frames.jsonl``: a re-extracted video's old frames go.

    Old JPEGs of a re-extracted video that were not written again are deleted, so the folder
    holds exactly what the index lists. Returns the number of frames in the index.
    """
    index = read_frame_index(frames_dir)
    for ex in extractions:
        fresh = {r.image for r in ex.records}
        for image, record in list(index.items()):
            if record.video == str(ex.video):
                del index[image]
                if image not in fresh:
                    (frames_dir / image).unlink(missing_ok=True)
        index.update({r.image: r for r in ex.records})
    path = frames_dir / FRAMES_INDEX
    with path.open("w") as fh:
        for record in sorted(index.values(), key=lambda r: r.image):
            fh.write(record.model_dump_json() + "\n")
    return len(index)


def extract_videos(
    videos: Sequence[Path],
    out_dir: Path,
    fps: float = DEFAULT_FPS,
    min_change: float = DEFAULT_MIN_CHANGE,
    pixel_delta: int = DEFAULT_PIXEL_DELTA,
    end_s: float | None = None,
    progress: Callable[[Path, int, int | None], None] | None = None,
) -> list[Extraction]:
    """``extract_frames`` for each video into ``out_dir``, then update ``frames.jsonl``.

    Checks all videos open before writing anything, so a typo in the last of ten videos
    fails at once. ``progress(video, frames read, frames expected or None)``.
    """
    if not videos:
        raise DatasetError("no videos given")
    check_video_names(out_dir, videos)
    for video in videos:
        _open(video).release()
    out: list[Extraction] = []
    for video in videos:
        report = None if progress is None else functools.partial(progress, video)
        out.append(
            extract_frames(
                video,
                out_dir,
                fps=fps,
                min_change=min_change,
                pixel_delta=pixel_delta,
                end_s=end_s,
                progress=report,
            )
        )
    update_frame_index(out_dir, out)
    return out
