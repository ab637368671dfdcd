"""The policy in force and the customers' calendar feed."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, Query, Response

from api.deps import ClassifierDep

router = APIRouter(prefix="/v1", tags=["política"])


@router.get("/policy", summary="Política vigente",
            description="Prioridades, productos, tablas de tiempos, horario y excepciones de calendario próximas.")
async def policy(classifier: ClassifierDep, days: int = Query(120, ge=1, le=730)) -> dict:
    engine = classifier.policy_engine
    cal = engine.calendar
    today = datetime.now(cal.tz).date()
    found = cal.upcoming_exceptions(today, days)
    return {
        "priorities": [p.model_dump() for p in engine.policy.priorities],
        "products": [p.model_dump() for p in engine.policy.products],
        "time_zone": engine.policy.calendar.time_zone,
        "weekly_hours": engine.policy.calendar.weekly_hours,
        "business_day_hours": 8,
        "support": engine.policy.support.model_dump(),
        "upcoming": {
            "from": today.isoformat(),
            "days": days,
            "holidays": [{"date": h.date.isoformat(), "name": h.name, "source": h.source} for h in found["holidays"]],
            "extra_openings": [{"date": e.date.isoformat(), "opens": f"{e.opens:%H:%M}", "closes": f"{e.closes:%H:%M}",
                                "source": e.source} for e in found["extra_openings"]],
            "suspensions": [{"date": s.date.isoformat(), "starts": f"{s.starts:%H:%M}", "ends": f"{s.ends:%H:%M}",
                             "source": s.source} for s in found["suspensions"]],
        },
    }


@router.get("/calendar.ics", summary="Calendario de atención (iCalendar)",
            response_class=Response, responses={200: {"content": {"text/calendar": {}}}})
async def calendar_ics(classifier: ClassifierDep, days: int = Query(365, ge=1, le=1095)) -> Response:
    from classifier.ical import calendar_feed  # icalendar is loaded on the first feed request, not at start-up

    cal = classifier.policy_engine.calendar
    body = calendar_feed(cal, classifier.policy_engine.policy.company, start=datetime.now(cal.tz).date(), days=days)
    return Response(body, media_type="text/calendar; charset=utf-8",
                    headers={"content-disposition": 'attachment; filename="atencion.ics"'})
