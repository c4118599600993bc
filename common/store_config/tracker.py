"""Tracker settings: one pydantic section of the camera configuration."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, model_validator


class TrackerConfig(BaseModel):
    """ByteTrack association thresholds, track lifetime and optional appearance re-identification.

    Scores are detector confidences in [0, 1]. Costs are distances in [0, 1] (``1 - IoU``, or
    ``1 - IoU * score`` when ``fuse_score``), and cosine distances ``1 - cos`` of L2-normalised
    embeddings. Lifetimes are in seconds so that the same config behaves alike on a camera
    sampled at 3 fps and at 30 fps.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    track_high_thresh: float = Field(
        default=0.5,
        ge=0.0,
        le=1.0,
        description="Detections scoring at least this take part in the first association stage "
        "against every confirmed and lost track.",
    )
    track_low_thresh: float = Field(
        default=0.1,
        ge=0.0,
        le=1.0,
        description="Detections scoring in [track_low_thresh, track_high_thresh) are matched in "
        "the second stage, only to tracks still unmatched; lower ones are discarded.",
    )
    new_track_thresh: float = Field(
        default=0.6,
        ge=0.0,
        le=1.0,
        description="An unmatched high-score detection starts a new (tentative) track only if it "
        "scores at least this.",
    )
    match_thresh: float = Field(
        default=0.8,
        gt=0.0,
        le=2.0,
        description="Largest cost accepted in the first (high-score) stage.",
    )
    low_match_thresh: float = Field(
        default=0.5,
        gt=0.0,
        le=1.0,
        description="Largest cost (1 - IoU) accepted in the second (low-score) stage.",
    )
    tentative_match_thresh: float = Field(
        default=0.7,
        gt=0.0,
        le=2.0,
        description="Largest cost accepted when matching tentative (unconfirmed) tracks.",
    )
    fuse_score: bool = Field(
        default=True,
        description="Use 1 - IoU * score as the high-stage cost so that confident detections win "
        "ties (ByteTrack's MOT17 setting).",
    )
    lost_track_s: float = Field(
        default=1.0,
        gt=0.0,
        description="Seconds a track that lost its detections is kept for re-association before "
        "it is dropped; converted to frames with the camera's sampled frame rate.",
    )
    min_hits: int = Field(
        default=2,
        ge=1,
        description="Matched frames needed before a track is confirmed and output. A tentative "
        "track missing one frame is dropped.",
    )
    activate_on_first_frame: bool = Field(
        default=True,
        description="Confirm the tracks born on the very first frame after start or reset "
        "at once (ByteTrack), so a stream does not start with an empty frame.",
    )
    use_appearance: bool = Field(
        default=False,
        description="Fuse appearance (re-identification embeddings) into association and "
        "re-associate lost tracks by appearance. Needs an AppearanceEmbedder and the image.",
    )
    appearance_weight: float = Field(
        default=0.5,
        ge=0.0,
        le=1.0,
        description="Weight of the cosine distance in the fused cost "
        "(1 - w) * motion_cost + w * cosine_distance, for pairs whose boxes overlap.",
    )
    appearance_gate: float = Field(
        default=0.5,
        gt=0.0,
        le=2.0,
        description="Overlapping pairs whose cosine distance exceeds this are never matched "
        "(clearly different people).",
    )
    reid_thresh: float = Field(
        default=0.25,
        gt=0.0,
        le=2.0,
        description="Largest cosine distance at which a lost track is re-associated with a "
        "detection that does not overlap its predicted box.",
    )
    reid_max_speed: float = Field(
        default=1.5,
        gt=0.0,
        description="Re-association by appearance only within (1 + reid_max_speed * seconds "
        "lost) box heights of where the track was last seen: how far a person can walk.",
    )
    embedding_momentum: float = Field(
        default=0.9,
        ge=0.0,
        lt=1.0,
        description="Exponential moving average factor of a track's appearance embedding: "
        "new = m * old + (1 - m) * observed.",
    )

    @model_validator(mode="after")
    def _thresholds_ordered(self) -> TrackerConfig:
        if self.track_low_thresh > self.track_high_thresh:
            raise ValueError(
                f"track_low_thresh ({self.track_low_thresh}) must not exceed "
                f"track_high_thresh ({self.track_high_thresh})"
            )
        return self

    def lost_track_frames(self, frame_rate: float) -> int:
        """Frames a lost track is kept at ``frame_rate`` frames per second; at least 1."""
        return max(1, round(self.lost_track_s * frame_rate))
