"""Reading and writing the store; functions take keyword-only arguments and a session."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from functools import lru_cache
from typing import TYPE_CHECKING, NamedTuple

from sqlalchemy import Connection, Dialect, and_, case, exists, func, insert, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, aliased
from uuid6 import uuid7

from classifier.ingest import Message
from classifier.store.content_hash import message_hash
from classifier.store.db import typed_store_errors
from classifier.store.review_queue import QueueFilter, queue_page
from classifier.store.tables import ClassificationRow, DecisionRow, EscalationRow

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


class Stored(NamedTuple):
    """A stored result and the content hash of the message it belongs to (None: unknown, matches nothing)."""

    result: dict
    content_hash: str | None

    def is_for(self, message: Message) -> bool:
        """Whether ``message`` is the one stored (a retry), not another one under the same id."""
        return self.content_hash is not None and self.content_hash == message_hash(message)


class IdConflict(Exception):
    """The message id is stored for another message: its content differs, or is no longer known."""

    def __init__(self, message_id: str):
        super().__init__("message id already stored for a different message")
        self.message_id = message_id


Saved = tuple[dict, bool]  # the stored result and whether this call created it


def find_by_message_id(*, session: Session | Connection, message_id: str) -> Stored | None:
    """The stored result for a message id, if any (Core select: works on a session or a bare connection)."""
    return find_by_message_ids(session=session, message_ids=[message_id]).get(message_id)


def find_by_message_ids(*, session: Session | Connection, message_ids: Sequence[str]) -> dict[str, Stored]:
    """The stored results of those message ids that are stored, by id, in one query."""
    if not message_ids:
        return {}
    query = select(_CLASSIFICATIONS.c.message_id, _CLASSIFICATIONS.c.result, _CLASSIFICATIONS.c.content_hash).where(
        _CLASSIFICATIONS.c.message_id.in_(set(message_ids)))
    with typed_store_errors(session):
        return {message_id: Stored(result, digest) for message_id, result, digest in session.execute(query)}


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
        content_hash=message_hash(message),
    )


def save_classifications(*, session: Session | Connection, items: Sequence[NewClassification],
                         store_body: bool = True) -> list[Saved | IdConflict]:
    """Store results in one transaction (one INSERT, one commit); each comes back with its ``classification_id``
    and whether it was created. A message id already stored, or twice among ``items``, makes the batch fall back
    to one transaction per row, and that row answers with the stored result when it is the same message (``created``
    False, unless the stored row is this very one: a result that carries its ``classification_id`` can be written
    again safely), or with ``IdConflict`` when the id belongs to another message. A store that cannot write raises
    ``StoreUnavailable``."""
    with typed_store_errors(session):
        return _save(session, items, store_body)


def _save(session: Session | Connection, items: Sequence[NewClassification], store_body: bool
          ) -> list[Saved | IdConflict]:
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
                    out.extend(_save(session, [item], store_body))
                except Exception:
                    session.rollback()
                    raise
            return out
        existing = find_by_message_id(session=session, message_id=rows[0]["message_id"]) if rows[0]["message_id"] \
            else None
        if existing is None:
            raise
        if not existing.is_for(items[0].message):
            return [IdConflict(rows[0]["message_id"])]
        return [(existing.result, existing.result.get("classification_id") == rows[0]["id"])]
    return [(row["result"], True) for row in rows]


def save_classification(*, session: Session | Connection, item: NewClassification, store_body: bool = True
                        ) -> Saved | IdConflict:
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
    with typed_store_errors(session):
        session.commit()
    return row, True


LABELLING = ("accept", "change")  # decisions that say how a message should be classified; escalation does not
UNDO = "undo"  # a row that withdraws the decision it ``replaces`` (kept for the trail, never current)


def review_queue(*, session: Session, needs_review: bool | None, order: str, limit: int, offset: int
                 ) -> tuple[list[ClassificationRow], int]:
    """Classifications without a current decision, oldest or least confident first: the console's queue
    (``review_queue.queue_page``) with only the review flag set."""
    page = queue_page(session=session, filters=QueueFilter(needs_review=needs_review, order=order), clock=None,
                      limit=limit, offset=offset)
    return [row.classification for row in page.rows], page.total


class UndoRefused(Exception):
    """A decision that cannot be undone: ``reason`` is "not_found", "agent", "superseded" or "expired"."""

    def __init__(self, reason: str, decision: DecisionRow | None = None):
        super().__init__(f"decision cannot be undone: {reason}")
        self.reason, self.decision = reason, decision


def undo_decision(*, session: Session, decision_id: str, agent: str, within: timedelta,
                  now: datetime | None = None) -> tuple[DecisionRow, DecisionRow | None]:
    """Withdraw a decision its own agent made less than ``within`` ago and that is still current: the decision it
    replaced (if any) is current again, and an ``undo`` row naming it keeps the trail. An undone decision is never
    a label (``labelled``). Returns the undone decision and the one now current."""
    now = now or datetime.now(timezone.utc)
    row = session.get(DecisionRow, decision_id)
    if row is None or row.decision == UNDO:
        raise UndoRefused("not_found")
    if row.agent != agent:
        raise UndoRefused("agent", row)
    if not row.current:
        raise UndoRefused("superseded", row)
    made = row.created_at if row.created_at.tzinfo else row.created_at.replace(tzinfo=timezone.utc)
    if now - made > within:
        raise UndoRefused("expired", row)
    previous = session.get(DecisionRow, row.replaces) if row.replaces else None
    row.current = False
    if previous is not None:
        previous.current = True
    session.add(DecisionRow(id=str(uuid7()), classification_id=row.classification_id, agent=agent, decision=UNDO,
                            priority=row.priority, suggested_priority=row.suggested_priority, level=row.level,
                            reason=None, replaces=row.id, current=False, created_at=now))
    with typed_store_errors(session):
        session.commit()
    return row, previous


class Labelled(NamedTuple):
    """A classification an agent labelled, with what the feedback export needs of it."""

    id: str
    channel: str
    subject: str | None
    body: str | None
    label: str
    impact: str | None
    request_type: str | None


def labelled(*, session: Session | Connection) -> Iterator[Labelled]:
    """Every classification an agent labelled, with the latest decision that labels it (accept or change) and was
    not undone, oldest first, read in pages as the caller consumes them: the feedback export. An escalation raises
    a ticket's priority for handling (POLICY §6); it says nothing about how the message should have been
    classified, so it is never a label."""
    c, d, later, withdrawal = ClassificationRow, DecisionRow, aliased(DecisionRow), aliased(DecisionRow)
    undone = select(withdrawal.replaces).where(withdrawal.decision == UNDO, withdrawal.replaces.is_not(None))
    superseded = exists().where(later.classification_id == d.classification_id, later.decision.in_(LABELLING),
                                or_(later.created_at > d.created_at,
                                    and_(later.created_at == d.created_at, later.id > d.id)),
                                later.id.not_in(undone))
    query = (select(c.id, c.channel, c.subject, c.body, d.priority, c.result["impact"].as_string(),
                    c.result["request_type"].as_string())
             .join(d, d.classification_id == c.id)
             .where(d.decision.in_(LABELLING), ~superseded, d.id.not_in(undone))
             .order_by(c.created_at.asc(), c.id)
             .execution_options(yield_per=1000))
    for row in session.execute(query):
        yield Labelled(*row)


def purge_bodies(*, session: Session, older_than_days: int) -> int:
    """Ley 1581 de 2012: drop subject and body (also inside the stored result's evidence, and the content hash that
    could confirm a guessed text) of messages older than the retention period; priorities, decisions and metrics
    stay. A purged message's id then matches no retry (409)."""
    cutoff = datetime.now(timezone.utc) - timedelta(days=older_than_days)
    rows = session.scalars(select(ClassificationRow).where(ClassificationRow.created_at < cutoff,
                                                           ClassificationRow.body_purged_at.is_(None))).all()
    now = datetime.now(timezone.utc)
    for row in rows:
        result = dict(row.result)
        for key in ("rules", "suppressed_rules"):
            result[key] = [{**hit, "evidence": []} for hit in result.get(key, [])]
        result["impact_evidence"] = None
        row.subject, row.body, row.body_purged_at, row.result, row.content_hash = None, None, now, result, None
    with typed_store_errors(session):
        session.commit()
    return len(rows)


class OpenTicket(NamedTuple):
    """A classification still at level 1, with what the escalation check reads (not the whole stored result)."""

    id: str
    message_id: str | None
    priority: str  # the current decision's, else the suggested one
    received_at: str  # as answered (ISO 8601 with the offset it arrived with)
    customer_id: str | None
    sender: str | None
    request_type: str | None


def open_tickets(*, session: Session, limit: int = 5000) -> list[OpenTicket]:
    """Classifications still at level 1 (no decision, or a current decision that kept them at N1, and not moved up
    by the escalation job), oldest first."""
    c, d = ClassificationRow, DecisionRow
    escalated = exists().where(EscalationRow.classification_id == c.id)
    query = (select(c.id, c.message_id, func.coalesce(d.priority, c.priority), c.result["received_at"].as_string(),
                    c.customer_id, c.sender, c.result["request_type"].as_string())
             .outerjoin(d, (d.classification_id == c.id) & d.current.is_(True))
             .where(or_(d.id.is_(None), d.level != "N2"), ~escalated)
             .order_by(c.received_at.asc(), c.id).limit(limit))
    return [OpenTicket(*row) for row in session.execute(query)]


def record_escalations(*, session: Session, rows: Sequence[Mapping]) -> list[str]:
    """Store escalations (``EscalationRow`` columns), skipping any ticket already escalated to that level, by this
    call or by another instance at the same moment (``INSERT … ON CONFLICT DO NOTHING`` on the unique pair); the
    classification ids this call escalated. The caller commits."""
    if not rows:
        return []
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as dialect_insert
    else:
        from sqlalchemy.dialects.sqlite import insert as dialect_insert
    statement = (dialect_insert(EscalationRow).on_conflict_do_nothing(index_elements=["classification_id", "level"])
                 .returning(EscalationRow.classification_id))
    with typed_store_errors(session):
        return list(session.scalars(statement, [dict(row) for row in rows]))


def _utc_week(column, dialect: str):
    """The Monday (UTC) that starts a timestamp's ISO week, in SQL. SQLite keeps the UTC wall time as text; six
    days back, then forward to the next Monday, lands on that Monday."""
    if dialect == "postgresql":
        return func.date(func.date_trunc("week", func.timezone("UTC", column)))
    return func.date(column, "-6 days", "weekday 1")


def quality(*, session: Session, weeks: int = 12) -> dict:
    """Per ISO week and suggested priority: classified, sent to review, reviewed, accepted, changed to what.

    The acceptance rate is the model's live precision as agents judge it. The database counts per week, suggested
    and final priority (one pass over ``ix_classifications_created_at``, which covers it); Python only names the
    weeks and shapes the cells.
    """
    c, d = ClassificationRow, DecisionRow
    since = datetime.now(timezone.utc) - timedelta(weeks=weeks)
    week = _utc_week(c.created_at, session.get_bind().dialect.name)
    counts = session.execute(
        select(week, c.priority, d.priority, func.count(), func.sum(case((c.needs_review.is_(True), 1), else_=0)))
        .outerjoin(d, (d.classification_id == c.id) & d.current.is_(True))
        .where(c.created_at >= since)
        .group_by(week, c.priority, d.priority)).all()
    table: dict[tuple[str, str], dict] = {}
    for monday, suggested, final, classified, review in counts:
        year, number, _ = (monday if isinstance(monday, date) else date.fromisoformat(monday)).isocalendar()
        name = f"{year}-W{number:02d}"
        cell = table.setdefault((name, suggested), {
            "week": name, "priority": suggested, "classified": 0, "sent_to_review": 0,
            "reviewed": 0, "accepted": 0, "changed_to": {}})
        cell["classified"] += classified
        cell["sent_to_review"] += int(review or 0)
        if final is not None:
            cell["reviewed"] += classified
            if final == suggested:
                cell["accepted"] += classified
            else:
                cell["changed_to"][final] = cell["changed_to"].get(final, 0) + classified
    out = []
    for cell in sorted(table.values(), key=lambda c: (c["week"], c["priority"])):
        cell["acceptance_rate"] = round(cell["accepted"] / cell["reviewed"], 4) if cell["reviewed"] else None
        cell["review_share"] = round(cell["sent_to_review"] / cell["classified"], 4)
        out.append(cell)
    return {"weeks": weeks, "rows": out}
