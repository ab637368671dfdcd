"""Incoming messages: one typed ``Message`` from a JSON object (e-mail parsing joins this module later)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from classifier.calendar import parse_instant
from classifier.errors import InputError

CHANNELS = ("email", "chat")


@dataclass(frozen=True, slots=True)
class Message:
    """A customer's message as the classifier sees it."""

    id: str | None
    channel: str
    subject: str
    body: str
    received_at: datetime | None = None
    customer_id: str | None = None
    sender: str | None = None


def message_from_dict(data: dict, *, require_received_at: bool = False) -> Message:
    """Validate one JSON object; every problem is an ``InputError`` naming the field."""
    if not isinstance(data, dict):
        raise InputError("expected a JSON object")
    channel = data.get("channel", "email")
    if channel not in CHANNELS:
        raise InputError(f"channel: must be \"email\" or \"chat\", got {channel!r}")
    subject = data.get("subject") or ""
    body = data.get("body") or ""
    for name, value in (("subject", subject), ("body", body)):
        if not isinstance(value, str):
            raise InputError(f"{name}: must be a string, got {type(value).__name__}")
    if not subject.strip() and not body.strip():
        raise InputError("subject and body are both empty: there is nothing to classify")
    received = data.get("received_at")
    if received is None and require_received_at:
        raise InputError("received_at: missing (ISO 8601 with UTC offset)")
    for name in ("id", "customer_id", "sender"):
        value = data.get(name)
        if value is not None and not isinstance(value, (str, int)):
            raise InputError(f"{name}: must be a string, got {type(value).__name__}")
    return Message(
        id=None if data.get("id") is None else str(data["id"]),
        channel=channel,
        subject=subject,
        body=body,
        received_at=parse_instant(received) if received is not None else None,
        customer_id=data.get("customer_id"),
        sender=data.get("sender"),
    )
