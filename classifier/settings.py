"""Runtime settings from ``CLASSIFIER_*`` environment variables, with documented defaults."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Where configuration lives and how the service runs; paths are relative to the working directory."""

    model_config = SettingsConfigDict(env_prefix="CLASSIFIER_", extra="ignore")

    policy_path: Path = Field(Path("rules/policy.yaml"), description="Policy: priorities, SLA tables, calendar.")
    rules_dir: Path = Field(Path("rules/prioridad"), description="Priority rule files (*.yaml).")
    customers_path: Path = Field(Path("data/customers.yaml"), description="Customers and distributors.")
    models_dir: Path = Field(Path("models"), description="Trained model artefacts and manifest.")
    data_dir: Path = Field(Path("data"), description="Corpus and other data files.")
    corpus_path: Path = Field(Path("data/corpus.jsonl"), description="Labelled corpus.")

    host: str = "127.0.0.1"
    port: int = 8000
    workers: int = 1
    log_bodies: bool = False


@lru_cache
def get_settings() -> Settings:
    """Process-wide settings, read once from the environment."""
    return Settings()
