"""ByteTrack multi-object tracker for one camera, vectorised over tracks.

Per frame (Zhang et al., "ByteTrack", ECCV 2022):

1. Predict every track one frame ahead with a constant-velocity Kalman filter.
2. Match high-score detections to confirmed and lost tracks (cost ``1 - IoU * score``, fused
   with appearance distance when enabled; lost tracks may also be re-associated by appearance
   alone when the person reappears away from the predicted box).
3. Match low-score detections (often occluded people) to the tracks still unmatched, by IoU only.
4. Match the remaining high-score detections to tentative tracks; drop tentative tracks that
   missed; start tentative tracks from unmatched detections scoring ``new_track_thresh``.
5. Forget lost tracks not seen for ``lost_track_s`` seconds.

All track state lives in parallel numpy arrays, so each step is a handful of array operations
whatever the number of people; there is no per-track Python object or loop.
"""

from __future__ import annotations

import dataclasses
import logging
import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from edge_agent.detect.detections import Detections
from edge_agent.errors import ConfigError
from edge_agent.track import kalman
from edge_agent.track.config import TrackerConfig
from edge_agent.track.matching import iou_matrix, linear_assignment
from edge_agent.track.reid import AppearanceEmbedder
from edge_agent.track.tracks import Tracks

log = logging.getLogger(__name__)

TENTATIVE = 0  # born, not yet confirmed: never output
TRACKED = 1  # confirmed and matched on its last frame
LOST = 2  # confirmed, unmatched for at most lost_track_frames frames

IntArray = npt.NDArray[np.intp]
F64 = npt.NDArray[np.float64]


@dataclass(slots=True)
class _TrackTable:
    """Parallel arrays, one row per live track."""

    mean: F64  # (N, 8) Kalman state
    cov: F64  # (N, 8, 8)
    track_id: npt.NDArray[np.int64]  # 0 until confirmed
    hits: npt.NDArray[np.int32]
    state: npt.NDArray[np.int8]
    last_frame: npt.NDArray[np.int64]  # frame number of the last matched detection
    class_id: npt.NDArray[np.int32]
    score: npt.NDArray[np.float32]
    box: npt.NDArray[np.float32]  # (N, 4) last matched detection, xyxy pixels
    emb: npt.NDArray[np.float32]  # (N, D) smoothed L2-normalised appearance, D = 0 without re-id

    @classmethod
    def empty(cls, dim: int) -> _TrackTable:
        return cls(
            np.zeros((0, 8)),
            np.zeros((0, 8, 8)),
            np.zeros(0, np.int64),
            np.zeros(0, np.int32),
            np.zeros(0, np.int8),
            np.zeros(0, np.int64),
            np.zeros(0, np.int32),
            np.zeros(0, np.float32),
            np.zeros((0, 4), np.float32),
            np.zeros((0, dim), np.float32),
        )

    def __len__(self) -> int:
        return len(self.track_id)

    def select(self, keep: npt.NDArray[np.bool_]) -> _TrackTable:
        return _TrackTable(*(getattr(self, f.name)[keep] for f in dataclasses.fields(self)))

    def extend(self, other: _TrackTable) -> _TrackTable:
        return _TrackTable(
            *(
                np.concatenate([getattr(self, f.name), getattr(other, f.name)])
                for f in dataclasses.fields(self)
            )
        )


class ByteTracker:
    """Assigns persistent ids to the detections of one camera, frame after frame.

    Args:
        config: thresholds and lifetimes (seconds).
        frame_rate: frames per second actually fed to ``update`` (the sampled rate, e.g. 3.0
            for a camera sampled at 3 fps), used to turn seconds into frames.
        embedder: appearance model, required when ``config.use_appearance``.

    Raises:
        ConfigError: the frame rate is not positive, or appearance is enabled with no embedder.
    """

    def __init__(
        self,
        config: TrackerConfig,
        frame_rate: float,
        embedder: AppearanceEmbedder | None = None,
    ) -> None:
        if not (math.isfinite(frame_rate) and frame_rate > 0):
            raise ConfigError(f"tracker frame_rate must be a positive number, got {frame_rate!r}")
        if config.use_appearance and embedder is None:
            raise ConfigError(
                "tracker.use_appearance is true but no re-identification model is configured; "
                "set the reid model path or turn use_appearance off"
            )
        if embedder is not None and not config.use_appearance:
            log.warning("re-id model given but tracker.use_appearance is false: not used")
        self.config = config
        self.frame_rate = float(frame_rate)
        self.lost_track_frames = config.lost_track_frames(frame_rate)
        """Frames a lost track is kept: ``lost_track_s`` at ``frame_rate``."""
        self._embedder = embedder if config.use_appearance else None
        self._dim = self._embedder.dim if self._embedder is not None else 0
        self._next_id = 1
        self._frame = 0
        self._t = _TrackTable.empty(self._dim)

    @property
    def frame_count(self) -> int:
        """Frames seen since construction or the last ``reset``."""
        return self._frame

    def reset(self) -> None:
        """Forget every track (e.g. after a camera reconnect). Ids are not reused afterwards."""
        self._frame = 0
        self._t = _TrackTable.empty(self._dim)

    def update(self, detections: Detections, image: npt.NDArray[np.uint8] | None = None) -> Tracks:
        """Advance one frame with its detections (pixels); returns the confirmed tracks matched
        in this frame, sorted by id, each with the box and score of its detection.

        ``image`` (BGR, the frame the detections came from) is required only with appearance.
        """
        cfg = self.config
        self._frame += 1
        t = self._t
        boxes = detections.xyxy
        scores = detections.confidence
        classes = detections.class_id
        high = scores >= cfg.track_high_thresh
        hi = np.flatnonzero(high)
        lo = np.flatnonzero(~high & (scores >= cfg.track_low_thresh))
        det_emb = np.zeros((len(hi), self._dim), np.float32)
        if self._embedder is not None:
            if image is None:
                raise ValueError("ByteTracker.update needs the frame image when use_appearance")
            det_emb = self._embedder.embed(image, boxes[hi])

        if len(t):
            # A lost track's height velocity is frozen, as in ByteTrack, so it does not balloon.
            t.mean[t.state != TRACKED, 7] = 0.0
            t.mean, t.cov = kalman.predict(t.mean, t.cov)
        pred = kalman.xyah_to_xyxy(t.mean)

        # Stage 1: high-score detections against confirmed (tracked + lost) tracks.
        pool = np.flatnonzero(t.state != TENTATIVE)
        hi_rows = np.arange(len(hi))
        cost = self._cost(
            pred=pred,
            tracks=pool,
            boxes=boxes,
            scores=scores,
            classes=classes,
            dets=hi,
            det_emb=det_emb,
            emb_rows=hi_rows,
            reid=True,
        )
        m1, pool_free, hi_free = linear_assignment(cost, cfg.match_thresh)

        # Stage 2: low-score detections against tracks that were tracked last frame.
        rest = pool[pool_free]
        rest = rest[t.state[rest] == TRACKED]
        cost2 = 1.0 - iou_matrix(pred[rest], boxes[lo])
        cost2[t.class_id[rest][:, None] != classes[lo][None, :]] = np.inf
        m2, rest_free, _ = linear_assignment(cost2, cfg.low_match_thresh)

        # Stage 3: remaining high-score detections against tentative tracks.
        tent = np.flatnonzero(t.state == TENTATIVE)
        left = hi[hi_free]
        cost3 = self._cost(
            pred=pred,
            tracks=tent,
            boxes=boxes,
            scores=scores,
            classes=classes,
            dets=left,
            det_emb=det_emb,
            emb_rows=hi_free,
            reid=False,
        )
        m3, tent_free, left_free = linear_assignment(cost3, cfg.tentative_match_thresh)

        tr = np.concatenate([pool[m1[:, 0]], rest[m2[:, 0]], tent[m3[:, 0]]])
        dt = np.concatenate([hi[m1[:, 1]], lo[m2[:, 1]], left[m3[:, 1]]])
        emb_tr = np.concatenate([pool[m1[:, 0]], tent[m3[:, 0]]])
        emb_rows = np.concatenate([m1[:, 1], hi_free[m3[:, 1]]])
        self._apply_matches(tr, dt, detections, emb_tr, det_emb[emb_rows])
        t.state[rest[rest_free]] = LOST

        expired = (t.state == LOST) & (self._frame - t.last_frame > self.lost_track_frames)
        missed = np.zeros(len(t), bool)
        missed[tent[tent_free]] = True
        self._t = t = t.select(~(expired | missed))

        born = left[left_free]
        keep_born = scores[born] >= cfg.new_track_thresh
        born = born[keep_born]
        if len(born):
            self._t = t = t.extend(
                self._new_tracks(detections, born, det_emb[hi_free[left_free][keep_born]])
            )

        out = np.flatnonzero((t.state == TRACKED) & (t.last_frame == self._frame))
        out = out[np.argsort(t.track_id[out], kind="stable")]
        return Tracks(
            xyxy=t.box[out].copy(),
            confidence=t.score[out].copy(),
            class_id=t.class_id[out].copy(),
            track_id=t.track_id[out].copy(),
            hits=t.hits[out].copy(),
        )

    def _cost(
        self,
        *,
        pred: F64,
        tracks: IntArray,
        boxes: npt.NDArray[np.float32],
        scores: npt.NDArray[np.float32],
        classes: npt.NDArray[np.int32],
        dets: IntArray,
        det_emb: npt.NDArray[np.float32],
        emb_rows: IntArray,
        reid: bool,
    ) -> F64:
        """Cost matrix (tracks x dets) for the high-score stages; inf means never match."""
        cfg = self.config
        iou = iou_matrix(pred[tracks], boxes[dets])
        cost = 1.0 - iou * scores[dets][None, :] if cfg.fuse_score else 1.0 - iou
        if self._embedder is not None and len(tracks) and len(dets):
            t = self._t
            cos = 1.0 - t.emb[tracks] @ det_emb[emb_rows].T
            overlap = iou > 0
            fused = (1.0 - cfg.appearance_weight) * cost + cfg.appearance_weight * cos
            cost = np.where(overlap & (cos <= cfg.appearance_gate), fused, np.inf)
            if reid:
                # A lost person reappearing away from the prediction: appearance alone, within
                # walking distance of where they were last seen.
                seconds = (self._frame - t.last_frame[tracks]) / self.frame_rate
                last = t.box[tracks].astype(np.float64)
                det = boxes[dets].astype(np.float64)
                dx = (last[:, None, 0] + last[:, None, 2]) - (det[None, :, 0] + det[None, :, 2])
                dy = (last[:, None, 1] + last[:, None, 3]) - (det[None, :, 1] + det[None, :, 3])
                dist = np.hypot(dx, dy) / 2
                height = last[:, 3] - last[:, 1]
                reach = (1.0 + cfg.reid_max_speed * seconds) * height
                reid_ok = (
                    (t.state[tracks] == LOST)[:, None]
                    & ~overlap
                    & (dist <= reach[:, None])
                    & (cos <= cfg.reid_thresh)
                )
                cost = np.where(reid_ok, cos, cost)
        cost[self._t.class_id[tracks][:, None] != classes[dets][None, :]] = np.inf
        return cost

    def _apply_matches(
        self,
        tr: IntArray,
        dt: IntArray,
        detections: Detections,
        emb_tr: IntArray,
        emb: npt.NDArray[np.float32],
    ) -> None:
        """Kalman-correct the matched tracks with their detections and confirm tentative ones."""
        t = self._t
        if len(tr):
            boxes = detections.xyxy[dt]
            t.mean[tr], t.cov[tr] = kalman.update(t.mean[tr], t.cov[tr], kalman.xyxy_to_xyah(boxes))
            t.hits[tr] += 1
            t.last_frame[tr] = self._frame
            t.box[tr] = boxes
            t.score[tr] = detections.confidence[dt]
            t.class_id[tr] = detections.class_id[dt]
            was_tentative = tr[t.state[tr] == TENTATIVE]
            t.state[tr] = TRACKED
            unconfirmed = was_tentative[t.hits[was_tentative] < self.config.min_hits]
            t.state[unconfirmed] = TENTATIVE
            self._confirm(np.sort(was_tentative[t.hits[was_tentative] >= self.config.min_hits]))
        if self._dim and len(emb_tr):
            m = self.config.embedding_momentum
            mixed = m * t.emb[emb_tr] + (1.0 - m) * emb
            t.emb[emb_tr] = mixed / np.maximum(np.linalg.norm(mixed, axis=1, keepdims=True), 1e-12)

    def _confirm(self, rows: IntArray) -> None:
        """Give newly confirmed tracks the next ids, in birth order."""
        self._t.track_id[rows] = np.arange(self._next_id, self._next_id + len(rows))
        self._next_id += len(rows)

    def _new_tracks(
        self, detections: Detections, born: IntArray, emb: npt.NDArray[np.float32]
    ) -> _TrackTable:
        n = len(born)
        boxes = detections.xyxy[born]
        mean, cov = kalman.initiate(kalman.xyxy_to_xyah(boxes))
        cfg = self.config
        confirmed = cfg.min_hits <= 1 or (cfg.activate_on_first_frame and self._frame == 1)
        new = _TrackTable(
            mean=mean,
            cov=cov,
            track_id=np.zeros(n, np.int64),
            hits=np.ones(n, np.int32),
            state=np.full(n, TRACKED if confirmed else TENTATIVE, np.int8),
            last_frame=np.full(n, self._frame, np.int64),
            class_id=detections.class_id[born].copy(),
            score=detections.confidence[born].copy(),
            box=boxes.copy(),
            emb=emb.astype(np.float32).reshape(n, self._dim),
        )
        if confirmed:
            new.track_id[:] = np.arange(self._next_id, self._next_id + n)
            self._next_id += n
        return new
