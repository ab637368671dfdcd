"""The agents' review console (server-rendered, Spanish), behind a login form that opens a session kept in the store.

``/review`` is the queue with its filters, search, orders and pages; ``/review/quality`` the quality panel. Each
message shows its customer, sender, channel, arrival, business time left (counted now, from the original arrival,
with its current priority), why it is in review, the evidence, the rules' and the model's views, and the impact.
Decisions go to the JSON API (``/v1/feedback``, its undo, ``/v1/review/waiting`` for the live count) from a
small inline script. Pages carry a Content-Security-Policy with a per-response nonce: only our own inline style and
script run.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass, replace
from datetime import datetime, timedelta, timezone
from pathlib import Path
from urllib.parse import parse_qs, urlencode

from babel.numbers import format_decimal
from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from markupsafe import Markup, escape

from api.chart import NARROW, summarise, svg, week_label
from api.deps import ApiError, ClassifierDep, Principal, SessionDep, SettingsDep, authorize, report_turn
from api.keys import keyring
from api.routes.review import customer_match, tri_state, undo_window
from api.session import COOKIE, CSRF_FIELD, close_session, csrf_valid, find_session, open_session
from classifier.ack import LOCALE, colombian
from classifier.calendar import BUSINESS_DAY_HOURS, BusinessCalendar, parse_instant
from classifier.config import PolicyEngine
from classifier.pipeline import Classifier
from classifier.policy import DECISION_ORDER, PRIORITIES
from classifier.store.repository import quality
from classifier.store.review_queue import ORDERS, STATES, QueueFilter, QueuePage, QueueRow, queue_page, response_clock
from classifier.store.sessions import login_blocked_for, record_login_failure

router = APIRouter(tags=["revisión"], include_in_schema=False)
TEMPLATES = Jinja2Templates(directory=str(Path(__file__).resolve().parent.parent / "templates"))
TEMPLATES.env.filters["num"] = lambda n: format_decimal(n, locale=LOCALE)
PAGE_CSP = ("default-src 'none'; script-src 'nonce-{nonce}'; style-src 'nonce-{nonce}'; connect-src 'self'; "
            "img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
PAGE_SIZE = 25
WARN_SHARE = 0.25  # under this share of its business time left, a deadline is about to pass

# Words the console shows for the store's codes (agents read Spanish only).
CHANNELS = {"email": "Correo", "chat": "Chat"}
SOURCES = {"rule": "las reglas", "model": "el modelo", "default": "la prioridad por defecto"}
DECISIONS = {"accept": "Aceptada", "change": "Cambiada", "escalate": "Escalada"}
IMPACTS = {"un_usuario": "Un usuario", "grupo_menor_20": "Un grupo (menos del 20 % de los usuarios)",
           "grupo_20_o_mas": "Un grupo (20 % o más de los usuarios)", "varios_clientes": "Varios clientes",
           "desconocido": "Sin determinar"}
STATE_NAMES = {"waiting": "Sin decisión", "decided": "Con decisión", "all": "Todos"}
ORDER_NAMES = {"oldest": "Más antiguos primero", "least_confident": "Menor confianza primero",
               "closest_to_breach": "Más cerca de vencer"}
REVIEW_NAMES = {"true": "Enviados a revisión", "false": "No enviados a revisión", "all": "Todos"}
OVERDUE_NAMES = {"all": "Todos", "true": "Respuesta vencida", "false": "Respuesta a tiempo"}
_LABEL_WORDS = re.compile(r"\b(" + "|".join(sorted(PRIORITIES, key=len, reverse=True)) + r")\b")


def render(request: Request, template: str, context: dict, status: int = 200,
           headers: dict[str, str] | None = None) -> Response:
    """A page with its own nonce: the template marks its <style> and <script> with it, the CSP allows only it."""
    nonce = secrets.token_urlsafe(16)
    company = request.app.state.classifier.policy_engine.policy.company.short_name  # the page title names it
    return TEMPLATES.TemplateResponse(request, template, {**context, "nonce": nonce, "company": company},
                                      status_code=status,
                                      headers={"content-security-policy": PAGE_CSP.format(nonce=nonce),
                                               **(headers or {})})


def _login_form(request: Request, error: str | None, target: str, status: int,
                headers: dict[str, str] | None = None) -> Response:
    return render(request, "login.html", {"error": error, "next": target}, status, headers)


def highlight(text: str, spans: list[tuple[int, int]]) -> Markup:
    """The text, escaped, with the evidence spans inside <mark>."""
    out, pos = [], 0
    for start, end in sorted(spans):
        if start < pos or end > len(text):
            continue
        out.append(escape(text[pos:start]))
        out.append(Markup("<mark>") + escape(text[start:end]) + Markup("</mark>"))
        pos = end
    out.append(escape(text[pos:]))
    return Markup("").join(out)


# ------------------------------------------------------------------------------------------- business time


def business_span(amount: timedelta) -> str:
    """Business time in words: '45 min', '3 h 20 min', '2 días 1 h' (a business day is 8 hours, POLICY §3)."""
    minutes = max(int(amount.total_seconds() // 60), 0)
    days, rest = divmod(minutes, BUSINESS_DAY_HOURS * 60)
    hours, mins = divmod(rest, 60)
    parts = ([f"{days} día" + ("s" if days != 1 else "")] if days else []) + ([f"{hours} h"] if hours else [])
    if mins and not days:
        parts.append(f"{mins} min")
    return " ".join(parts) or "menos de 1 min"


@dataclass(frozen=True, slots=True)
class TimeLeft:
    """A deadline as the console shows it: its date, a state said in words (never by colour alone) and detail."""

    state: str  # "ok" | "warn" | "late" | "none"
    label: str
    due: str
    detail: str


def time_left(calendar: BusinessCalendar, start: datetime, due: datetime | None, now: datetime) -> TimeLeft:
    """Business time left until ``due``: on time, under a quarter of it left, or overdue (and for how long)."""
    if due is None:
        return TimeLeft("none", "Sin plazo", "—", "sin plazo comprometido")
    if now >= due:
        late = calendar.between(due, now)
        detail = (f"hace {business_span(late)} hábiles" if late >= timedelta(minutes=1)
                  else "fuera del horario hábil")
        return TimeLeft("late", "Vencido", colombian(due, short=True), detail)
    left, total = calendar.between(now, due), calendar.between(start, due)
    detail = f"quedan {business_span(left)} hábiles"
    if total > timedelta(0) and left / total < WARN_SHARE:
        return TimeLeft("warn", "Por vencer", colombian(due, short=True), detail + " (menos del 25 %)")
    return TimeLeft("ok", "A tiempo", colombian(due, short=True), detail)


# ------------------------------------------------------------------------------------------- one message


def in_words(text: str, engine: PolicyEngine) -> str:
    """A stored review reason with the priority codes as agents read them ('muy_alta' → 'muy alta')."""
    return _LABEL_WORDS.sub(lambda m: engine.policy.priority(m.group(1)).name.lower(), text)


def _percent(value: float | None) -> str:
    return "—" if value is None else f"{value * 100:.0f} %"


def _utc(moment: datetime) -> datetime:
    """A stored instant, aware (SQLite hands back UTC wall time without its zone)."""
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def message_view(row: QueueRow, engine: PolicyEngine, now: datetime, agent: str, undo: timedelta) -> dict:
    """Everything the console shows of one message, in Spanish, with deadlines counted now."""
    c, decision = row.classification, row.decision
    result = c.result
    policy, calendar = engine.policy, engine.calendar
    priority = decision.priority if decision else c.priority
    level = decision.level if decision else result.get("level") or policy.support.first_level
    arrival = parse_instant(result["received_at"])
    customer = result.get("customer") or {}
    sla = engine.sla.deadlines(priority, arrival, customer_id=customer.get("id"),
                               request_type=result.get("request_type"), level=level)
    known = engine.customers.by_id(customer["id"]) if customer.get("id") else None
    handled = result.get("handled_by") or {}
    raised = policy.raised(priority)
    escalated = engine.sla.deadlines(raised, arrival, customer_id=customer.get("id"),
                                     request_type=result.get("request_type"),
                                     level=policy.support.escalation_level)

    spans: dict[str, list[tuple[int, int]]] = {"subject": [], "body": []}
    rules = []
    for hit in result.get("rules", []):
        for ev in hit.get("evidence", []):
            spans.setdefault(ev["field"], []).append((ev["start"], ev["end"]))
        rules.append({"description": hit["description"], "priority_name": policy.priority(hit["priority"]).name,
                      "decisive": hit.get("decisive", False),
                      "evidence": [ev["text"] for ev in hit.get("evidence", [])]})
    decisive = [hit["priority"] for hit in result.get("rules", []) if hit.get("decisive")]
    rules_priority = min(decisive, key=DECISION_ORDER.index) if decisive else None
    model_priority = result.get("model_priority")
    made = _utc(decision.created_at) if decision is not None else None
    undo_until = None  # the agent's own decision, still within its minute: the page offers to undo it
    if decision is not None and made is not None and decision.agent == agent and now - made < undo:
        undo_until = (made + undo).isoformat()
    return {
        "id": c.id,
        "priority": priority,
        "priority_name": policy.priority(priority).name,
        "suggested_name": policy.priority(c.priority).name,
        "confidence": _percent(c.confidence),
        "source": SOURCES.get(c.source, c.source),
        "needs_review": c.needs_review,
        "review_reasons": [in_words(r, engine) for r in result.get("review_reasons", [])],
        "channel": CHANNELS.get(c.channel, c.channel),
        "sender": c.sender,
        "customer": {
            "name": (known.name if known else customer.get("name")) or None,
            "id": customer.get("id"),
            "distributor": handled.get("name") if handled.get("kind") == "distribuidor" else None,
            "arrears": bool(known and known.in_arrears),
        },
        "received": colombian(arrival, short=True),
        "received_iso": arrival.isoformat(),
        "response": time_left(calendar, arrival, sla.response_due, now),
        "solution": time_left(calendar, arrival, sla.solution_due, now),
        "sla_reason": sla.reason,
        "level": level,
        "request_type": (result.get("request_type") or "otro").capitalize(),
        "rules": rules,
        "rules_view": policy.priority(rules_priority).name if rules_priority else None,
        "model_view": policy.priority(model_priority).name if model_priority else None,
        "model_confidence": _percent(result.get("model_confidence")),
        "disagree": bool(rules_priority and model_priority and rules_priority != model_priority),
        "impact": IMPACTS.get(result.get("impact") or "desconocido", result.get("impact")),
        "impact_evidence": result.get("impact_evidence"),
        "subject_html": highlight(c.subject, spans["subject"]) if c.subject else "",
        "body_html": highlight(c.body or "(cuerpo eliminado por retención)", spans["body"]),
        "decision": None if decision is None else {
            "id": decision.id, "label": DECISIONS.get(decision.decision, decision.decision),
            "priority_name": policy.priority(decision.priority).name, "agent": decision.agent,
            "level": decision.level, "reason": decision.reason,
            "when": colombian(made.astimezone(calendar.tz), short=True) if made else "",
            "undo_until": undo_until},
        "escalation": {
            "priority": raised, "priority_name": policy.priority(raised).name,
            "level": policy.support.escalation_level,
            "response": time_left(calendar, arrival, escalated.response_due, now),
            "solution": time_left(calendar, arrival, escalated.solution_due, now),
        },
    }


# ------------------------------------------------------------------------------------------- the query string


@dataclass(frozen=True, slots=True)
class ConsoleQuery:
    """The console's query string, checked: an unknown value falls back to the default (it is a page, not an API)."""

    state: str = "waiting"
    needs_review: str = "true"
    priority: str = ""
    channel: str = ""
    customer: str = ""
    overdue: str = "all"
    q: str = ""
    order: str = "oldest"
    page: int = 1

    @classmethod
    def parse(cls, params, customers: set[str]) -> "ConsoleQuery":
        def pick(name: str, allowed, default: str) -> str:
            value = params.get(name, default)
            return value if value in allowed else default

        try:
            page = max(1, min(int(params.get("page", "1")), 1_000_000))
        except ValueError:
            page = 1
        return cls(state=pick("state", STATES, "waiting"), needs_review=pick("needs_review", REVIEW_NAMES, "true"),
                   priority=pick("priority", PRIORITIES, ""), channel=pick("channel", CHANNELS, ""),
                   customer=pick("customer", customers, ""), overdue=pick("overdue", OVERDUE_NAMES, "all"),
                   q=params.get("q", "")[:200], order=pick("order", ORDERS, "oldest"), page=page)

    @property
    def active(self) -> int:
        """How many filters differ from the default view (order and page are not filters)."""
        default = ConsoleQuery()
        return sum(getattr(self, k) != getattr(default, k) for k in self.__slots__ if k not in ("order", "page"))

    def filters(self, classifier: Classifier) -> QueueFilter:
        return QueueFilter(state=self.state, needs_review=tri_state(self.needs_review),  # type: ignore[arg-type]
                           priority=self.priority or None, channel=self.channel or None,
                           customer=customer_match(classifier, self.customer), overdue=tri_state(self.overdue),
                           search=QueueFilter.terms(self.q), order=self.order)  # type: ignore[arg-type]

    def url(self, **changes) -> str:
        """This view's address with ``changes``, leaving out defaults."""
        defaults, current = ConsoleQuery(), replace(self, **changes)
        params = {k: getattr(current, k) for k in self.__slots__ if getattr(current, k) != getattr(defaults, k)}
        return "/review" + (f"?{urlencode(params)}" if params else "")


def _console_reads(request: Request, session, filters: QueueFilter, clock, offset: int) -> QueuePage:
    """The console's store reads, in the thread pool and one of the worker's report slots: a large store never
    holds up the event loop. (The waiting count is the live widget's own request, ``/v1/review/waiting``.)"""
    with report_turn(request):
        return queue_page(session=session, filters=filters, clock=clock, limit=PAGE_SIZE, offset=offset)


async def _caller(request: Request, settings, session) -> Principal | None:
    try:  # the session cookie, or the X-API-Key header (for scripts)
        return await run_in_threadpool(authorize, request, settings, session, "agent")  # reads the store
    except ApiError:
        return None


def _login_again(request: Request) -> Response:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return _login_form(request, None, target, 401)


def _common(caller: Principal, request: Request, engine: PolicyEngine) -> dict:
    agent = caller.agent or request.headers.get("x-agent", "api")
    return {"agent": agent, "csrf": caller.session.csrf if caller.session else "",
            "priority_names": {p: engine.policy.priority(p).name for p in PRIORITIES},
            "poll_seconds": request.app.state.settings.review_poll_seconds,
            "since": datetime.now(engine.calendar.tz).isoformat()}


@router.get("/review", response_class=HTMLResponse)
async def review_page(request: Request, classifier: ClassifierDep, session: SessionDep, settings: SettingsDep):
    caller = await _caller(request, settings, session)
    if caller is None:
        return _login_again(request)
    engine = classifier.policy_engine
    customers = {c.id: c.name for c in engine.customers.customers}
    query = ConsoleQuery.parse(request.query_params, set(customers))
    now = datetime.now(engine.calendar.tz)
    clock = response_clock(engine.sla, now)
    page = await run_in_threadpool(_console_reads, request, session, query.filters(classifier), clock,
                                   (query.page - 1) * PAGE_SIZE)
    common = _common(caller, request, engine)
    undo = undo_window(request)
    items = [message_view(row, engine, now, common["agent"], undo) for row in page.rows]
    pages = max(1, -(-page.total // PAGE_SIZE))
    first = (query.page - 1) * PAGE_SIZE + 1
    context = {
        **common, "section": "queue", "items": items, "total": page.total, "query": query, "pages": pages,
        "first": first if items else 0, "last": first + len(items) - 1 if items else 0,
        "prev_url": query.url(page=min(query.page - 1, pages)) if query.page > 1 else None,
        "next_url": query.url(page=query.page + 1) if query.page < pages else None,
        "options": {"state": STATE_NAMES, "needs_review": REVIEW_NAMES, "overdue": OVERDUE_NAMES,
                    "order": ORDER_NAMES, "channel": CHANNELS, "customer": customers,
                    "priority": common["priority_names"]},
        "reasons": engine.policy.support.change_reasons, "undo_seconds": int(undo.total_seconds()),
    }
    return render(request, "review.html", context)


QUALITY_WEEKS = (4, 8, 12, 26, 52)


def _quality_reads(request: Request, session, weeks: int) -> list[dict]:
    with report_turn(request):
        return quality(session=session, weeks=weeks)["rows"]


@router.get("/review/quality", response_class=HTMLResponse)
async def quality_page(request: Request, classifier: ClassifierDep, session: SessionDep, settings: SettingsDep):
    caller = await _caller(request, settings, session)
    if caller is None:
        return _login_again(request)
    engine = classifier.policy_engine
    try:
        weeks = int(request.query_params.get("weeks", "12"))
    except ValueError:
        weeks = 12
    weeks = weeks if weeks in QUALITY_WEEKS else 12
    rows = await run_in_threadpool(_quality_reads, request, session, weeks)
    common = _common(caller, request, engine)
    summary = summarise(rows, PRIORITIES)
    names = common["priority_names"]
    context = {**common, "section": "quality", "summary": summary, "weeks": weeks,
               "chart": svg(summary, names),
               "chart_narrow": svg(summary, names, layout=NARROW, ident="grafico-movil"),
               "week_options": QUALITY_WEEKS, "week_label": week_label}
    return render(request, "quality.html", context)


@router.post("/review/login")
async def login(request: Request, settings: SettingsDep, session: SessionDep):
    form = parse_qs((await request.body()).decode("utf-8", errors="replace"))
    key = (form.get("api_key") or [""])[0]
    agent = (form.get("agent") or [""])[0].strip()[:128]
    target = (form.get("next") or ["/review"])[0]
    if not target.startswith("/review") or "//" in target:  # only back to the review page, never elsewhere
        target = "/review"
    keys = keyring(settings)
    if not keys.grants("agent"):
        raise ApiError(503, "api_key_not_configured", "Este servicio no tiene clave configurada para la página de "
                                                      "revisión (CLASSIFIER_API_KEY o CLASSIFIER_AGENT_KEYS).")
    address = request.client.host if request.client else "desconocida"
    wait = login_blocked_for(session=session, address=address, agent=agent, max_failures=settings.login_max_failures,
                             window_seconds=settings.login_window_seconds)
    if wait:
        message = f"Demasiados intentos de ingreso fallidos; intente de nuevo en {wait} s."
        if "text/html" in request.headers.get("accept", ""):
            return _login_form(request, message, target, 429, {"retry-after": str(wait)})
        raise ApiError(429, "too_many_logins", message, headers={"retry-after": str(wait)})
    match = keys.match(key)
    if not agent or "\x00" in agent or match is None or "agent" not in match.roles:
        record_login_failure(session=session, address=address, agent=agent)
        return _login_form(request, "Agente o clave no válidos.", target, 403)
    previous = request.cookies.get(COOKIE)
    if previous:
        close_session(db=session, token=previous)
    token = open_session(db=session, agent=agent, role="admin" if "admin" in match.roles else "agent",
                         key_id=match.key_id, seconds=settings.session_seconds)
    response = RedirectResponse(target, status_code=303)
    response.set_cookie(COOKIE, token, max_age=settings.session_seconds, httponly=True, samesite="strict",
                        secure=settings.session_cookie_secure)
    return response


@router.post("/review/logout")
async def logout(request: Request, settings: SettingsDep, session: SessionDep):
    """Ends the session in the store at once (a copied cookie stops working), then in the browser. A live session
    needs its CSRF token; one that no longer works (say, its key was removed) is revoked too, for good."""
    token = request.cookies.get(COOKIE)
    current = find_session(db=session, token=token, keys=keyring(settings))
    if current is not None:
        form = parse_qs((await request.body()).decode("utf-8", errors="replace"))
        if not csrf_valid(current, (form.get(CSRF_FIELD) or [""])[0]):
            raise ApiError(403, "csrf_invalid", "Falta el token CSRF de la sesión o no corresponde a ella.")
    if token:
        close_session(db=session, token=token)
    response = RedirectResponse("/review", status_code=303)
    response.delete_cookie(COOKIE, httponly=True, samesite="strict", secure=settings.session_cookie_secure)
    return response
