"""Customers and distributors from ``data/customers.yaml``, looked up by id or by e-mail domain."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from classifier.yamlfile import load_model


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Distributor(_Strict):
    id: str = Field(min_length=1)
    name: str
    channels: list[str] = []


class Customer(_Strict):
    id: str = Field(min_length=1)
    name: str
    domains: list[str] = []
    distributor: str | None = None
    distributor_products: list[str] = []
    payment_status: Literal["al_dia", "en_mora"] = "al_dia"

    @property
    def in_arrears(self) -> bool:
        return self.payment_status == "en_mora"


class CustomerBook(_Strict):
    """Every customer and distributor, validated together (ids unique, distributors known)."""

    distributors: list[Distributor] = []
    customers: list[Customer] = []

    @model_validator(mode="after")
    def _consistent(self) -> "CustomerBook":
        problems = []
        dist_ids = [d.id for d in self.distributors]
        cust_ids = [c.id for c in self.customers]
        for kind, ids in (("distribuidor", dist_ids), ("cliente", cust_ids)):
            for dup in sorted({i for i in ids if ids.count(i) > 1}):
                problems.append(f"el id de {kind} {dup!r} aparece más de una vez")
        owners: dict[str, str] = {}
        for c in self.customers:
            if c.distributor is not None and c.distributor not in dist_ids:
                problems.append(f"el cliente {c.id!r} nombra un distribuidor desconocido: {c.distributor!r}")
            for domain in c.domains:
                d = domain.lower()
                if d in owners and owners[d] != c.id:
                    problems.append(f"el dominio {d!r} es a la vez de {owners[d]!r} y de {c.id!r}")
                owners[d] = c.id
        if problems:
            raise ValueError("; ".join(problems))
        return self

    def by_id(self, customer_id: str) -> Customer | None:
        return next((c for c in self.customers if c.id == customer_id), None)

    def by_email(self, address: str) -> Customer | None:
        """The customer whose staff write from this address's domain (subdomains included)."""
        domain = address.rsplit("@", 1)[-1].strip().strip(">").lower()
        if not domain:
            return None
        for c in self.customers:
            for known in c.domains:
                k = known.lower()
                if domain == k or domain.endswith("." + k):
                    return c
        return None

    def distributor(self, distributor_id: str) -> Distributor | None:
        return next((d for d in self.distributors if d.id == distributor_id), None)

    def find(self, *, customer_id: str | None = None, sender: str | None = None) -> Customer | None:
        """Tie a message to a customer: by ``customer_id`` first, else by the sender's domain."""
        if customer_id:
            found = self.by_id(customer_id)
            if found is not None:
                return found
        if sender:
            return self.by_email(sender)
        return None


def load_customers(path: Path) -> CustomerBook:
    return load_model(path, CustomerBook)
