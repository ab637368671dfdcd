"""Database tables (SQLAlchemy 2 declarative); API schemas live in ``api/schemas.py``, not here."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (JSON, Boolean, DateTime, Float, ForeignKey, Index, Integer, LargeBinary, String, Text,
                        UniqueConstraint)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from classifier.ingest import ID_LENGTH


class Base(DeclarativeBase):
    pass


class ClassificationRow(Base):
    """One classified message: its input, the full result and when it was made."""

    __tablename__ = "classifications"
    # Both time indexes also hold the columns their reports read, so that these never read the (large) rows: the
    # quality report counts by day and priority; the review queue filters, counts and orders its page's ids.
    __table_args__ = (
        Index("ix_classifications_created_at", "created_at", "priority", "needs_review", "id"),
        Index("ix_classifications_received_at", "received_at", "needs_review", "confidence", "id"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    message_id: Mapped[str | None] = mapped_column(String(ID_LENGTH), unique=True, index=True)
    channel: Mapped[str] = mapped_column(String(10))
    subject: Mapped[str | None] = mapped_column(Text)
    body: Mapped[str | None] = mapped_column(Text)
    sender: Mapped[str | None] = mapped_column(String(ID_LENGTH))
    customer_id: Mapped[str | None] = mapped_column(String(128))
    received_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    priority: Mapped[str] = mapped_column(String(16))
    source: Mapped[str] = mapped_column(String(16))
    confidence: Mapped[float] = mapped_column(Float)
    needs_review: Mapped[bool] = mapped_column(Boolean)
    model_priority: Mapped[str | None] = mapped_column(String(16))
    model_version: Mapped[str | None] = mapped_column(String(64))
    result: Mapped[dict] = mapped_column(JSON)
    body_purged_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    version: Mapped[int] = mapped_column(Integer, default=1)
    # sha256 of the normalised message (classifier/store/content_hash.py): a repeated id is a retry only when it
    # matches; NULL (stored before it existed without text, or purged) never matches
    content_hash: Mapped[str | None] = mapped_column(String(64))


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
    current: Mapped[bool] = mapped_column(Boolean)  # no index: two values, and it misled joins (migration 0005)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)


class ReviewSessionRow(Base):
    """A review page session: the sha256 of its random id (never the id), who, which role and key, until when."""

    __tablename__ = "review_sessions"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    agent: Mapped[str] = mapped_column(String(128))
    role: Mapped[str] = mapped_column(String(16))
    key_id: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class LoginFailureRow(Base):
    """One failed login to the review page, by client address and by agent name (the login rate limit)."""

    __tablename__ = "login_failures"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    address: Mapped[str] = mapped_column(String(64), index=True)
    agent: Mapped[str] = mapped_column(String(128), index=True)
    failed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)


class EscalationRow(Base):
    """A ticket the escalation job moved to another support level (POLICY §6), with the raised priority and the
    deadlines recomputed from the original arrival. One per ticket and level: the pair is unique, so two instances
    that run the job at the same moment escalate a ticket once."""

    __tablename__ = "escalations"
    __table_args__ = (UniqueConstraint("classification_id", "level", name="uq_escalations_classification_level"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    classification_id: Mapped[str] = mapped_column(String(36), ForeignKey("classifications.id"))
    level: Mapped[str] = mapped_column(String(8))
    priority: Mapped[str] = mapped_column(String(16))
    previous_priority: Mapped[str] = mapped_column(String(16))
    response_due: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    solution_due: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    reason: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class ModelVersionRow(Base):
    """One trained model in the store's registry: its manifest entry (metrics, parameters, library versions) and
    the bytes of its files with their sha256, checked before any machine loads them."""

    __tablename__ = "model_versions"

    version: Mapped[str] = mapped_column(String(64), primary_key=True)
    entry: Mapped[dict] = mapped_column(JSON)
    serving: Mapped[bytes | None] = mapped_column(LargeBinary)  # the .npz workers load (None: saved before it existed)
    serving_sha256: Mapped[str | None] = mapped_column(String(64))
    estimator: Mapped[bytes] = mapped_column(LargeBinary)  # the .joblib, for retraining and inspection
    estimator_sha256: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class ModelRegistryRow(Base):
    """The store's one registry row: the current version and the others, newest first, where ``model list`` and
    ``model rollback`` read them; ``revision`` grows with every change (workers compare it)."""

    __tablename__ = "model_registry"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)  # always 1
    current: Mapped[str | None] = mapped_column(String(64), ForeignKey("model_versions.version"))
    previous: Mapped[list] = mapped_column(JSON)
    rolled_back: Mapped[list] = mapped_column(JSON)
    rejected: Mapped[list] = mapped_column(JSON)
    revision: Mapped[int] = mapped_column(Integer)
    changed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class ModelRegistryLogRow(Base):
    """Every change of the registry: which revision, what was done to which version, from which machine, when."""

    __tablename__ = "model_registry_log"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    revision: Mapped[int] = mapped_column(Integer)
    action: Mapped[str] = mapped_column(String(16))
    version: Mapped[str | None] = mapped_column(String(64))
    host: Mapped[str] = mapped_column(String(255))
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
