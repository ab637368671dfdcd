"""Reading and writing the store; functions take keyword-only arguments and a session."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from functools import lru_cache
from typing import TYPE_CHECKING

from sqlalchemy import Connection, Dialect, func, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from uuid6 import uuid7

from classifier.ingest import Message
from classifier.store.tables import ClassificationRow, DecisionRow

if TYPE_CHECKING:  # the store takes the flow's result without importing the flow (and spaCy) at run time
    from classifier.pipeline import Classification


_CLASSIFICATIONS = ClassificationRow.__table__


@lru_cache(maxsize=8)
def _compiled_insert(dialect: Dialect) -> tuple[str, bool, tuple[str, ...], tuple]:
    """The classifications INSERT compiled once per dialect, with each column's bind processor: the hot path then
    costs one ``executemany`` and no statement-cache lookup or per-row compilation machinery."""
    compiled = insert(_CLASSIFICATIONS).compile(dialect=dialect)
    keys = tuple(compiled.positiontup) if compiled.positional else tuple(compiled.binds)
    processors = tuple(_CLASSIFICATIONS.c[key].type.dialect_impl(dialect).bind_processor(dialect) for key in keys)
    return compiled.string, compiled.positional, keys, processors


def _insert(connection: Connection, rows: list[dict]) -> None:
    sql, positional, keys, processors = _compiled_insert(connection.dialect)
    values = [tuple(p(row.get(k)) if p else row.get(k) for k, p in zip(keys, processors)) for row in rows]
    connection.exec_driver_sql(sql, values if positional else [dict(zip(keys, v)) for v in values])


def find_by_message_id(*, session: Session | Connection, message_id: str) -> dict | None:
    """The stored result for a message id, if any (Core select: works on a session or a bare connection)."""
    return find_by_message_ids(session=session, message_ids=[message_id]).get(message_id)


def find_by_message_ids(*, session: Session | Connection, message_ids: Sequence[str]) -> dict[str, dict]:
    """The stored results of those message ids that are stored, by id, in one query."""
    if not message_ids:
        return {}
    query = select(_CLASSIFICATIONS.c.message_id, _CLASSIFICATIONS.c.result).where(
        _CLASSIFICATIONS.c.message_id.in_(set(message_ids)))
    return {message_id: result for message_id, result in session.execute(query)}


def get_classification(*, session: Session, classification_id: str) -> ClassificationRow | None:
    return session.get(ClassificationRow, classification_id)


@dataclass(frozen=True, slots=True)
class NewClassification:
    """One classification to store: the columns the store queries, typed, and the JSON answer kept whole."""

    message: Message
    id: str  # fixed before the first write, time-ordered (uuid7): a retry tells its own rows apart
    received_at: datetime
    priority: str
    source: str
    confidence: float
    needs_review: bool
    model_priority: str | None
    model_version: str | None
    answer: dict  # the JSON answer, stored whole; the store adds ``classification_id``

    @classmethod
    def of(cls, classification: Classification, *, classification_id: str | None = None,
           extra: Mapping | None = None) -> "NewClassification":
        """From the flow's typed result; ``extra`` (e.g. an e-mail's received-at source) joins the JSON answer."""
        classification_id = classification_id or str(uuid7())
        decision, model = classification.decision, classification.model
        return cls(message=classification.message, id=classification_id,
                   received_at=classification.sla.received_at, priority=decision.priority, source=decision.source,
                   confidence=float(decision.confidence), needs_review=bool(decision.needs_review),
                   model_priority=model.priority if model else None, model_version=classification.model_version,
                   answer={**classification.as_dict(), **(extra or {})})


def _row(item: NewClassification, store_body: bool) -> dict:
    message = item.message
    return dict(
        id=item.id,
        message_id=message.id,
        channel=message.channel,
        subject=message.subject if store_body else None,
        body=message.body if store_body else None,
        sender=message.sender,
        customer_id=message.customer_id,
        received_at=item.received_at,
        created_at=datetime.now(timezone.utc),
        priority=item.priority,
        source=item.source,
        confidence=item.confidence,
        needs_review=item.needs_review,
        model_priority=item.model_priority,
        model_version=item.model_version,
        result={**item.answer, "classification_id": item.id},
        version=1,
    )


def save_classifications(*, session: Session | Connection, items: Sequence[NewClassification],
                         store_body: bool = True) -> list[tuple[dict, bool]]:
    """Store results in one transaction (one INSERT, one commit); each comes back with its ``classification_id``
    and whether it was created. A message id already stored, or twice among ``items``, makes the batch fall back
    to one transaction per row, and that row answers with the stored result (``created`` False, unless the stored
    row is this very one: a result that carries its ``classification_id`` can be written again safely)."""
    rows = [_row(item, store_body) for item in items]
    if not rows:
        return []
    try:
        _insert(session.connection() if isinstance(session, Session) else session, rows)
        session.commit()
    except IntegrityError:  # the same message id stored before, meanwhile or twice here
        session.rollback()
        if len(rows) > 1:
            out = []
            for item in items:
                try:
                    out.extend(save_classifications(session=session, items=[item], store_body=store_body))
                except Exception:
                    session.rollback()
                    raise
            return out
        existing = find_by_message_id(session=session, message_id=rows[0]["message_id"]) if rows[0]["message_id"] \
            else None
        if existing is None:
            raise
        return [(existing, existing.get("classification_id") == rows[0]["id"])]
    return [(row["result"], True) for row in rows]


def save_classification(*, session: Session | Connection, item: NewClassification, store_body: bool = True
                        ) -> tuple[dict, bool]:
    """``save_classifications`` for one message."""
    return save_classifications(session=session, items=[item], store_body=store_body)[0]


# ---------------------------------------------------------------------------------------------- decisions

class DecisionConflict(Exception):
    """A second, different decision on an item that already has one, without saying it replaces it."""

    def __init__(self, current: DecisionRow):
        super().__init__(f"classification already has a {current.decision} decision by {current.agent}")
        self.current = current


def current_decision(*, session: Session, classification_id: str) -> DecisionRow | None:
    return session.scalar(select(DecisionRow).where(DecisionRow.classification_id == classification_id,
                                                    DecisionRow.current.is_(True)))


def record_decision(*, session: Session, classification: ClassificationRow, agent: str, decision: str,
                    priority: str, level: str, reason: str | None, replaces: bool) -> tuple[DecisionRow, bool]:
    """Keep every decision with who and when; the newest is current. The same decision again is idempotent,
    a different one needs ``replaces`` (else ``DecisionConflict``)."""
    existing = current_decision(session=session, classification_id=classification.id)
    if existing is not None:
        same = (existing.decision, existing.priority, existing.agent) == (decision, priority, agent)
        if same and not replaces:
            return existing, False
        if not replaces:
            raise DecisionConflict(existing)
        existing.current = False
    row = DecisionRow(id=str(uuid7()), classification_id=classification.id, agent=agent, decision=decision,
                      priority=priority, suggested_priority=classification.priority, level=level, reason=reason,
                      replaces=existing.id if existing is not None else None, current=True,
                      created_at=datetime.now(timezone.utc))
    session.add(row)
    session.commit()
    return row, True


def review_queue(*, session: Session, needs_review: bool | None, order: str, limit: int, offset: int
                 ) -> tuple[list[ClassificationRow], int]:
    """Classifications without a decision yet: oldest first, or least confident first ("most useful")."""
    decided = select(DecisionRow.classification_id)
    query = select(ClassificationRow).where(ClassificationRow.id.not_in(decided))
    if needs_review is not None:
        query = query.where(ClassificationRow.needs_review.is_(needs_review))
    total = session.scalar(select(func.count()).select_from(query.subquery()))
    if order == "least_confident":
        query = query.order_by(ClassificationRow.confidence.asc(), ClassificationRow.created_at.asc())
    else:
        query = query.order_by(ClassificationRow.received_at.asc(), ClassificationRow.created_at.asc())
    return list(session.scalars(query.limit(limit).offset(offset))), int(total or 0)


LABELLING = ("accept", "change")  # decisions that say how a message should be classified; escalation does not


def reviewed(*, session: Session) -> list[tuple[ClassificationRow, DecisionRow]]:
    """Every classification an agent labelled, with the latest decision that labels it (accept or change), oldest
    first: the feedback export. An escalation raises a ticket's priority for handling (POLICY §6); it says nothing
    about how the message should have been classified, so it is never a label."""
    query = (select(ClassificationRow, DecisionRow)
             .join(DecisionRow, DecisionRow.classification_id == ClassificationRow.id)
             .where(DecisionRow.decision.in_(LABELLING))
             .order_by(ClassificationRow.created_at.asc(), DecisionRow.created_at.asc()))
    latest: dict[str, tuple[ClassificationRow, DecisionRow]] = {}
    for c, d in session.execute(query):
        latest[c.id] = (c, d)
    return list(latest.values())


def purge_bodies(*, session: Session, older_than_days: int) -> int:
    """Ley 1581 de 2012: drop subject and body (also inside the stored result's evidence) of messages older than
    the retention period; priorities, decisions and metrics stay."""
    cutoff = datetime.now(timezone.utc) - timedelta(days=older_than_days)
    rows = session.scalars(select(ClassificationRow).where(ClassificationRow.created_at < cutoff,
                                                           ClassificationRow.body_purged_at.is_(None))).all()
    now = datetime.now(timezone.utc)
    for row in rows:
        result = dict(row.result)
        for key in ("rules", "suppressed_rules"):
            result[key] = [{**hit, "evidence": []} for hit in result.get(key, [])]
        result["impact_evidence"] = None
        row.subject, row.body, row.body_purged_at, row.result = None, None, now, result
    session.commit()
    return len(rows)


def open_tickets(*, session: Session, limit: int = 5000) -> list[tuple[ClassificationRow, DecisionRow | None]]:
    """Classifications still at level 1 (no decision, or a current decision that kept them at N1)."""
    query = (select(ClassificationRow, DecisionRow)
             .outerjoin(DecisionRow, (DecisionRow.classification_id == ClassificationRow.id)
                        & DecisionRow.current.is_(True))
             .order_by(ClassificationRow.received_at.asc()).limit(limit))
    return [(c, d) for c, d in session.execute(query) if d is None or d.level != "N2"]


def quality(*, session: Session, weeks: int = 12) -> dict:
    """Per ISO week and suggested priority: classified, sent to review, reviewed, accepted, changed to what.

    The acceptance rate is the model's live precision as agents judge it.
    """
    since = datetime.now(timezone.utc) - timedelta(weeks=weeks)
    rows = session.execute(
        select(ClassificationRow.created_at, ClassificationRow.priority, ClassificationRow.needs_review,
               DecisionRow.decision, DecisionRow.priority)
        .outerjoin(DecisionRow, (DecisionRow.classification_id == ClassificationRow.id) & DecisionRow.current.is_(True))
        .where(ClassificationRow.created_at >= since)).all()
    table: dict[tuple[str, str], dict] = {}
    for created, suggested, review, decision, final in rows:
        year, week, _ = created.isocalendar()
        cell = table.setdefault((f"{year}-W{week:02d}", suggested), {
            "week": f"{year}-W{week:02d}", "priority": suggested, "classified": 0, "sent_to_review": 0,
            "reviewed": 0, "accepted": 0, "changed_to": {}})
        cell["classified"] += 1
        cell["sent_to_review"] += bool(review)
        if decision is not None:
            cell["reviewed"] += 1
            if final == suggested:
                cell["accepted"] += 1
            else:
                cell["changed_to"][final] = cell["changed_to"].get(final, 0) + 1
    out = []
    for cell in sorted(table.values(), key=lambda c: (c["week"], c["priority"])):
        cell["acceptance_rate"] = round(cell["accepted"] / cell["reviewed"], 4) if cell["reviewed"] else None
        cell["review_share"] = round(cell["sent_to_review"] / cell["classified"], 4)
        out.append(cell)
    return {"weeks": weeks, "rows": out}
