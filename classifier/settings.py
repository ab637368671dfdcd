"""Runtime settings from ``CLASSIFIER_*`` environment variables, with documented defaults."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BeforeValidator, Field
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict


def _key_list(value: object) -> object:
    """``"k1, k2"`` (as in the environment) → ``("k1", "k2")``; empty items dropped."""
    items = value.split(",") if isinstance(value, str) else value
    return tuple(k.strip() for k in items if k.strip()) if isinstance(items, (list, tuple)) else items


KeyList = Annotated[tuple[str, ...], NoDecode, BeforeValidator(_key_list)]


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
    api_key: str | None = Field(None, description="One key with every role (gateway, agent, admin).")
    gateway_keys: KeyList = Field((), description="Keys of the gateway role (classify), comma-separated.")
    agent_keys: KeyList = Field((), description="Keys of the agent role (review, feedback, quality), comma-separated.")
    admin_keys: KeyList = Field((), description="Keys of the admin role (reload, export, escalation check; agent "
                                                "too), comma-separated.")
    classify_require_key: bool = Field(True, description="Once any key is configured, classify needs a gateway key "
                                                         "(false: open, for a trial).")
    session_seconds: int = Field(12 * 3600, ge=1, description="Life of a review page session.")
    review_poll_seconds: int = Field(5, ge=1, le=3600, description="How often an open console refreshes the "
                                                                   "waiting count (one small indexed count).")
    review_undo_seconds: int = Field(60, ge=0, le=3600, description="How long an agent may withdraw their own "
                                                                    "decision.")
    session_cookie_secure: bool = Field(False, description="Send the session cookie over HTTPS only.")
    login_max_failures: int = Field(5, ge=1, description="Failed logins allowed per address and per agent ...")
    login_window_seconds: int = Field(300, ge=1, description="... within this many seconds; then 429.")
    group_commit: bool = Field(True, description="Score and store the requests of one event-loop turn together "
                                                   "(false: each request alone; the results are the same).")
    max_body_bytes: int = Field(1_000_000, ge=1_000, description="Largest request body accepted.")
    batch_limit: int = Field(1000, ge=1, description="Most messages in one batch request.")
    max_json_depth: int = Field(32, ge=2, description="Deepest JSON nesting accepted.")
    # E-mail caps, checked on the raw bytes before the stdlib parser sees them (README, "Limits of e-mails").
    email_max_header_bytes: int = Field(16_384, ge=998, description="Largest header field of an e-mail, folded "
                                                                    "lines included (RFC 5322 lines are ≤ 998).")
    email_max_encoded_words: int = Field(200, ge=1, description="Most RFC 2047 encoded words (=?…?=) in one header.")
    email_max_addresses: int = Field(100, ge=1, description="Most addresses in one From/To/Cc/… header.")
    email_max_headers: int = Field(1000, ge=50, description="Most header fields in one e-mail, its parts' included.")
    email_max_parts: int = Field(100, ge=1, description="Most MIME parts in one e-mail.")
    email_max_depth: int = Field(10, ge=1, le=100, description="Deepest nesting of MIME parts (multipart, message/*).")
    email_parse_threads: int = Field(2, ge=1, description="E-mails parsed at once, in threads off the event loop.")
    store_bodies: bool = Field(True, description="Keep message bodies in the store (subject to retention).")
    retention_days: int = Field(365, ge=1, description="`db purge` drops bodies older than this (Ley 1581).")
    report_concurrency: int = Field(1, ge=1, description="Reports (quality, review queue, export, escalations) "
                                                         "computed at once per worker; more wait their turn.")
    store_retry_after_seconds: int = Field(5, ge=1, description="Retry-After of a 503 store_unavailable (a store "
                                                                  "that cannot write: read-only, full, unreachable).")
    model_check_seconds: float = Field(1.5, gt=0, le=3600, description="How often each worker checks the "
                                       "models manifest and serves a promoted or rolled-back model.")
    model_registry: Literal["auto", "store", "files"] = Field(
        "auto", description="Where trained models live: `store` (the database, shared by every machine: workers are "
                            "told of a change by PostgreSQL LISTEN/NOTIFY and keep a verified copy in models_dir), "
                            "`files` (models_dir alone, one machine) or `auto` (store on PostgreSQL, files otherwise).")
    model_registry_poll_seconds: float = Field(30.0, gt=0, le=3600, description="With the store registry and its "
                                               "notifications connected, how often a worker reads the registry's "
                                               "revision anyway (a notification lost with a connection); without them, "
                                               "model_check_seconds.")
    jobs_every_seconds: float = Field(0, ge=0, description="Run the periodic jobs (escalation, retention purge) inside "
                                                           "the service every this many seconds; 0: off (run "
                                                           "`python -m classifier jobs run` from cron instead).")

    @property
    def model_registry_in_store(self) -> bool:
        """Whether models are read from and written to the store (``model_registry``; auto: on PostgreSQL)."""
        if self.model_registry == "auto":
            return self.database_url.startswith("postgresql")
        return self.model_registry == "store"


@lru_cache
def get_settings() -> Settings:
    """Process-wide settings, read once from the environment."""
    return Settings()
