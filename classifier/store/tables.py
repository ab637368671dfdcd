"""Database tables (SQLAlchemy 2 declarative); API schemas live in ``api/schemas.py``, not here."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Boolean, DateTime, Float, ForeignKey, Integer, String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from classifier.ingest import ID_LENGTH


class Base(DeclarativeBase):
    pass


class ClassificationRow(Base):
    """One classified message: its input, the full result and when it was made."""

    __tablename__ = "classifications"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    message_id: Mapped[str | None] = mapped_column(String(ID_LENGTH), unique=True, index=True)
    channel: Mapped[str] = mapped_column(String(10))
    subject: Mapped[str | None] = mapped_column(Text)
    body: Mapped[str | None] = mapped_column(Text)
    sender: Mapped[str | None] = mapped_column(String(ID_LENGTH))
    customer_id: Mapped[str | None] = mapped_column(String(128))
    received_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    priority: Mapped[str] = mapped_column(String(16))
    source: Mapped[str] = mapped_column(String(16))
    confidence: Mapped[float] = mapped_column(Float)
    needs_review: Mapped[bool] = mapped_column(Boolean)
    model_priority: Mapped[str | None] = mapped_column(String(16))
    model_version: Mapped[str | None] = mapped_column(String(64))
    result: Mapped[dict] = mapped_column(JSON)
    body_purged_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    version: Mapped[int] = mapped_column(Integer, default=1)


class DecisionRow(Base):
    """An agent's decision on a classification: accept, change or escalate. Every decision is kept."""

    __tablename__ = "decisions"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    classification_id: Mapped[str] = mapped_column(String(36), ForeignKey("classifications.id"), index=True)
    agent: Mapped[str] = mapped_column(String(128))
    decision: Mapped[str] = mapped_column(String(16))
    priority: Mapped[str] = mapped_column(String(16))
    suggested_priority: Mapped[str] = mapped_column(String(16))
    level: Mapped[str] = mapped_column(String(8))
    reason: Mapped[str | None] = mapped_column(Text)
    replaces: Mapped[str | None] = mapped_column(String(36))
    current: Mapped[bool] = mapped_column(Boolean, index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
