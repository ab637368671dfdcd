"""The review console's queue: every filter, search and order in SQL equals a plain loop over every row with the SLA
engine (SQLite and PostgreSQL); "overdue" by arrival boundaries equals the deadlines; undo within the minute, only by
its agent, restores the queue and keeps the withdrawn decision out of the export; the live waiting count."""

from __future__ import annotations

import itertools
import json
import random
from datetime import datetime, timedelta, timezone

import pytest
from uuid6 import uuid7

from api.routes.page import ConsoleQuery, business_span, time_left
from classifier.ack import colombian
from classifier.calendar import parse_instant
from classifier.policy import PRIORITIES
from classifier.store.db import engine_for, sessions, upgrade
from classifier.store.repository import UndoRefused, labelled, record_decision, undo_decision
from classifier.store.review_queue import CustomerMatch, QueueFilter, queue_page, response_clock
from classifier.store.tables import ClassificationRow, DecisionRow
from tests.api.conftest import KEY
from tests.api.routes.test_review import MESSAGES
from tests.conftest import BOGOTA, at

H = {"x-api-key": KEY}
SENDERS = ["coordinacion@sanmartin.edu.co", "Rectoría <rectoria@glandes.edu.co>", "ana@sede.gimnasiolosandes.edu.co",
           "compras@eltornillo.com.co", "alguien@otro-dominio.com", None]
BODIES = ["La PLATAFORMA no carga", "la plataforma está caída", "al 50% de los usuarios les falla",
          "500 usuarios sin acceso", "sale error_de promedio", "hola", "Consulta sobre nómina"]


def _fill(url: str, engine, now: datetime, seed: int = 7, rows: int = 240) -> None:
    """Rows over the last 12 days (some a minute old: never overdue), customers attributed as the classifier does,
    and decisions: current ones, replaced ones and undone ones."""
    rng = random.Random(seed)
    classifications, decisions = [], []
    for i in range(rows):
        arrival = now - (timedelta(minutes=rng.randrange(1, 5)) if i % 9 == 0
                         else timedelta(seconds=rng.randrange(0, 12 * 86400)))
        sender = rng.choice(SENDERS)
        customer_id = "liceo-pereira" if i % 23 == 0 else None  # given by the gateway, wins over the sender
        found = engine.customers.find(customer_id=customer_id, sender=sender)
        row_id = str(uuid7())
        priority = rng.choice(PRIORITIES)
        classifications.append(dict(
            id=row_id, message_id=f"q-{i}", channel=rng.choice(("chat", "email")), subject=rng.choice(("", "Asunto")),
            body=f"{rng.choice(BODIES)} {i}", sender=sender, customer_id=customer_id, received_at=arrival,
            created_at=now - timedelta(minutes=rows - i), priority=priority, source="model",
            confidence=round(rng.random(), 2), needs_review=rng.random() < 0.5, model_priority=priority,
            model_version="t", version=1,
            result={"received_at": arrival.isoformat(), "request_type": "consulta", "level": "N1",
                    "customer": {"id": found.id if found else customer_id, "known": found is not None}}))
        kind = rng.choice(("none", "none", "current", "replaced", "undone"))
        made = now - timedelta(minutes=30)
        if kind in ("current", "replaced", "undone"):
            first = dict(id=str(uuid7()), classification_id=row_id, agent="laura", decision="change",
                         priority=rng.choice(PRIORITIES), suggested_priority=priority, level="N1", reason="x",
                         replaces=None, current=kind == "current", created_at=made)
            decisions.append(first)
            if kind == "replaced":
                decisions.append(dict(first, id=str(uuid7()), decision="escalate", priority=rng.choice(PRIORITIES),
                                      level="N2", replaces=first["id"], current=True,
                                      created_at=made + timedelta(minutes=1)))
            if kind == "undone":
                decisions.append(dict(first, id=str(uuid7()), decision="undo", replaces=first["id"], current=False,
                                      created_at=made + timedelta(seconds=20)))
    with engine_for(url).begin() as conn:
        conn.execute(ClassificationRow.__table__.insert(), classifications)
        conn.execute(DecisionRow.__table__.insert(), decisions)


def _reference(session, engine, filters: QueueFilter, now: datetime) -> list[str]:
    """The queue as a loop over every row, with the SLA engine's deadlines counted now."""
    current = {d.classification_id: d for d in session.query(DecisionRow).filter(DecisionRow.current.is_(True))}
    kept = []
    for row in session.query(ClassificationRow):
        decision = current.get(row.id)
        if (filters.state == "waiting" and decision) or (filters.state == "decided" and not decision):
            continue
        priority = decision.priority if decision else row.priority
        arrival = parse_instant(row.result["received_at"])
        customer = row.result["customer"]["id"]
        due = engine.sla.deadlines(priority, arrival, customer_id=customer).response_due
        texts = [(row.subject or "").lower(), (row.body or "").lower(), (row.sender or "").lower()]
        if ((filters.needs_review is not None and row.needs_review != filters.needs_review)
                or (filters.priority and priority != filters.priority)
                or (filters.channel and row.channel != filters.channel)
                or any(not any(t.lower() in x for x in texts) for t in filters.search)
                or (filters.customer and customer != filters.customer.id)
                or (filters.overdue is not None and (due is not None and due < now) != filters.overdue)):
            continue
        kept.append((row, arrival, due))
    if filters.order == "closest_to_breach":
        committed = sorted((k for k in kept if k[2] is not None), key=lambda k: (k[2], k[1], k[0].id))
        return [k[0].id for k in committed] + [k[0].id for k in sorted((k for k in kept if k[2] is None),
                                                                       key=lambda k: (k[1], k[0].id))]
    if filters.order == "least_confident":
        return [k[0].id for k in sorted(kept, key=lambda k: (k[0].confidence, k[1], k[0].id))]
    return [k[0].id for k in sorted(kept, key=lambda k: (k[1], k[0].id))]


def test_the_queue_in_sql_equals_a_loop_over_every_row(database_url, engine):
    upgrade(database_url)
    now = datetime.now(BOGOTA)
    _fill(database_url, engine, now)
    clock = response_clock(engine.sla, now)
    san_martin = CustomerMatch.of(engine.customers.by_id("col-san-martin"))
    andes = CustomerMatch.of(engine.customers.by_id("gimnasio-los-andes"))
    cases = [QueueFilter(state=s, needs_review=r, order=o)
             for s, r, o in itertools.product(("waiting", "decided", "all"), (True, None),
                                              ("oldest", "least_confident", "closest_to_breach"))]
    cases += [QueueFilter(needs_review=None, overdue=True), QueueFilter(needs_review=None, overdue=False),
              QueueFilter(state="all", needs_review=None, overdue=False, order="closest_to_breach"),
              QueueFilter(state="decided", needs_review=None, priority="alta", overdue=True),
              QueueFilter(state="all", needs_review=None, priority="muy_baja", channel="chat"),
              QueueFilter(needs_review=None, customer=san_martin), QueueFilter(state="all", customer=andes),
              QueueFilter(state="all", needs_review=None, customer=CustomerMatch("liceo-pereira",
                                                                                 ("liceomodernopereira.edu.co",))),
              QueueFilter(state="all", needs_review=None, search=QueueFilter.terms("plataforma")),
              QueueFilter(state="all", needs_review=None, search=QueueFilter.terms("50%")),
              QueueFilter(state="all", needs_review=None, search=QueueFilter.terms("error_de")),
              QueueFilter(state="all", needs_review=None, search=QueueFilter.terms("GLANDES asunto"),
                          order="closest_to_breach")]
    nonempty = 0
    with sessions(database_url)() as session:
        for filters in cases:
            expected = _reference(session, engine, filters, clock.now)
            nonempty += bool(expected)
            for offset in (0, 7, max(len(expected) - 3, 0)):
                page = queue_page(session=session, filters=filters, clock=clock, limit=10, offset=offset)
                assert page.total == len(expected), filters
                assert [r.classification.id for r in page.rows] == expected[offset:offset + 10], (filters, offset)
                assert all((r.decision is None) == (filters.state == "waiting") for r in page.rows
                           if filters.state != "all")
    assert nonempty >= len(cases) - 1  # the cases select something (one search may find nothing by chance)


def test_overdue_is_an_arrival_boundary_per_priority(engine):
    """A response deadline only moves later with the arrival: before the boundary every arrival is overdue now."""
    rng = random.Random(3)
    for now in (at("2026-11-30 07:30"), at("2026-12-05 11:00"), at("2026-12-07 16:59"), at("2027-01-12 08:00")):
        clock = response_clock(engine.sla, now)
        for priority in PRIORITIES:
            edge = clock.boundary(priority)
            around = [edge, edge - timedelta(microseconds=1), edge + timedelta(microseconds=1)]
            around += [now - timedelta(seconds=rng.randrange(0, 20 * 86400)) for _ in range(40)]
            for arrival in around:
                due = engine.sla.deadlines(priority, arrival).response_due
                assert (arrival < edge) == (due < now), (now, priority, arrival, due)


def test_time_left_says_its_state_in_words(calendar):
    arrival = at("2026-11-25 09:00")  # 4 business hours: 09:00-12:00 and 14:00-15:00
    due = calendar.add(arrival, timedelta(hours=4)).due
    assert time_left(calendar, arrival, due, at("2026-11-25 09:30")).state == "ok"
    warn = time_left(calendar, arrival, due, due - timedelta(minutes=30))
    assert (warn.state, warn.label, warn.detail) == ("warn", "Por vencer", "quedan 30 min hábiles (menos del 25 %)")
    late = time_left(calendar, arrival, due, at("2026-11-26 09:00"))
    assert (late.state, late.label) == ("late", "Vencido") and late.detail == "hace 4 h hábiles"
    assert time_left(calendar, arrival, None, arrival).state == "none"
    assert business_span(timedelta(hours=19, minutes=5)) == "2 días 3 h"
    assert colombian(at("2026-12-04 09:06"), short=True) == "vie 4 dic 2026, 9:06 a. m."


def test_an_unknown_value_in_the_console_address_falls_back_to_the_default():
    query = ConsoleQuery.parse({"state": "x", "order": "closest_to_breach", "priority": "urgente", "page": "-3",
                                "customer": "col-san-martin", "q": "caída"}, {"col-san-martin"})
    assert (query.state, query.order, query.priority, query.page, query.customer) == (
        "waiting", "closest_to_breach", "", 1, "col-san-martin")
    assert query.active == 2  # the customer and the search
    assert query.url(page=2) == "/review?customer=col-san-martin&q=ca%C3%ADda&order=closest_to_breach&page=2"


# --------------------------------------------------------------------------------------------------- undo


def _decided(session, agent: str = "laura", decision: str = "change", replaces: bool = False):
    row = session.get(ClassificationRow, session.query(ClassificationRow.id).first()[0])
    made, _ = record_decision(session=session, classification=row, agent=agent, decision=decision,
                              priority=row.priority if decision == "accept" else "baja", level="N1", reason="x",
                              replaces=replaces)
    return row, made


def test_undo_only_by_its_agent_within_the_window_and_never_exported(database_url, engine):
    upgrade(database_url)
    now = datetime.now(BOGOTA)
    _fill(database_url, engine, now, rows=3)
    with sessions(database_url)() as session:
        with engine_for(database_url).begin() as conn:  # start from a message without decisions
            conn.execute(DecisionRow.__table__.delete())
        row, first = _decided(session, decision="accept")
        row, second = _decided(session, agent="pedro", replaces=True)
        assert [x.label for x in labelled(session=session) if x.id == row.id] == ["baja"]
        with pytest.raises(UndoRefused) as refused:
            undo_decision(session=session, decision_id=second.id, agent="laura", within=timedelta(minutes=1))
        assert refused.value.reason == "agent"
        with pytest.raises(UndoRefused) as refused:
            undo_decision(session=session, decision_id=second.id, agent="pedro", within=timedelta(minutes=1),
                          now=datetime.now(timezone.utc) + timedelta(seconds=61))
        assert refused.value.reason == "expired"
        with pytest.raises(UndoRefused) as refused:
            undo_decision(session=session, decision_id=first.id, agent="laura", within=timedelta(minutes=1))
        assert refused.value.reason == "superseded"
        undone, restored = undo_decision(session=session, decision_id=second.id, agent="pedro",
                                         within=timedelta(minutes=1))
        assert restored.id == first.id and restored.current
        assert [x.label for x in labelled(session=session) if x.id == row.id] == [row.priority]  # laura's accept
        _, restored = undo_decision(session=session, decision_id=first.id, agent="laura",
                                    within=timedelta(minutes=1))
        assert restored is None
        assert row.id not in {x.id for x in labelled(session=session)}  # both withdrawn: no label
        waiting = queue_page(session=session, filters=QueueFilter(needs_review=None), clock=None, limit=10, offset=0)
        assert row.id in {r.classification.id for r in waiting.rows}  # back in the queue
        trail = session.query(DecisionRow).filter(DecisionRow.classification_id == row.id).all()
        assert sorted(d.decision for d in trail) == ["accept", "change", "undo", "undo"]
        assert not any(d.current for d in trail)


def test_undo_over_http(client):
    ids = [client.post("/v1/classify", json=m).json()["classification_id"] for m in MESSAGES]
    before = client.get("/v1/review/waiting", headers=H).json()
    made = client.post("/v1/feedback", headers=H, json={"classification_id": ids[0], "agent": "laura",
                                                       "decision": "change", "priority": "baja", "reason": "x"}).json()
    assert parse_instant(made["undo_until"]) - parse_instant(made["created_at"]) == timedelta(minutes=1)
    assert client.get("/v1/review/waiting", headers=H).json()["waiting"] == before["waiting"] - 1
    other = client.post(f"/v1/feedback/{made['decision_id']}/undo", headers=H, json={"agent": "pedro"})
    assert other.status_code == 403 and other.json()["error"]["code"] == "agent_mismatch"
    undone = client.post(f"/v1/feedback/{made['decision_id']}/undo", headers=H, json={"agent": "laura"})
    assert undone.status_code == 200 and undone.json() == {"undone_decision_id": made["decision_id"],
                                                           "classification_id": ids[0], "current": None}
    again = client.post(f"/v1/feedback/{made['decision_id']}/undo", headers=H, json={"agent": "laura"})
    assert again.status_code == 409 and again.json()["error"]["code"] == "decision_superseded"
    assert client.post("/v1/feedback/nada/undo", headers=H, json={"agent": "laura"}).status_code == 404
    assert client.get("/v1/review/waiting", headers=H).json()["waiting"] == before["waiting"]
    assert client.get("/v1/feedback/export", headers=H).text == ""  # the undone change is no label


def test_escalation_raises_the_current_priority_and_the_json_queue_filters(client):
    ids = [client.post("/v1/classify", json=m).json()["classification_id"] for m in MESSAGES]
    client.post("/v1/feedback", headers=H, json={"classification_id": ids[1], "agent": "laura",
                                                 "decision": "change", "priority": "baja", "reason": "x"})
    escalated = client.post("/v1/feedback", headers=H, json={"classification_id": ids[1], "agent": "laura",
                                                             "decision": "escalate", "replaces": True}).json()
    assert escalated["priority"] == "media" and escalated["level"] == "N2"  # one step above the agent's baja
    decided = client.get("/v1/review", headers=H, params={"state": "decided", "needs_review": "all"}).json()
    assert [i["classification_id"] for i in decided["items"]] == [ids[1]]
    assert decided["items"][0]["decision"]["decision"] == "escalate"
    found = client.get("/v1/review", headers=H, params={"needs_review": "all", "q": "PLATAFORMA"}).json()
    assert [i["classification_id"] for i in found["items"]] == [ids[2]]
    assert client.get("/v1/review", headers=H, params={"order": "newest"}).status_code == 422
    since = datetime.now(timezone.utc).isoformat()
    client.post("/v1/classify", json={"id": "r-4", "channel": "chat", "body": "hola otra vez",
                                      "received_at": "2026-11-26T10:00:00-05:00"})
    counts = client.get("/v1/review/waiting", headers=H, params={"since": since}).json()
    assert counts["new"] == 1 and counts["waiting"] == 3
    assert client.get("/v1/review/waiting", headers=H, params={"since": "2026-11-26T10:00:00"}).status_code == 422


def test_the_console_and_the_quality_panel_render_for_a_key(client):
    ten_days_ago = (datetime.now(BOGOTA) - timedelta(days=10)).isoformat()
    for m in MESSAGES:
        client.post("/v1/classify", json={**m, "received_at": ten_days_ago})
    page = client.get("/review", headers=H, params={"needs_review": "all", "order": "closest_to_breach"})
    assert page.status_code == 200 and page.text.count('class="item ') == 3
    assert "Vencido" in page.text and "ya vencido" in page.text  # deadlines long past
    quality_page = client.get("/review/quality", headers=H)
    assert quality_page.status_code == 200 and "<svg" in quality_page.text
    assert json.loads(quality_page.text.split('id="consola-datos"', 1)[1].split(">", 1)[1].split("</script>")[0])[
        "names"]["muy_alta"] == "Muy alta"
