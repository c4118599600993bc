"""Environment settings of the classifier tooling; command-line flags override them."""

from __future__ import annotations

from pathlib import Path

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

EXTRACTOR_IN_ASSETS = Path("models/classifier/mobilenet_v1_1.0_224_quant_embedding_extractor.onnx")
_REPO = Path(__file__).resolve().parents[2]


class ClassifierSettings(BaseSettings):
    """Where the frozen extractor is and where to cache embeddings."""

    model_config = SettingsConfigDict(env_prefix="RETAIL_EXPORT_", extra="ignore")

    extractor: Path | None = None
    """The frozen embedding extractor ONNX (``RETAIL_EXPORT_EXTRACTOR``)."""
    assets: Path = Field(
        _REPO.parent / "shared" / "assets",
        validation_alias=AliasChoices("RETAIL_CV_ASSETS", "RETAIL_EXPORT_ASSETS"),
    )
    """The shared assets folder (``RETAIL_CV_ASSETS``, default ``../shared/assets``)."""
    cache_dir: Path | None = None
    """Folder to memoise embeddings in (``RETAIL_EXPORT_CACHE_DIR``); unset: no cache."""

    def extractor_path(self) -> Path:
        """``extractor`` if set, else the MobileNetV1 extractor in the shared assets."""
        return self.extractor or self.assets / EXTRACTOR_IN_ASSETS
