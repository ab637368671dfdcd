"""Alembic environment: the URL comes from the config set by ``classifier.store.db`` or from settings."""

from __future__ import annotations

from alembic import context

from classifier.store.db import engine_for
from classifier.store.tables import Base

config = context.config
url = config.get_main_option("sqlalchemy.url")
if not url:
    from classifier.settings import get_settings

    url = get_settings().database_url


def run_offline() -> None:
    context.configure(url=url, target_metadata=Base.metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()


def run_online() -> None:
    with engine_for(url).connect() as connection:
        context.configure(connection=connection, target_metadata=Base.metadata,
                          render_as_batch=connection.dialect.name == "sqlite")
        with context.begin_transaction():
            context.run_migrations()


if context.is_offline_mode():
    run_offline()
else:
    run_online()
