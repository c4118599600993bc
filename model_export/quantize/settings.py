"""Environment settings of the variant tooling; command-line flags override them."""

from __future__ import annotations

from pathlib import Path

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

_REPO = Path(__file__).resolve().parents[2]


class VariantEnvironment(BaseSettings):
    """Where the real frames for calibration and evaluation are."""

    model_config = SettingsConfigDict(env_prefix="RETAIL_EXPORT_", extra="ignore")

    assets: Path = Field(
        _REPO.parent / "shared" / "assets",
        validation_alias=AliasChoices("RETAIL_CV_ASSETS", "RETAIL_EXPORT_ASSETS"),
    )
    """The shared assets folder (``RETAIL_CV_ASSETS``, default ``../shared/assets``)."""
