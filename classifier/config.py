"""The policy's configuration as loaded once at start-up: tables, business calendar, customers, SLA engine."""

from __future__ import annotations

from dataclasses import dataclass

from classifier.calendar import BusinessCalendar
from classifier.customers import CustomerBook, load_customers
from classifier.errors import ConfigError
from classifier.policy import Policy, load_policy
from classifier.settings import Settings
from classifier.sla import SlaEngine


@dataclass(frozen=True)
class PolicyEngine:
    """Policy tables, the business calendar, customers and the SLA engine over them."""

    policy: Policy
    calendar: BusinessCalendar
    customers: CustomerBook
    sla: SlaEngine


def load_policy_engine(settings: Settings) -> PolicyEngine:
    """Load and validate the policy and customer files; raise ``ConfigError`` listing every problem."""
    policy = load_policy(settings.policy_path)
    calendar = BusinessCalendar.from_config(policy.calendar)
    customers = load_customers(settings.customers_path)
    if policy.products:
        unknown = [f"{settings.customers_path}: cliente {c.id!r} > distributor_products: producto desconocido {p!r} "
                   f"(los productos están en {settings.policy_path})"
                   for c in customers.customers for p in c.distributor_products if p not in policy.product_ids]
        if unknown:
            raise ConfigError(unknown)
    return PolicyEngine(policy, calendar, customers, SlaEngine(policy, calendar, customers))
