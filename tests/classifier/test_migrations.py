"""Migrations and tables agree: the schema Alembic builds is the one the code declares, on SQLite and PostgreSQL."""

from __future__ import annotations

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

from classifier.store.db import alembic_config, engine_for, upgrade
from classifier.store.tables import Base


def _differences(url: str) -> list:
    with engine_for(url).connect() as conn:
        return compare_metadata(MigrationContext.configure(conn), Base.metadata)


def _indexes(url: str) -> set[str]:
    with engine_for(url).connect() as conn:
        return {ix["name"] for ix in inspect(conn).get_indexes("classifications")}


def test_head_matches_the_declared_tables(database_url):
    upgrade(database_url)
    assert _differences(database_url) == []


def test_low_cardinality_indexes_are_dropped_and_come_back_on_downgrade(database_url):
    upgrade(database_url)
    assert {"ix_classifications_priority", "ix_classifications_needs_review"}.isdisjoint(_indexes(database_url))
    assert {"ix_classifications_received_at", "ix_classifications_message_id"} <= _indexes(database_url)
    command.downgrade(alembic_config(database_url), "0002")
    assert {"ix_classifications_priority", "ix_classifications_needs_review"} <= _indexes(database_url)
    upgrade(database_url)
    assert _differences(database_url) == []


def test_session_tables_come_and_go_with_revision_0004(database_url):
    upgrade(database_url)
    with engine_for(database_url).connect() as conn:
        assert {"review_sessions", "login_failures"} <= set(inspect(conn).get_table_names())
    command.downgrade(alembic_config(database_url), "0003")
    with engine_for(database_url).connect() as conn:
        assert {"review_sessions", "login_failures"}.isdisjoint(inspect(conn).get_table_names())
    upgrade(database_url)
    assert _differences(database_url) == []
