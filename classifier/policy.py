"""The service policy (``rules/policy.yaml``) as typed, validated data."""

from __future__ import annotations

import re
from datetime import date, time
from pathlib import Path
from typing import Annotated
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from classifier.yamlfile import load_model

# The five priorities of POLICY §1, most urgent first: the one list every other module, the API schema and the
# review page import.
PRIORITIES = ("muy_alta", "alta", "media", "baja", "muy_baja")
INCOMPLETE = "muy_baja"  # no request can be identified
DEFAULT_PRIORITY = "baja"  # every complete message that fits no other label
FAILURES = ("muy_alta", "alta")  # a product fails or access is lost: impact scope is reported
DECISION_ORDER = (INCOMPLETE,) + tuple(p for p in PRIORITIES if p != INCOMPLETE)  # muy_baja first, baja last

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_CLOCK = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$|^24:00$")


def parse_clock(value: str) -> time:
    """'HH:MM' to a time; '24:00' is the end of the day and maps to time.max."""
    if not isinstance(value, str) or not _CLOCK.match(value):
        raise ValueError(f"debe ser una hora escrita \"HH:MM\" entre comillas; se recibió {value!r}")
    if value == "24:00":
        return time.max
    hours, minutes = value.split(":")
    return time(int(hours), int(minutes))


def parse_weekdays(key: str) -> list[int]:
    """'mon-fri', 'sat', 'mon,wed' to weekday numbers (Monday = 0)."""
    days: list[int] = []
    for part in str(key).lower().split(","):
        part = part.strip()
        if "-" in part:
            first, last = (p.strip() for p in part.split("-", 1))
            if first not in WEEKDAYS or last not in WEEKDAYS:
                raise ValueError(f"rango de días desconocido {part!r}; use mon, tue, wed, thu, fri, sat, sun")
            a, b = WEEKDAYS.index(first), WEEKDAYS.index(last)
            if a > b:
                raise ValueError(f"el rango de días {part!r} va al revés")
            days.extend(range(a, b + 1))
        elif part in WEEKDAYS:
            days.append(WEEKDAYS.index(part))
        else:
            raise ValueError(f"día desconocido {part!r}; use mon, tue, wed, thu, fri, sat, sun")
    return days


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


Clock = Annotated[str, Field(description="Hora local \"HH:MM\".")]


class PriorityConfig(_Strict):
    label: str = Field(pattern=r"^[a-z_]+$")
    name: str
    response_days: float = Field(gt=0)
    solution_days: float = Field(gt=0)


class ProductConfig(_Strict):
    id: str = Field(pattern=r"^[a-z_]+$")
    name: str


class HolidayAdd(_Strict):
    date: date
    name: str
    source: str


class HolidayRemove(_Strict):
    date: date
    source: str


class HolidayConfig(_Strict):
    country: str = "CO"
    subdivision: str | None = None
    language: str = "es"
    add: list[HolidayAdd] = []
    remove: list[HolidayRemove] = []


class ExtraOpeningConfig(_Strict):
    date: date
    opens: str
    closes: str
    source: str

    @model_validator(mode="after")
    def _ordered(self) -> "ExtraOpeningConfig":
        if parse_clock(self.opens) >= parse_clock(self.closes):
            raise ValueError(f"opens {self.opens!r} no es anterior a closes {self.closes!r}")
        return self


class SuspensionConfig(_Strict):
    date: date
    starts: str
    ends: str
    source: str

    @model_validator(mode="after")
    def _ordered(self) -> "SuspensionConfig":
        if parse_clock(self.starts) >= parse_clock(self.ends):
            raise ValueError(f"starts {self.starts!r} no es anterior a ends {self.ends!r}")
        return self


class CalendarConfig(_Strict):
    time_zone: str = "America/Bogota"
    weekly_hours: dict[str, list[tuple[str, str]]]
    holidays: HolidayConfig = HolidayConfig()
    extra_openings: list[ExtraOpeningConfig] = []
    suspensions: list[SuspensionConfig] = []
    horizon_days: int = Field(370, ge=7, le=3660)

    @field_validator("time_zone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"zona horaria desconocida {value!r}; use un nombre IANA como "
                             "\"America/Bogota\"") from None
        return value

    @field_validator("weekly_hours")
    @classmethod
    def _valid_hours(cls, value: dict[str, list[tuple[str, str]]]) -> dict[str, list[tuple[str, str]]]:
        seen: set[int] = set()
        for key, intervals in value.items():
            for day in parse_weekdays(key):
                if day in seen:
                    raise ValueError(f"el día {WEEKDAYS[day]} aparece en más de una clave")
                seen.add(day)
            for opens, closes in intervals:
                if parse_clock(opens) >= parse_clock(closes):
                    raise ValueError(f"{key}: el intervalo {opens}-{closes} no abre antes de cerrar")
        return value

    def weekly_intervals(self) -> dict[int, list[tuple[time, time]]]:
        """Weekday number to its sorted open intervals."""
        table: dict[int, list[tuple[time, time]]] = {d: [] for d in range(7)}
        for key, intervals in self.weekly_hours.items():
            for day in parse_weekdays(key):
                table[day] = sorted((parse_clock(a), parse_clock(b)) for a, b in intervals)
        return table


class SupportConfig(_Strict):
    first_level: str = "N1"
    escalation_level: str = "N2"
    remote_support_note: str = ""
    change_reasons: list[str] = []  # the common reasons an agent picks from when changing a priority


class DecisionConfig(_Strict):
    review_below_confidence: float = Field(0.6, ge=0, le=1)
    rule_confidence: float = Field(0.95, ge=0, le=1)
    model_raises_rule_at: float = Field(0.8, ge=0, le=1)
    incomplete_at: float = Field(0.5, ge=0, le=1)
    max_chars: int = Field(20000, ge=100)


class RetrainingConfig(_Strict):
    """When a model retrained from agents' corrections may replace the current one."""

    max_macro_f1_drop: float = Field(0.0, ge=0, le=1)
    max_recall_drop: float = Field(0.01, ge=0, le=1)  # recall of the most urgent priority (POLICY §1: muy_alta)
    keep_rejected: int = Field(3, ge=0)


class CompanyConfig(_Strict):
    """Who gives the service: the legal name (deadlines' "handled by", the calendar feed) and the short one agents
    read in the review console."""

    name: str = Field(min_length=1)
    short_name: str = Field(min_length=1)


class Policy(_Strict):
    """Everything in ``rules/policy.yaml``."""

    company: CompanyConfig
    priorities: list[PriorityConfig] = Field(min_length=2)
    products: list[ProductConfig] = []
    calendar: CalendarConfig
    support: SupportConfig = SupportConfig()
    decision: DecisionConfig = DecisionConfig()
    retraining: RetrainingConfig = RetrainingConfig()

    @field_validator("priorities")
    @classmethod
    def _unique_labels(cls, value: list[PriorityConfig]) -> list[PriorityConfig]:
        labels = [p.label for p in value]
        dupes = sorted({x for x in labels if labels.count(x) > 1})
        if dupes:
            raise ValueError(f"etiquetas de prioridad repetidas: {', '.join(dupes)}")
        if tuple(labels) != PRIORITIES:
            raise ValueError(f"las prioridades deben ser {', '.join(PRIORITIES)}, en este orden (POLICY §1); "
                             f"se recibió {', '.join(labels)}")
        return value

    @property
    def product_ids(self) -> list[str]:
        return [p.id for p in self.products]

    @property
    def labels(self) -> list[str]:
        """Priority labels from highest to lowest."""
        return [p.label for p in self.priorities]

    def priority(self, label: str) -> PriorityConfig:
        for p in self.priorities:
            if p.label == label:
                return p
        from classifier.errors import Errors, InputError

        raise InputError(Errors.C203.format(value=label, allowed=", ".join(self.labels)))

    def raised(self, label: str) -> str:
        """The priority one step above ``label`` (the highest stays where it is)."""
        index = self.labels.index(self.priority(label).label)
        return self.labels[max(index - 1, 0)]


def load_policy(path: Path) -> Policy:
    """Load and validate the policy file; a malformed file raises ``ConfigError`` naming file and key."""
    return load_model(path, Policy)
