"""The agents' review page (server-rendered, Spanish), behind a login form that sets a signed session cookie."""

from __future__ import annotations

import hmac
import time
from datetime import datetime
from pathlib import Path
from urllib.parse import parse_qs

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.templating import Jinja2Templates
from markupsafe import Markup, escape

from api.deps import ApiError, ClassifierDep, SessionDep, SettingsDep, check_key
from api.session import COOKIE, SESSION_SECONDS, make_session, session_agent
from classifier.calendar import parse_instant
from classifier.policy import PRIORITIES
from classifier.store.repository import quality, review_queue

router = APIRouter(tags=["revisión"], include_in_schema=False)
TEMPLATES = Jinja2Templates(directory=str(Path(__file__).resolve().parent.parent / "templates"))
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


@router.get("/review", response_class=HTMLResponse)
async def review_page(request: Request, classifier: ClassifierDep, session: SessionDep, settings: SettingsDep,
                      order: str = Query("oldest"), needs_review: str = Query("true")):
    agent = session_agent(settings.api_key, request.cookies.get(COOKIE))
    if agent is None:
        try:  # the X-API-Key header works too (for scripts)
            check_key(request, settings)
            agent = request.headers.get("x-agent", "api")
        except ApiError:
            target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
            return TEMPLATES.TemplateResponse(request, "login.html", {"error": None, "next": target},
                                              status_code=401)
    flag = None if needs_review == "all" else needs_review != "false"
    rows, total = review_queue(session=session, needs_review=flag,
                               order="least_confident" if order == "least_confident" else "oldest", limit=100,
                               offset=0)
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
               "quality": quality(session=session, weeks=8)["rows"], "needs_review": needs_review}
    return TEMPLATES.TemplateResponse(request, "review.html", context)


@router.post("/review/login")
async def login(request: Request, settings: SettingsDep):
    form = parse_qs((await request.body()).decode("utf-8", errors="replace"))
    key = (form.get("api_key") or [""])[0]
    agent = (form.get("agent") or [""])[0].strip()[:128]
    target = (form.get("next") or ["/review"])[0]
    if not target.startswith("/review") or "//" in target:  # only back to the review page, never elsewhere
        target = "/review"
    if not settings.api_key:
        raise ApiError(503, "api_key_not_configured", "Este servicio no tiene clave configurada (CLASSIFIER_API_KEY).")
    if not agent or "\x00" in agent or not hmac.compare_digest(key.encode(), settings.api_key.encode()):
        return TEMPLATES.TemplateResponse(request, "login.html", {"error": "Agente o clave no válidos.",
                                                                  "next": target}, status_code=403)
    response = RedirectResponse(target, status_code=303)
    response.set_cookie(COOKIE, make_session(settings.api_key, agent), max_age=SESSION_SECONDS, httponly=True,
                        samesite="strict")
    return response


@router.post("/review/logout")
async def logout():
    response = RedirectResponse("/review", status_code=303)
    response.delete_cookie(COOKIE)
    return response
