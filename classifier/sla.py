"""Response and solution deadlines for a priority, with the customer conditions of POLICY §4–6."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from itertools import groupby

from classifier.calendar import BusinessCalendar, Deadline, business_days, require_aware
from classifier.customers import Customer, CustomerBook
from classifier.policy import Policy

DEVELOPMENT = "desarrollo"


@dataclass(frozen=True, slots=True)
class CustomerRef:
    """Who wrote, as far as the message tells."""

    id: str | None
    name: str | None
    known: bool
    matched_by: str | None  # "customer_id" | "sender" | None

    def as_dict(self) -> dict:
        return {"id": self.id, "name": self.name, "known": self.known, "matched_by": self.matched_by}


@dataclass(frozen=True, slots=True)
class HandledBy:
    """The company itself, or an authorised distributor for the products its contract names (POLICY §5)."""

    kind: str  # "empresa" | "distribuidor"
    name: str
    channels: tuple[str, ...] = ()
    products: tuple[str, ...] = ()

    def as_dict(self) -> dict:
        return {"kind": self.kind, "name": self.name, "channels": list(self.channels), "products": list(self.products)}


@dataclass(frozen=True, slots=True)
class SlaResult:
    """Deadlines for one ticket and why they are what they are."""

    priority: str
    priority_name: str
    received_at: datetime
    service_starts: datetime
    response: Deadline | None
    solution: Deadline | None
    committed: bool
    reason: str
    customer: CustomerRef
    handled_by: HandledBy
    level: str
    notes: tuple[str, ...] = field(default=())

    @property
    def response_due(self) -> datetime | None:
        return self.response.due if self.response else None

    @property
    def solution_due(self) -> datetime | None:
        return self.solution.due if self.solution else None

    def as_dict(self, *, explain: bool = False) -> dict:
        """JSON-ready view: ISO 8601 instants with their offset."""
        out = {
            "priority": self.priority,
            "priority_name": self.priority_name,
            "received_at": self.received_at.isoformat(),
            "service_starts": self.service_starts.isoformat(),
            "response_due": _iso(self.response_due),
            "solution_due": _iso(self.solution_due),
            "committed": self.committed,
            "reason": self.reason,
            "customer": self.customer.as_dict(),
            "handled_by": self.handled_by.as_dict(),
            "level": self.level,
        }
        if explain:
            out["explanation"] = {
                "response": explain_deadline(self.response),
                "solution": explain_deadline(self.solution),
            }
        return out


@dataclass(frozen=True, slots=True)
class EscalationCheck:
    """Whether a ticket still at level 1 has passed its response time (POLICY §6)."""

    escalate: bool
    reason: str
    current: SlaResult
    proposed_level: str | None = None
    proposed: SlaResult | None = None

    def as_dict(self) -> dict:
        return {
            "escalate": self.escalate,
            "reason": self.reason,
            "priority": self.current.priority,
            "response_due": _iso(self.current.response_due),
            "proposed_level": self.proposed_level,
            "proposed_priority": self.proposed.priority if self.proposed else None,
            "proposed_response_due": _iso(self.proposed.response_due) if self.proposed else None,
            "proposed_solution_due": _iso(self.proposed.solution_due) if self.proposed else None,
        }


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None


def explain_deadline(deadline: Deadline | None) -> list[dict] | None:
    """The open intervals a deadline counted, grouped by day, with business minutes per day."""
    if deadline is None:
        return None
    days = []
    for day, segs in groupby(deadline.counted, key=lambda s: s.start.date()):
        segs = list(segs)
        days.append({
            "date": day.isoformat(),
            "intervals": [[s.start.strftime("%H:%M"), s.end.strftime("%H:%M")] for s in segs],
            "business_minutes": round(sum(s.duration.total_seconds() for s in segs) / 60, 2),
        })
    return days


class SlaEngine:
    """Deadlines from the policy's tables, the business calendar and the customer book."""

    def __init__(self, policy: Policy, calendar: BusinessCalendar, customers: CustomerBook):
        self.policy = policy
        self.calendar = calendar
        self.customers = customers
        # Per priority, what its table row means (amounts of business time, the reason's wording), worked out once.
        self._terms = {p.label: (p, business_days(p.response_days), business_days(p.solution_days),
                                 f"Tiempos de la tabla para prioridad {p.name.lower()}: respuesta en "
                                 f"{_days(p.response_days)} y solución en {_days(p.solution_days)}, "
                                 "contados en horario hábil desde la llegada del mensaje.")
                       for p in policy.priorities}
        self._company = HandledBy("empresa", policy.company.name)

    def customer_for(self, *, customer_id: str | None, sender: str | None) -> tuple[CustomerRef, Customer | None]:
        found = self.customers.find(customer_id=customer_id, sender=sender)
        if found is None:
            return CustomerRef(customer_id, None, False, None), None
        matched = "customer_id" if customer_id and found.id == customer_id else "sender"
        return CustomerRef(found.id, found.name, True, matched), found

    def handled_by(self, customer: Customer | None, product: str | None) -> HandledBy:
        """The distributor when its contract covers this product (or the product is unknown)."""
        if customer is not None and customer.distributor:
            dist = self.customers.distributor(customer.distributor)
            products = tuple(customer.distributor_products)
            if dist is not None and (product is None or product in products or product == "general"):
                return HandledBy("distribuidor", dist.name, tuple(dist.channels), products)
        return self._company

    def deadlines(
        self,
        priority: str,
        received_at: datetime,
        *,
        customer_id: str | None = None,
        sender: str | None = None,
        product: str | None = None,
        request_type: str | None = None,
        level: str | None = None,
    ) -> SlaResult:
        """Response and solution deadlines counted from the original arrival ``received_at``."""
        require_aware(received_at)
        customer_ref, customer = self.customer_for(customer_id=customer_id, sender=sender)
        return self._deadlines(priority, received_at, customer_ref, customer, product=product,
                               request_type=request_type, level=level)

    def _deadlines(self, priority: str, received_at: datetime, customer_ref: CustomerRef, customer: Customer | None,
                   *, product: str | None, request_type: str | None, level: str | None) -> SlaResult:
        """``deadlines`` for a customer already resolved (an escalation check needs two priorities for one ticket)."""
        if priority not in self._terms:
            self.policy.priority(priority)  # the error naming the labels allowed
        table, response_time, solution_time, table_reason = self._terms[priority]
        handled = self.handled_by(customer, product)
        development = request_type == DEVELOPMENT
        in_arrears = customer is not None and customer.in_arrears
        amounts = [timedelta(0)]  # the next opening, then the deadlines, all from one look at the calendar
        if not in_arrears:
            amounts.append(response_time)
            if not development:
                amounts.append(solution_time)
        opening, *deadlines = self.calendar.add_each(received_at, amounts)
        starts = opening.due
        notes: list[str] = []
        if not customer_ref.known:
            notes.append("Cliente no identificado: se aplican los tiempos habituales.")
        if handled.kind == "distribuidor":
            notes.append(f"La atención la coordina el distribuidor autorizado {handled.name}.")

        if in_arrears:
            reason = ("Cliente con pagos pendientes: el soporte está sujeto al pago oportuno, "
                      "por eso no hay tiempos de respuesta ni de solución comprometidos.")
            return SlaResult(priority, table.name, received_at.astimezone(self.calendar.tz), starts, None, None,
                             False, reason, customer_ref, handled, level or self.policy.support.first_level,
                             tuple(notes))

        response = deadlines[0]
        if development:
            solution = None
            reason = ("Desarrollo o ajuste específico: requiere acuerdo previo de tiempo y valor, "
                      "por eso solo se compromete el tiempo de respuesta.")
        else:
            solution = deadlines[1]
            reason = table_reason
        return SlaResult(priority, table.name, received_at.astimezone(self.calendar.tz), starts, response, solution,
                         True, reason, customer_ref, handled, level or self.policy.support.first_level, tuple(notes))

    def escalation(
        self,
        priority: str,
        received_at: datetime,
        *,
        level: str,
        now: datetime,
        customer_id: str | None = None,
        sender: str | None = None,
        request_type: str | None = None,
    ) -> EscalationCheck:
        """Propose level 2 and one step more priority once level 1 has let the response time pass."""
        require_aware(now)
        require_aware(received_at)
        support = self.policy.support
        customer_ref, customer = self.customer_for(customer_id=customer_id, sender=sender)  # once for both priorities
        current = self._deadlines(priority, received_at, customer_ref, customer, product=None,
                                  request_type=request_type, level=level)
        if level != support.first_level:
            return EscalationCheck(False, f"El ticket ya está en el nivel {level}.", current)
        if current.response_due is None:
            return EscalationCheck(False, "Sin tiempos comprometidos: no aplica escalamiento por tiempo.", current)
        if now < current.response_due:
            return EscalationCheck(False, "El tiempo de respuesta aún no ha vencido.", current)
        raised = self.policy.raised(priority)
        proposed = self._deadlines(raised, received_at, customer_ref, customer, product=None,
                                   request_type=request_type, level=support.escalation_level)
        step = "se mantiene en la prioridad más alta" if raised == priority else f"sube a {proposed.priority_name.lower()}"
        reason = (f"Venció el tiempo de respuesta ({current.response_due.isoformat()}) en el nivel "
                  f"{support.first_level}: pasa al nivel {support.escalation_level} y {step}.")
        return EscalationCheck(True, reason, current, support.escalation_level, proposed)


def _days(value: float) -> str:
    hours = value * 8
    if hours < 8:
        return f"{hours:g} hora" + ("" if hours == 1 else "s") + " hábil" + ("" if hours == 1 else "es")
    return f"{value:g} día" + ("" if value == 1 else "s") + " hábil" + ("" if value == 1 else "es")
