"""The agents' review page (server-rendered, Spanish), behind a login form that opens a session kept in the store.

Pages carry a Content-Security-Policy with a per-response nonce: only our own inline style and script run.
"""

from __future__ import annotations

import secrets
from datetime import datetime
from pathlib import Path
from urllib.parse import parse_qs

from fastapi import APIRouter, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from markupsafe import Markup, escape

from api.deps import ApiError, ClassifierDep, SessionDep, SettingsDep, authorize, report_turn
from api.keys import keyring
from api.session import COOKIE, CSRF_FIELD, close_session, csrf_valid, find_session, open_session
from classifier.calendar import parse_instant
from classifier.policy import PRIORITIES
from classifier.store.repository import quality, review_queue
from classifier.store.sessions import login_blocked_for, record_login_failure

router = APIRouter(tags=["revisión"], include_in_schema=False)
TEMPLATES = Jinja2Templates(directory=str(Path(__file__).resolve().parent.parent / "templates"))
PAGE_CSP = ("default-src 'none'; script-src 'nonce-{nonce}'; style-src 'nonce-{nonce}'; connect-src 'self'; "
            "img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")


def render(request: Request, template: str, context: dict, status: int = 200,
           headers: dict[str, str] | None = None) -> Response:
    """A page with its own nonce: the template marks its <style> and <script> with it, the CSP allows only it."""
    nonce = secrets.token_urlsafe(16)
    return TEMPLATES.TemplateResponse(request, template, {**context, "nonce": nonce}, status_code=status,
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


def _time_left(due: str | None, now: datetime) -> str:
    if not due:
        return "sin plazo comprometido"
    minutes = int((parse_instant(due) - now).total_seconds() // 60)
    text = f"{abs(minutes) // 60} h {abs(minutes) % 60} min"
    return f"vence en {text}" if minutes >= 0 else f"vencido hace {text}"


def _queue_and_quality(request: Request, session, needs_review: bool | None, order: str
                       ) -> tuple[tuple[list, int], list[dict]]:
    """The page's store reads, run in the thread pool in one of the worker's report slots: a large store never
    holds up the event loop."""
    with report_turn(request):
        return (review_queue(session=session, needs_review=needs_review, order=order, limit=100, offset=0),
                quality(session=session, weeks=8)["rows"])


@router.get("/review", response_class=HTMLResponse)
async def review_page(request: Request, classifier: ClassifierDep, session: SessionDep, settings: SettingsDep,
                      order: str = Query("oldest"), needs_review: str = Query("true")):
    try:  # the session cookie, or the X-API-Key header (for scripts)
        caller = await run_in_threadpool(authorize, request, settings, session, "agent")  # reads the store
    except ApiError:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return _login_form(request, None, target, 401)
    agent = caller.agent or request.headers.get("x-agent", "api")
    flag = None if needs_review == "all" else needs_review != "false"
    (rows, total), weekly = await run_in_threadpool(_queue_and_quality, request, session, flag,
                                                    "least_confident" if order == "least_confident" else "oldest")
    now = datetime.now(classifier.policy_engine.calendar.tz)
    items = []
    for row in rows:
        result = row.result
        spans = {"subject": [], "body": []}
        for hit in result.get("rules", []):
            for ev in hit.get("evidence", []):
                spans.setdefault(ev["field"], []).append((ev["start"], ev["end"]))
        items.append({
            "classification_id": row.id, "priority": row.priority, "priority_name": result["priority_name"],
            "confidence": row.confidence, "source": result["source"], "received": result["received_at"][:16],
            "response_due": (result["response_due"] or "—")[:16], "solution_due": (result["solution_due"] or "—")[:16],
            "time_left": _time_left(result["response_due"], now), "rules": result.get("rules", []),
            "subject_html": highlight(row.subject or "", spans["subject"]) if row.subject else "",
            "body_html": highlight(row.body or "(cuerpo eliminado por retención)", spans["body"]),
        })
    context = {"items": items, "total": total, "agent": agent, "priorities": PRIORITIES,
               "quality": weekly, "needs_review": needs_review,
               "csrf": caller.session.csrf if caller.session else ""}
    return render(request, "review.html", context)


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
