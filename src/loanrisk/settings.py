"""Settings: the only place that reads the environment (prefix ``LOANRISK_``)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Every knob of loanrisk, each settable as ``LOANRISK_<NAME>``."""

    model_config = SettingsConfigDict(env_prefix="LOANRISK_", extra="forbid", frozen=True)

    environment: Literal["development", "production"] = Field(
        "development",
        description="'production' refuses insecure settings (e.g. S3 over plain HTTP).",
    )
    storage: str = Field(
        "./loanrisk-data",
        description=(
            "Root of all stored data: a local directory (an Azure File share is a mounted "
            "directory) or s3://bucket/prefix. Every caller-supplied path is confined to it."
        ),
    )
    s3_endpoint_url: str | None = Field(
        None,
        description="S3-compatible endpoint (e.g. MinIO, SeaweedFS); None means AWS S3.",
    )
    s3_region: str | None = Field(None, description="S3 region; None lets boto3 decide.")
    seed: int = Field(0, description="Seed of expansion, splitting and the built-in sample.")
    test_fraction: float = Field(
        0.25, gt=0.0, lt=1.0, description="Share of rows held out as the test split."
    )

    @field_validator("storage")
    @classmethod
    def _storage_scheme(cls, value: str) -> str:
        scheme = value.split("://", 1)[0] if "://" in value else "file"
        if scheme not in {"file", "s3", "memory"}:
            raise ValueError(f"unsupported storage scheme {scheme!r}: use a directory or s3://")
        return value

    @model_validator(mode="after")
    def _refuse_insecure_production(self) -> Settings:
        if self.environment == "production" and (self.s3_endpoint_url or "").startswith("http://"):
            raise ValueError("production refuses a plain-HTTP S3 endpoint; use https://")
        if self.environment == "production" and self.storage.startswith("memory://"):
            raise ValueError("production refuses in-memory storage: nothing would survive")
        return self
