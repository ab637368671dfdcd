"""The review console's reads: the queue with its filters, search, orders and counts, and the waiting count.

A message's priority here is its current one (the agent's current decision, else the suggestion). Its response
deadline is the SLA engine's, counted now from the original arrival (``ResponseClock``); the store keeps no
deadline column, so "overdue" and "closest to breach" are answered from ``received_at`` and the priority: a
response deadline only moves later as the arrival does, so each priority has one arrival instant before which its
deadline has passed.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Literal

from sqlalchemy import Select, and_, case, false, func, not_, or_, select
from sqlalchemy.orm import Session

from classifier.calendar import parse_instant
from classifier.policy import PRIORITIES
from classifier.store.tables import ClassificationRow, DecisionRow

if TYPE_CHECKING:  # the console builds the clock from the SLA engine; the store does not import it at run time
    from classifier.customers import Customer
    from classifier.sla import SlaEngine

State = Literal["waiting", "decided", "all"]
Order = Literal["oldest", "least_confident", "closest_to_breach"]
STATES: tuple[str, ...] = ("waiting", "decided", "all")
ORDERS: tuple[str, ...] = ("oldest", "least_confident", "closest_to_breach")
MAX_SEARCH_TERMS = 5
_LOOKBACK = timedelta(days=120)  # an arrival this old has passed any response time of the policy (now 3 days at most)


@dataclass(frozen=True, slots=True)
class CustomerMatch:
    """A customer as the store can find its messages: its id and its e-mail domains.

    A message belongs to the customer the classifier attributed it to on arrival (``result.customer.id``); the
    id or a domain in the sender narrows the rows first, so that JSON is read only for those."""

    id: str
    domains: tuple[str, ...] = ()

    @classmethod
    def of(cls, customer: Customer) -> "CustomerMatch":
        return cls(customer.id, tuple(d.lower() for d in customer.domains))


@dataclass(frozen=True)
class ResponseClock:
    """Response deadlines as the SLA engine counts them, at the moment ``now``.

    ``due(priority, arrival)`` is the response deadline of a message of a customer with committed times;
    ``without_deadline`` are the customers whose messages have none now (in arrears)."""

    now: datetime
    due: Callable[[str, datetime], datetime]
    without_deadline: tuple[CustomerMatch, ...] = ()
    _boundaries: dict[str, datetime] = field(default_factory=dict, repr=False)

    def boundary(self, priority: str) -> datetime:
        """The first arrival whose response deadline has not passed at ``now``: every earlier one is overdue.

        A bisection to the microsecond (deadlines only move later with the arrival), from ``_LOOKBACK`` back or
        further if the policy's response times are that long."""
        if priority not in self._boundaries:
            lo, hi = self.now - _LOOKBACK, self.now  # due(lo) < now <= due(hi)
            while self.due(priority, lo) >= self.now:
                lo, hi = lo - (hi - lo), lo
            while hi - lo > timedelta(microseconds=1):
                mid = lo + (hi - lo) / 2
                if self.due(priority, mid) < self.now:
                    lo = mid
                else:
                    hi = mid
            self._boundaries[priority] = hi
        return self._boundaries[priority]


def response_clock(sla: SlaEngine, now: datetime) -> ResponseClock:
    """The clock of the SLA engine's policy, calendar and customer book at ``now`` (tz-aware)."""
    def due(priority: str, arrival: datetime) -> datetime:
        deadline = sla.deadlines(priority, arrival).response_due
        assert deadline is not None  # no customer given: the table's times always apply
        return deadline

    arrears = tuple(CustomerMatch.of(c) for c in sla.customers.customers if c.in_arrears)
    return ResponseClock(now.astimezone(sla.calendar.tz), due, arrears)


@dataclass(frozen=True, slots=True)
class QueueFilter:
    """What the agent asked to see. ``priority`` is the current priority; ``overdue`` None means either."""

    state: State = "waiting"
    needs_review: bool | None = True
    priority: str | None = None
    channel: str | None = None
    customer: CustomerMatch | None = None
    overdue: bool | None = None
    search: tuple[str, ...] = ()
    order: Order = "oldest"

    @staticmethod
    def terms(text: str | None) -> tuple[str, ...]:
        """The words of a search box: each must appear in the subject, the body or the sender."""
        return tuple(dict.fromkeys(w for w in (text or "").split() if w))[:MAX_SEARCH_TERMS]


@dataclass(frozen=True, slots=True)
class QueueRow:
    classification: ClassificationRow
    decision: DecisionRow | None  # the current decision, if any


@dataclass(frozen=True, slots=True)
class QueuePage:
    rows: list[QueueRow]
    total: int


def _current_ids():
    return select(DecisionRow.classification_id).where(DecisionRow.current.is_(True))


def _contains(column, text: str, dialect: str):
    """``column`` holds ``text``, case aside: LIKE with the pattern built once (no concatenation per row). SQLite's
    LIKE ignores ASCII case, as its lower() would; PostgreSQL needs ILIKE."""
    pattern = "%" + text.replace("/", "//").replace("%", "/%").replace("_", "/_") + "%"
    return column.like(pattern, escape="/") if dialect == "sqlite" else column.ilike(pattern, escape="/")


def _attributed(customer: CustomerMatch, dialect: str):
    """Messages the classifier attributed to ``customer``: narrowed by the id or a domain in the sender (plain
    columns, never NULL), then checked against the stored attribution."""
    c = ClassificationRow
    sender = func.coalesce(c.sender, "")
    narrowed = or_(func.coalesce(c.customer_id, "") == customer.id,
                   *(_contains(sender, domain, dialect) for domain in customer.domains))
    return and_(narrowed, func.coalesce(c.result[("customer", "id")].as_string(), "") == customer.id)


def _base(filters: QueueFilter, clock: ResponseClock | None, dialect: str) -> tuple[Select, object, list]:
    """The FROM clause for the state, the current-priority expression, and the WHERE conditions."""
    c, d = ClassificationRow, DecisionRow
    query = select(c.id)
    where: list = []
    if filters.state == "waiting":
        where.append(c.id.not_in(_current_ids()))
        priority = c.priority
    else:
        query = query.outerjoin(d, (d.classification_id == c.id) & d.current.is_(True))
        priority = func.coalesce(d.priority, c.priority)
        if filters.state == "decided":
            where.append(d.id.is_not(None))
    if filters.needs_review is not None:
        where.append(c.needs_review.is_(filters.needs_review))
    if filters.priority is not None:
        where.append(priority == filters.priority)
    if filters.channel is not None:
        where.append(c.channel == filters.channel)
    for term in filters.search:
        where.append(or_(*(_contains(column, term, dialect) for column in (c.subject, c.body, c.sender))))
    if filters.customer is not None:
        where.append(_attributed(filters.customer, dialect))
    if filters.overdue is not None:
        if clock is None:
            raise ValueError("the overdue filter needs a ResponseClock")
        overdue = _overdue(priority, clock, dialect)
        where.append(overdue if filters.overdue else not_(overdue))
    return query, priority, where


def _without_deadline(clock: ResponseClock, dialect: str):
    """Messages of customers without committed times now (never overdue, last when ordered by deadline)."""
    if not clock.without_deadline:
        return None
    return or_(*(_attributed(customer, dialect) for customer in clock.without_deadline))


def _overdue(priority, clock: ResponseClock, dialect: str):
    """Response deadline passed: arrival before its priority's boundary, for a customer with committed times.

    One CASE of comparisons over the priority, read from each row in one pass: written as ``received_at <
    CASE …`` (or as an OR of ranges), SQLite would walk the received-at index and fetch every row out of order."""
    c = ClassificationRow
    late = case({p: c.received_at < clock.boundary(p) for p in PRIORITIES}, value=priority, else_=false())
    exempt = _without_deadline(clock, dialect)
    return late if exempt is None else and_(late, not_(exempt))


def queue_page(*, session: Session, filters: QueueFilter, clock: ResponseClock | None, limit: int, offset: int
               ) -> QueuePage:
    """One page of the queue and how many messages match.

    ``oldest`` and ``least_confident`` are orders of indexed columns; ``closest_to_breach`` merges one stream per
    priority (each already in deadline order, by arrival) and puts customers without a deadline last."""
    c, d = ClassificationRow, DecisionRow
    dialect = session.get_bind().dialect.name
    query, priority, where = _base(filters, clock, dialect)
    if filters.order == "closest_to_breach":
        if clock is None:
            raise ValueError("ordering by deadline needs a ResponseClock")
        total = _count(session, query, where)
        ids = (_by_deadline(session, query, priority, where, clock, limit, offset, filters.overdue, dialect)
               if offset < total else [])
    else:  # the page and the count in one pass over the matching rows
        order_by = ((c.confidence.asc(), c.received_at.asc(), c.id) if filters.order == "least_confident"
                    else (c.received_at.asc(), c.id))
        found = session.execute(query.add_columns(func.count().over()).where(*where).order_by(*order_by)
                                .limit(limit).offset(offset)).all()
        ids = [i for i, _ in found]
        total = found[0][1] if found else (_count(session, query, where) if offset else 0)
    rows = {row.id: row for row in session.scalars(select(c).where(c.id.in_(ids)))} if ids else {}
    decisions = {row.classification_id: row for row in session.scalars(
        select(d).where(d.classification_id.in_(ids), d.current.is_(True)))} if ids else {}
    return QueuePage([QueueRow(rows[i], decisions.get(i)) for i in ids if i in rows], total)


def _count(session: Session, query: Select, where: list) -> int:
    return int(session.scalar(query.with_only_columns(func.count(ClassificationRow.id)).where(*where)) or 0)


def _by_deadline(session: Session, query: Select, priority, where: list, clock: ResponseClock, limit: int,
                 offset: int, overdue: bool | None, dialect: str) -> list[str]:
    """Ids of one page by response deadline (then arrival and id). Within one priority the deadline follows the
    arrival, so the first ``offset + limit`` of each priority's stream, merged, hold the page."""
    c = ClassificationRow
    wanted = offset + limit
    arrival = c.result["received_at"].as_string()
    exempt = _without_deadline(clock, dialect)
    streams: list[list[tuple[datetime, datetime, str]]] = []
    for p in PRIORITIES:
        conditions = [*where, priority == p] + ([not_(exempt)] if exempt is not None else [])
        if overdue is not None:  # the same filter as a range of arrivals: the index walk starts or stops there
            conditions.append(c.received_at < clock.boundary(p) if overdue else c.received_at >= clock.boundary(p))
        rows = session.execute(query.with_only_columns(c.id, arrival).where(*conditions)
                               .order_by(c.received_at.asc(), c.id).limit(wanted)).all()
        streams.append([(clock.due(p, parse_instant(at)), parse_instant(at), i) for i, at in rows])
    ordered = [i for _, _, i in heapq.merge(*streams)][:wanted]
    if exempt is not None and len(ordered) < wanted:
        ordered += list(session.scalars(query.where(*where, exempt).order_by(c.received_at.asc(), c.id)
                                        .limit(wanted - len(ordered))))
    return ordered[offset:wanted]


@dataclass(frozen=True, slots=True)
class Waiting:
    total: int  # without a current decision
    needs_review: int  # of them, sent to review by the classifier
    new: int  # of them, classified after the ``since`` asked for


def waiting_counts(*, session: Session, since: datetime | None = None) -> Waiting:
    """What is waiting: one pass over the received-at index (which holds ``needs_review``), and with ``since`` a
    range of the created-at index for the messages classified since then."""
    c = ClassificationRow
    total, review = session.execute(
        select(func.count(c.id), func.sum(case((c.needs_review.is_(True), 1), else_=0)))
        .where(c.id.not_in(_current_ids()))).one()
    new = 0
    if since is not None:  # stored in UTC (SQLite keeps the UTC wall time)
        new = session.scalar(select(func.count(c.id)).where(c.created_at > since.astimezone(timezone.utc),
                                                            c.id.not_in(_current_ids())))
    return Waiting(int(total or 0), int(review or 0), int(new or 0))

