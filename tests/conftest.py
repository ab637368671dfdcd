"""Shared fixtures: the shipped policy, its calendar and the repository root."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from classifier.calendar import BusinessCalendar
from classifier.policy import load_policy
from classifier.config import load_policy_engine
from classifier.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
BOGOTA = ZoneInfo("America/Bogota")


def at(text: str) -> datetime:
    """'2026-07-10 16:30' as a Bogotá-local aware datetime."""
    return datetime.fromisoformat(text).replace(tzinfo=BOGOTA)


def repo_settings(**overrides) -> Settings:
    """Settings pointing at this checkout's rules, data and model, whatever the working directory."""
    base = dict(
        policy_path=ROOT / "rules/policy.yaml",
        rules_dir=ROOT / "rules/prioridad",
        customers_path=ROOT / "data/customers.yaml",
        models_dir=ROOT / "models",
        data_dir=ROOT / "data",
        corpus_path=ROOT / "data/corpus.jsonl",
    )
    return Settings(**{**base, **overrides})


@pytest.fixture(scope="session")
def settings() -> Settings:
    return repo_settings()


@pytest.fixture(scope="session")
def policy(settings):
    return load_policy(settings.policy_path)


@pytest.fixture(scope="session")
def calendar(policy) -> BusinessCalendar:
    return BusinessCalendar.from_config(policy.calendar)


@pytest.fixture(scope="session")
def engine(settings):
    return load_policy_engine(settings)


@pytest.fixture(scope="session")
def postgres_url():
    from tests.postgres import postgres_server

    with postgres_server() as url:
        yield url


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request, tmp_path):
    """Store tests run against a SQLite file and a real PostgreSQL server (a fresh schema each time)."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'store.sqlite3'}"
    return request.getfixturevalue("fresh_postgres_url")


@pytest.fixture
def fresh_postgres_url(postgres_url):
    """The test run's PostgreSQL server with an empty ``public`` schema."""
    from sqlalchemy import create_engine, text

    engine = create_engine(postgres_url)
    with engine.begin() as conn:
        conn.execute(text("DROP SCHEMA public CASCADE"))
        conn.execute(text("CREATE SCHEMA public"))
    engine.dispose()
    return postgres_url
