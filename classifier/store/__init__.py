"""Durable store of classifications and agents' decisions (SQLAlchemy; SQLite by default, PostgreSQL by URL)."""
