"""The store configuration: one YAML file per store box, validated once at load.

Paths in the file (model, file sources) are relative to the file's own folder. Errors name the
field and the value so an installer can fix the file without reading code.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from common.manifest import ModelManifest
from edge_agent.analytics.config import CameraAnalyticsConfig
from edge_agent.errors import ConfigError
from edge_agent.outbox.config import OutboxConfig
from edge_agent.sync.config import SyncConfig
from edge_agent.track.config import TrackerConfig
from edge_agent.twin.config import TwinConfig

_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


def _check_id(value: str, what: str) -> str:
    if not _ID.match(value):
        raise ValueError(
            f"{what} {value!r} must be 1-64 letters, digits, '-', '_' or '.', starting with a "
            "letter or digit (it becomes part of MQTT topics and database keys)"
        )
    return value


class ModelConfig(BaseModel):
    """The person detector."""

    model_config = ConfigDict(extra="forbid")

    path: Path = Field(
        description="ONNX file or OpenVINO .xml, or a signed bundle (folder or .tar) with "
        "trusted_keys; relative to this config file"
    )
    manifest: ModelManifest | Path | None = Field(
        None, description="inline manifest or path to one; default: beside the model"
    )
    trusted_keys: Path | None = Field(
        None,
        description="folder of Ed25519 public keys (*.pub) a model bundle may be signed with; "
        "when set, only a signed, untampered bundle loads (relative to this config file)",
    )
    runtime: Literal["auto", "onnxruntime", "openvino"] = "auto"
    providers: Literal["auto"] | list[str] = Field(
        "auto",
        description="ONNX Runtime execution providers, or auto (TensorRT, CUDA, "
        "OpenVINO, CPU: whichever is installed)",
    )
    device: str = Field("CPU", description="OpenVINO device (CPU, GPU, AUTO)")
    confidence: float = Field(
        0.1, ge=0, le=1, description="lowest detector score kept; the tracker decides the rest"
    )
    iou: float = Field(0.45, gt=0, le=1, description="NMS IoU threshold")
    classes: list[str] = Field(default_factory=lambda: ["person"])


class CameraConfig(CameraAnalyticsConfig):
    """One camera: where its frames come from, and what to measure in them."""

    model_config = ConfigDict(extra="forbid")

    id: str
    source: str = Field(description="file path, rtsp/http/tcp URL, or USB index such as 0")
    fps: float = Field(3.0, gt=0, le=60, description="frames per second to analyse")
    enabled: bool = True

    @field_validator("id")
    @classmethod
    def _id_ok(cls, v: str) -> str:
        return _check_id(v, "camera id")


class PrivacyConfig(BaseModel):
    """The privacy gate's face model; every other gate setting comes from the environment
    (``RETAIL_CV_PRIVACY_*``, see ``edge_agent.privacy.PrivacySettings``)."""

    model_config = ConfigDict(extra="forbid")

    face_model: Path | None = Field(
        None,
        description="YuNet face detector ONNX (relative to the config file); needed before any "
        "image may leave the box (alert snapshots, heatmap PNGs, --export-dir)",
    )
    heatmap_image_every_s: float = Field(
        3600.0,
        ge=60.0,
        description="the live agent sends each camera's heatmap image (gated) this often",
    )


class MetricsConfig(BaseModel):
    """Where ``retail-edge run`` serves its Prometheus metrics (``edge_agent/metrics.py``)."""

    model_config = ConfigDict(extra="forbid")

    port: int | None = Field(
        None, ge=1, le=65535, description="serve /metrics on this port; none: no metrics server"
    )
    addr: str = Field("127.0.0.1", description="listen address (0.0.0.0: every interface)")


class StoreConfig(BaseModel):
    """Everything a store box needs to run."""

    model_config = ConfigDict(extra="forbid")

    store_id: str
    device_id: str
    timezone: str = Field("UTC", description="IANA zone of the store, e.g. Europe/Paris")
    model: ModelConfig
    tracker: TrackerConfig = Field(default_factory=TrackerConfig)
    cameras: list[CameraConfig] = Field(min_length=1)
    outbox: OutboxConfig = Field(
        default_factory=OutboxConfig, description="where records wait for the hub, and bounds"
    )
    sync: SyncConfig | None = Field(
        None, description="how records reach the hub; none: they stay in the outbox"
    )
    privacy: PrivacyConfig = Field(default_factory=PrivacyConfig)
    metrics: MetricsConfig = Field(
        default_factory=MetricsConfig, description="Prometheus metrics of the running agent"
    )
    twin: TwinConfig | None = Field(
        None, description="model rollouts from the hub (desired state); none: off"
    )

    @field_validator("store_id", "device_id")
    @classmethod
    def _ids_ok(cls, v: str) -> str:
        return _check_id(v, "id")

    @model_validator(mode="after")
    def _unique_cameras(self) -> StoreConfig:
        ids = [c.id for c in self.cameras]
        dupes = sorted({i for i in ids if ids.count(i) > 1})
        if dupes:
            raise ValueError(f"camera ids must be unique; repeated: {dupes}")
        return self

    def camera(self, camera_id: str) -> CameraConfig:
        """The camera with this id; ConfigError naming the known ids otherwise."""
        for cam in self.cameras:
            if cam.id == camera_id:
                return cam
        raise ConfigError(
            f"no camera {camera_id!r} in the config; known: {[c.id for c in self.cameras]}"
        )


def _is_local_path(source: str) -> bool:
    return "://" not in source and not source.strip().isdigit()


def _format_errors(path: Path, exc: ValidationError) -> str:
    lines = [f"{path}: {exc.error_count()} problem(s) in the store config:"]
    for err in exc.errors():
        where = ".".join(str(p) for p in err["loc"]) or "(top level)"
        value = err.get("input")
        shown = json.dumps(value, default=str) if not isinstance(value, dict) else "{…}"
        lines.append(f"  - {where}: {err['msg']} (got {shown[:80]})")
    return "\n".join(lines)


def parse_config(data: Any, base_dir: Path, source_name: str = "<config>") -> StoreConfig:
    """Validate an already-parsed config mapping; relative paths resolve against ``base_dir``."""
    if not isinstance(data, dict):
        raise ConfigError(f"{source_name}: the store config must be a YAML mapping")
    try:
        cfg = StoreConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_format_errors(Path(source_name), exc)) from None
    cfg.model.path = (base_dir / cfg.model.path).resolve()
    if isinstance(cfg.model.manifest, Path):
        cfg.model.manifest = (base_dir / cfg.model.manifest).resolve()
    if cfg.model.trusted_keys is not None:
        cfg.model.trusted_keys = (base_dir / cfg.model.trusted_keys).resolve()
    for cam in cfg.cameras:
        if _is_local_path(cam.source):
            cam.source = str((base_dir / cam.source).resolve())
        for i, z in enumerate(cam.zones):
            if z.shelf is not None and z.shelf.classifier is not None:
                bundle = (base_dir / z.shelf.classifier).resolve()
                shelf = z.shelf.model_copy(update={"classifier": bundle})
                cam.zones[i] = z.model_copy(update={"shelf": shelf})
    cfg.outbox.path = (base_dir / cfg.outbox.path).resolve()
    if cfg.sync is not None:
        for name in ("mqtt_ca_file", "mqtt_cert_file", "mqtt_key_file", "credentials_file"):
            value = getattr(cfg.sync, name)
            if value is not None:
                setattr(cfg.sync, name, (base_dir / value).resolve())
    if cfg.twin is not None:
        cfg.twin.staging_dir = (base_dir / cfg.twin.staging_dir).resolve()
    if cfg.privacy.face_model is not None:
        cfg.privacy.face_model = (base_dir / cfg.privacy.face_model).resolve()
    return cfg


def load_config(path: Path) -> StoreConfig:
    """Read and validate a store YAML file.

    Raises:
        ConfigError: unreadable file, YAML syntax error, or invalid fields (all are listed).
    """
    try:
        text = path.read_text()
    except OSError as exc:
        raise ConfigError(f"cannot read store config {path}: {exc.strerror}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from None
    return parse_config(data, path.parent, str(path))


def config_json_schema() -> dict[str, Any]:
    """JSON schema of the store config, for editors and the hub."""
    return StoreConfig.model_json_schema()
