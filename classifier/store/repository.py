"""Reading and writing the store; functions take keyword-only arguments and a session."""

from __future__ import annotations

import uuid
from datetime import datetime, timezone

from sqlalchemy import insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from classifier.ingest import Message
from classifier.store.tables import ClassificationRow


_INSERT = insert(ClassificationRow.__table__)  # Core, built once: no ORM bulk machinery on the hot path


def find_by_message_id(*, session: Session, message_id: str) -> ClassificationRow | None:
    return session.scalar(select(ClassificationRow).where(ClassificationRow.message_id == message_id))


def get_classification(*, session: Session, classification_id: str) -> ClassificationRow | None:
    return session.get(ClassificationRow, classification_id)


def save_classification(*, session: Session, message: Message, result: dict, store_body: bool = True
                        ) -> tuple[dict, bool]:
    """Store one result and return it with its ``classification_id``; a message id already stored returns
    the stored result instead (``created`` False). One Core INSERT: the hot path skips the ORM unit of work."""
    if message.id:
        existing = find_by_message_id(session=session, message_id=message.id)
        if existing is not None:
            return existing.result, False
    classification_id = str(uuid.uuid4())
    stored = {**result, "classification_id": classification_id}
    values = dict(
        id=classification_id,
        message_id=message.id,
        channel=message.channel,
        subject=message.subject if store_body else None,
        body=message.body if store_body else None,
        sender=message.sender,
        customer_id=message.customer_id,
        received_at=datetime.fromisoformat(result["received_at"]),
        created_at=datetime.now(timezone.utc),
        priority=result["priority"],
        source=result["source"],
        confidence=float(result["confidence"]),
        needs_review=bool(result["needs_review"]),
        model_priority=result.get("model_priority"),
        model_version=result.get("model_version"),
        result=stored,
        version=1,
    )
    try:
        session.connection().execute(_INSERT, [values])
        session.commit()
    except IntegrityError:  # the same message id stored by a concurrent request: answer with that one
        session.rollback()
        existing = find_by_message_id(session=session, message_id=message.id) if message.id else None
        if existing is None:
            raise
        return existing.result, False
    return stored, True
