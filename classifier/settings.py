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
    real_data: Path = Field(Path("../shared/realtext/minds14_es_dev.jsonl"),
                            description="Real messages labelled by the policy: `evaluate` only, never trained on.")

    database_url: str = Field("sqlite:///data/classifier.sqlite3",
                              description="SQLAlchemy URL; PostgreSQL: postgresql+psycopg://user:pass@host/db")
    auto_migrate: bool = Field(True, description="Apply migrations at start-up (make run applies them first).")

    host: str = "127.0.0.1"
    port: int = 8000
    workers: int = 1
    log_bodies: bool = Field(False, description="Log message bodies (off: Ley 1581 de 2012).")
    api_key: str | None = Field(None, description="Key for feedback, review, exports, reload and customer data.")
    classify_require_key: bool = Field(False, description="Also require the key on the classify endpoints.")
    group_commit: bool = Field(True, description="Score and store the requests of one event-loop turn together "
                                                   "(false: each request alone; the results are the same).")
    max_body_bytes: int = Field(1_000_000, ge=1_000, description="Largest request body accepted.")
    batch_limit: int = Field(1000, ge=1, description="Most messages in one batch request.")
    max_json_depth: int = Field(32, ge=2, description="Deepest JSON nesting accepted.")
    store_bodies: bool = Field(True, description="Keep message bodies in the store (subject to retention).")
    retention_days: int = Field(365, ge=1, description="`db purge` drops bodies older than this (Ley 1581).")


@lru_cache
def get_settings() -> Settings:
    """Process-wide settings, read once from the environment."""
    return Settings()
