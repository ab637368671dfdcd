"""Incoming messages: one typed ``Message`` from a JSON object or from a raw RFC 822 e-mail."""

from __future__ import annotations

import email
import email.policy
import hashlib
import re
from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage
from email.utils import parseaddr, parsedate_to_datetime
from html.parser import HTMLParser

from classifier.calendar import parse_instant, require_aware
from classifier.errors import InputError

CHANNELS = ("email", "chat")
ID_LENGTH = 512  # message ids and sender addresses: the store's column width and the API's limit


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
    product: str | None = None  # one of the policy's products, when the gateway knows it (distributor routing)

    def __post_init__(self) -> None:
        """Text as every store and encoder can hold it, whichever way the message came in (JSON, e-mail, command
        line): NUL (no PostgreSQL text column holds it) and lone surrogates (no UTF-8 encoder accepts them) become
        U+FFFD, so the message is classified, stored and found again by its id rather than refused."""
        for name in ("id", "subject", "body", "customer_id", "sender"):
            value = getattr(self, name)
            if value and (not value.isascii() or "\x00" in value):
                object.__setattr__(self, name, storable(value))


_SURROGATE = re.compile("[\ud800-\udfff]")


def storable(text: str) -> str:
    """``text`` with NUL and lone surrogates as U+FFFD: what every store, encoder and JSON writer accepts."""
    text = text.replace("\x00", "\ufffd")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        text = _SURROGATE.sub("\ufffd", text)
    return text


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
        customer_id=None if data.get("customer_id") is None else str(data["customer_id"]),
        sender=None if data.get("sender") is None else str(data["sender"]),
    )


# ---------------------------------------------------------------------------------------------- e-mail

RECEIVED_SOURCES = ("gateway", "received_header", "date_header", "arrival")


class _HtmlText(HTMLParser):
    """Visible text of an HTML body: block elements become line breaks; scripts and styles are dropped."""

    BLOCKS = {"p", "div", "br", "li", "tr", "h1", "h2", "h3", "h4", "h5", "h6", "blockquote", "table", "ul", "ol"}

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.skip = 0

    def handle_starttag(self, tag, attrs):
        if tag in ("script", "style", "head"):
            self.skip += 1
        elif tag in self.BLOCKS:
            self.parts.append("\n")

    def handle_endtag(self, tag):
        if tag in ("script", "style", "head"):
            self.skip = max(self.skip - 1, 0)
        elif tag in self.BLOCKS:
            self.parts.append("\n")

    def handle_data(self, data):
        if not self.skip:
            self.parts.append(data)

    def text(self) -> str:
        raw = "".join(self.parts)
        lines = [" ".join(line.split()) for line in raw.splitlines()]
        return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()


def html_to_text(html: str) -> str:
    parser = _HtmlText()
    parser.feed(html)
    parser.close()
    return parser.text()


@dataclass(frozen=True, slots=True)
class ParsedEmail:
    """What the classifier takes from a raw e-mail, and how it got there."""

    message: Message
    attachments: int
    received_source: str
    body_format: str  # "text" | "html" | "none"


def _part_text(part) -> str:
    """Decoded text of a part; an unknown or wrong charset falls back to UTF-8, then Windows-1252."""
    try:
        content = part.get_content()
        return content if isinstance(content, str) else content.decode("utf-8", errors="replace")
    except (LookupError, UnicodeError, AssertionError, ValueError, TypeError):
        pass
    payload = part.get_payload(decode=True) or b""
    if isinstance(payload, str):
        return payload
    for charset in (part.get_content_charset(), "utf-8", "cp1252"):
        if not charset:
            continue
        try:
            return payload.decode(charset)
        except (LookupError, UnicodeDecodeError):
            continue
    return payload.decode("latin-1", errors="replace")


def message_from_rfc822(raw: bytes, *, received_at: datetime | None = None,
                        gateway_received: str | None = None) -> ParsedEmail:
    """Subject and body from the MIME structure (text/plain preferred, HTML converted), attachments counted.

    Time of receipt: the gateway's (argument or ``X-Received-At``), else the newest ``Received:`` header,
    else ``Date``.
    """
    if not raw or not raw.strip():
        raise InputError("empty e-mail: nothing to classify")
    try:
        msg: EmailMessage = email.message_from_bytes(raw, policy=email.policy.default)
    except Exception as exc:  # the parser is lenient; this is a last resort
        raise InputError(f"not a readable RFC 822 message: {exc}") from None
    if not msg.keys() and not msg.get_payload():
        raise InputError("not an RFC 822 message: no headers found")
    subject = _header(msg, "subject")
    plain, html, attachments = [], [], 0
    for part in msg.walk():
        if part.is_multipart():
            continue
        disposition = (part.get_content_disposition() or "").lower()
        ctype = part.get_content_type()
        if disposition == "attachment" or (part.get_filename() and disposition != "inline") or (
                not ctype.startswith("text/")):
            attachments += 1
            continue
        if ctype == "text/plain":
            plain.append(_part_text(part))
        elif ctype == "text/html":
            html.append(_part_text(part))
    if plain:
        body, fmt = "\n".join(p.strip("\n") for p in plain), "text"
    elif html:
        body, fmt = "\n".join(html_to_text(h) for h in html), "html"
    else:
        body, fmt = "", "none"
    # No subject and no text (only an attachment, or nothing) is still a customer's e-mail: it is classified, as
    # POLICY §1 says, muy_baja, and the acknowledgement asks what they need.
    when, source = _received(msg, received_at, gateway_received)
    sender = _fit_address(parseaddr(_header(msg, "from"))[1] or None)
    message_id = _fit(_header(msg, "message-id").strip().strip("<>") or None)
    return ParsedEmail(Message(message_id, "email", subject, body, when, None, sender), attachments, source, fmt)


def _header(msg: EmailMessage, name: str) -> str:
    try:
        value = msg.get(name)
    except (ValueError, IndexError, TypeError):  # broken encoded-words or structured headers
        value = msg.get_all(name, failobj=[""])[0] if hasattr(msg, "get_all") else ""
    return " ".join(str(value or "").split())


def _received(msg: EmailMessage, received_at: datetime | None, gateway: str | None) -> tuple[datetime | None, str]:
    if received_at is not None:
        return received_at, "gateway"
    header = gateway or _header(msg, "x-received-at")
    if header:
        return parse_instant(header), "gateway"
    for value in msg.get_all("received", failobj=[]):  # the newest Received: header comes first
        stamp = str(value).rsplit(";", 1)[-1].strip()
        try:
            return require_aware(parsedate_to_datetime(stamp)), "received_header"
        except (TypeError, ValueError, IndexError, InputError):
            continue
    date = _header(msg, "date")
    if date:
        try:
            return require_aware(parsedate_to_datetime(date)), "date_header"
        except (TypeError, ValueError, IndexError, InputError):
            pass
    return None, "arrival"


def _fit(value: str | None) -> str | None:
    """A header value within ``ID_LENGTH``: an over-long one keeps its start and ends in a digest of the whole, so
    two long Message-IDs that share a start stay two messages."""
    if value is None or len(value) <= ID_LENGTH:
        return value
    return value[: ID_LENGTH - 41] + "#" + _digest(value)


def _digest(value: str) -> str:
    return hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()[:40]


def _fit_address(address: str | None) -> str | None:
    """An address within ``ID_LENGTH`` that keeps its domain (it names the customer): only the part before the
    ``@`` is shortened."""
    if address is None or len(address) <= ID_LENGTH:
        return address
    local, at, domain = address.rpartition("@")
    if not at or len(domain) > ID_LENGTH // 2:
        return _fit(address)
    return local[: ID_LENGTH - len(domain) - 42] + "#" + _digest(address) + "@" + domain
