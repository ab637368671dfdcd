"""Incoming messages: one typed ``Message`` from a JSON object or from a raw RFC 822 e-mail."""

from __future__ import annotations

import email
import email.message
import email.policy
import hashlib
import re
from dataclasses import dataclass
from datetime import datetime
from email.contentmanager import raw_data_manager
from email.errors import HeaderParseError
from email.utils import getaddresses, parsedate_to_datetime

from lxml import etree

from classifier.calendar import parse_instant, require_aware
from classifier.errors import InputError
from classifier.settings import Settings, get_settings

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
        raise InputError("se esperaba un objeto JSON")
    channel = data.get("channel", "email")
    if channel not in CHANNELS:
        raise InputError(f"channel: debe ser \"email\" o \"chat\"; se recibió {channel!r}")
    subject = data.get("subject") or ""
    body = data.get("body") or ""
    for name, value in (("subject", subject), ("body", body)):
        if not isinstance(value, str):
            raise InputError(f"{name}: debe ser texto; llegó {type(value).__name__}")
    if not subject.strip() and not body.strip():
        raise InputError("el asunto y el cuerpo están vacíos: no hay nada que clasificar")
    received = data.get("received_at")
    if received is None and require_received_at:
        raise InputError("received_at: falta (fecha y hora ISO 8601 con zona horaria)")
    for name in ("id", "customer_id", "sender"):
        value = data.get(name)
        if value is not None and not isinstance(value, (str, int)):
            raise InputError(f"{name}: debe ser texto; llegó {type(value).__name__}")
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


class _HtmlText:
    """Visible text of an HTML body, from the events of lxml's parser: block elements become line breaks; scripts,
    styles and the head are dropped. libxml2 reads HTML in linear time, where Python 3.11's ``html.parser`` takes
    5 s on 16 KB of unclosed tags (``<a <a <a``) and grows with the square of their number."""

    BLOCKS = {"p", "div", "br", "li", "tr", "h1", "h2", "h3", "h4", "h5", "h6", "blockquote", "table", "ul", "ol"}
    HIDDEN = {"script", "style", "head"}

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.skip = 0

    def start(self, tag: str, attrib) -> None:
        if tag in self.HIDDEN:
            self.skip += 1
        elif tag in self.BLOCKS:
            self.parts.append("\n")

    def end(self, tag: str) -> None:
        if tag in self.HIDDEN:
            self.skip = max(self.skip - 1, 0)
        elif tag in self.BLOCKS and tag != "br":  # a void element: one break, where it starts
            self.parts.append("\n")

    def data(self, data: str) -> None:
        if not self.skip:
            self.parts.append(data)

    def close(self) -> str:
        raw = "".join(self.parts)
        lines = [" ".join(line.split()) for line in raw.splitlines()]
        return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()


def html_to_text(html: str) -> str:
    parser = etree.HTMLParser(target=_HtmlText(), no_network=True)
    parser.feed(storable(html))  # libxml2 takes no lone surrogates
    return parser.close()


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
        content = raw_data_manager.get_content(part)  # what EmailMessage.get_content does, on a compat32 part
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


# ---------------------------------------------------------------------------------------------- e-mail limits


@dataclass(frozen=True, slots=True)
class EmailLimits:
    """What one e-mail may hold, checked on its raw bytes before the stdlib parser sees them (``CLASSIFIER_EMAIL_*``).

    The stdlib's cost grows with the square of some of these (encoded words, addresses, nesting), so a few hundred
    kilobytes could take seconds and gigabytes; under the caps every step is linear."""

    header_bytes: int
    encoded_words: int
    addresses: int
    headers: int
    parts: int
    depth: int

    @classmethod
    def from_settings(cls, settings: Settings) -> EmailLimits:
        return cls(settings.email_max_header_bytes, settings.email_max_encoded_words, settings.email_max_addresses,
                   settings.email_max_headers, settings.email_max_parts, settings.email_max_depth)


class EmailLimitError(InputError):
    """An e-mail over one of its limits; ``limit`` names the setting, ``value`` what was found (a lower bound when the
    scan stopped early) and ``cap`` the limit."""

    def __init__(self, limit: str, value: int, cap: int, message: str):
        super().__init__(message)
        self.limit, self.value, self.cap = limit, value, cap


_ADDRESS_HEADERS = frozenset({b"from", b"sender", b"reply-to", b"to", b"cc", b"bcc", b"resent-from",
                              b"resent-sender", b"resent-to", b"resent-cc", b"resent-bcc"})
# A run of what the stdlib's feed parser takes for header lines (email.feedparser.headerRE), possessive: one pass.
_HEADER_LINES = re.compile(rb"(?:(?:From |[!-9;-~]*:|[ \t])[^\n]*+(?:\n|\Z))*+")
_FIELD = re.compile(rb"\n([^ \t\n][^\n]*+(?:\n[ \t][^\n]*+)*+)")  # one header field with its folded lines
_QUOTED = re.compile(rb'"(?:[^"\\]|\\.)*+(?:"|\Z)', re.S)  # an unclosed quote runs to the end: no retries


class _EmailScan:
    """One pass over a raw e-mail cut as the stdlib's feed parser will cut it: header blocks, then the parts that each
    multipart's own boundary delimits. Every step is a bytes search or count over a region, so the cost grows with
    the size times the nesting depth (itself capped); the first limit exceeded raises ``EmailLimitError``."""

    def __init__(self, raw: bytes, limits: EmailLimits):
        # The feed parser ends lines at \r\n, \r or \n. A leading "\n" puts one before every line start.
        self.text = b"\n" + raw.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        self.limits = limits
        self.headers = 0
        self.parts = 1

    def run(self) -> None:
        self.message(1, len(self.text), 0, b"text")

    def message(self, start: int, end: int, depth: int, default: bytes) -> None:
        """A header block and its body in ``text[start:end]``; ``default`` is the type when it names none."""
        body, mime, boundary = self.header_block(start, end)
        mime = mime or default
        if mime == b"message/delivery-status":  # blocks up to a blank line, one part each (RFC 3464), at least one
            while True:
                self.enter(depth + 1)
                blank = self.text.find(b"\n\n", body - 1, end)  # the blank line starts at blank + 1
                self.header_block(body, end if blank < 0 else blank + 1)
                if blank < 0 or blank + 2 >= end:
                    return
                body = blank + 2
        elif mime.startswith(b"message/"):
            self.enter(depth + 1)
            self.message(body, end, depth + 1, b"text")
        elif boundary is not None:
            self.multipart(body, end, depth, boundary, mime == b"multipart/digest")

    def multipart(self, start: int, end: int, depth: int, boundary: bytes, digest: bool) -> None:
        """The parts between the delimiter lines of ``boundary`` (RFC 2046 §5.1.1) up to its closing one, each with
        the lines the feed parser gives it: up to and including the newline before the next delimiter."""
        delimiter = re.compile(rb"\n--" + re.escape(boundary) + rb"(--)?[ \t]*+(?=\n|\Z)")
        regions: list[tuple[int, int]] = []
        opening = None  # the delimiter line the current part follows
        for match in delimiter.finditer(self.text, start - 1, end):
            if opening is not None and match.start() == opening.end():  # the parser skips repeated delimiter lines
                opening = match
                continue
            if opening is not None:
                regions.append((opening.end() + 1, match.start() + 1))
                if self.parts + len(regions) > self.limits.parts:
                    found = delimiter.findall(self.text, match.start(), end)  # to say how many, at C speed
                    more = found.index(b"--") if b"--" in found else len(found)  # this delimiter's part included
                    self.refuse("email_max_parts", self.parts + len(regions) + more, self.limits.parts,
                                "El correo tiene {value} partes MIME; el límite es {cap}.")
            if match.group(1):
                opening = None
                break
            opening = match
        if opening is not None:
            regions.append((opening.end() + 1, end))
        for part_start, part_end in regions:
            self.enter(depth + 1)
            self.message(min(part_start, part_end), part_end, depth + 1, b"message/rfc822" if digest else b"text")

    def enter(self, depth: int) -> None:
        self.parts += 1
        if self.parts > self.limits.parts:
            self.refuse("email_max_parts", self.parts, self.limits.parts,
                        "El correo tiene al menos {value} partes MIME; el límite es {cap}.")
        if depth > self.limits.depth:
            self.refuse("email_max_depth", depth, self.limits.depth,
                        "El correo anida partes MIME en al menos {value} niveles; el límite es {cap}.")

    def header_block(self, start: int, end: int) -> tuple[int, bytes, bytes | None]:
        """Check the header fields from ``start``; return where the body starts, the MIME type (b"" if none given)
        and a multipart's boundary."""
        text, limits = self.text, self.limits
        stop = _HEADER_LINES.match(text, start, end).end()
        fields = (text.count(b"\n", start - 1, stop - 1)
                  - text.count(b"\n ", start - 1, stop) - text.count(b"\n\t", start - 1, stop))
        self.headers += fields
        if self.headers > limits.headers:
            self.refuse("email_max_headers", self.headers, limits.headers,
                        "El correo tiene al menos {value} campos de encabezado; el límite es {cap}.")
        content_type = None
        for match in _FIELD.finditer(text, start - 1, stop):
            field = match.group(1)
            name, _, value = field.partition(b":")
            label = "From " if field.startswith(b"From ") else name.strip().decode("latin-1")[:60]
            words = value.count(b"=?")
            if words > limits.encoded_words:
                self.refuse("email_max_encoded_words", words, limits.encoded_words,
                            f"El encabezado «{label}» tiene {{value}} palabras codificadas (=?…?=); "
                            "el límite es {cap}.")
            name = name.strip().lower()
            if name in _ADDRESS_HEADERS:
                addresses = _QUOTED.sub(b"", value).count(b",") + 1
                if addresses > limits.addresses:
                    self.refuse("email_max_addresses", addresses, limits.addresses,
                                f"El encabezado «{label}» tiene {{value}} direcciones; el límite es {{cap}}.")
            if len(field) > limits.header_bytes:
                self.refuse("email_max_header_bytes", len(field), limits.header_bytes,
                            f"El encabezado «{label}» ocupa {{value}} bytes; el límite es {{cap}}.")
            if name == b"content-type" and content_type is None:
                content_type = value
        body = stop + 1 if text[stop:stop + 1] == b"\n" else stop
        if content_type is None:
            return body, b"", None
        mime = content_type.split(b";", 1)[0].strip().lower()
        if mime.count(b"/") != 1:  # what email.message.Message.get_content_type does with a malformed type
            return body, b"text/plain", None
        return body, mime, _boundary(content_type) if mime.startswith(b"multipart/") else None

    @staticmethod
    def refuse(limit: str, value: int, cap: int, template: str) -> None:
        raise EmailLimitError(limit, value, cap, template.format(value=value, cap=cap))


def _boundary(content_type: bytes) -> bytes | None:
    """The boundary parameter as the parser reads it (RFC 2231 continuations included), in the parser's bytes."""
    holder = email.message.Message()  # compat32: the same parameter parsing as the feed parser's
    holder["Content-Type"] = content_type.decode("ascii", "surrogateescape")
    boundary = holder.get_boundary()
    try:
        return None if boundary is None else boundary.encode("ascii", "surrogateescape")
    except UnicodeEncodeError:  # decoded to non-ASCII: no line of the (ASCII) parser input can match it
        return None


def check_email_limits(raw: bytes, limits: EmailLimits) -> None:
    """Refuse (``EmailLimitError``) an e-mail over a limit, in time linear in its size and before any parsing."""
    _EmailScan(raw, limits).run()


# ---------------------------------------------------------------------------------------------- e-mail parsing


def message_from_rfc822(raw: bytes, *, received_at: datetime | None = None, gateway_received: str | None = None,
                        limits: EmailLimits | None = None) -> ParsedEmail:
    """Subject and body from the MIME structure (text/plain preferred, HTML converted), attachments counted.

    Time of receipt: the gateway's (argument or ``X-Received-At``), else the newest ``Received:`` header,
    else ``Date``. The e-mail is checked against ``limits`` (default: the settings') first, then parsed with the
    compat32 policy, which keeps headers as text: only the few read here are decoded, each in linear time.
    """
    if not raw or not raw.strip():
        raise InputError("correo vacío: no hay nada que clasificar")
    check_email_limits(raw, limits or EmailLimits.from_settings(get_settings()))
    try:
        msg = email.message_from_bytes(raw, policy=email.policy.compat32)
    except Exception:  # the parser is lenient; this is a last resort
        raise InputError("no es un mensaje RFC 822 legible") from None
    if not msg.keys() and not msg.get_payload():
        raise InputError("no es un mensaje RFC 822: no tiene encabezados")
    subject = _text_header(msg, "subject")
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
    sender = _fit_address(_first_address(_raw_header(msg, "from")))
    message_id = _fit(_raw_header(msg, "message-id").strip().strip("<>") or None)
    return ParsedEmail(Message(message_id, "email", subject, body, when, None, sender), attachments, source, fmt)


def _raw_values(msg: email.message.Message, name: str) -> list[str]:
    """Every value of a header as it came (unfolded, not decoded), first one first."""
    return [re.sub(r"\s+", " ", value).strip() for key, value in msg.raw_items() if key.lower() == name]


def _raw_header(msg: email.message.Message, name: str) -> str:
    values = _raw_values(msg, name)
    return values[0] if values else ""


def _text_header(msg: email.message.Message, name: str) -> str:
    """A free-text header (Subject) decoded as policy.default decodes it (RFC 2047 encoded words); the raw text if it
    cannot be. Its memory grows with the square of the encoded words, hence their limit; policy.default's address
    parser grows so with every token, and is not used."""
    raw = _raw_header(msg, name)
    try:
        value = str(email.policy.default.header_factory(name, raw))
    except (ValueError, IndexError, TypeError, HeaderParseError):  # broken encoded words
        value = raw
    return " ".join(value.split())


_ADDRESS = re.compile(r"[^\s@]+@[^\s@]+")


def _first_address(raw: str) -> str | None:
    """The first address of an address header, with the stdlib's linear parser (policy.default's takes 0.8 s on
    16 KB of From); what is not one ``local@domain`` (garbage, deeply nested comments) gives no address."""
    try:
        address = next((address for _, address in getaddresses([raw]) if address), None)
    except (RecursionError, ValueError, IndexError, TypeError):
        return None
    return address if address and _ADDRESS.fullmatch(address) else None


def _received(msg: email.message.Message, received_at: datetime | None,
              gateway: str | None) -> tuple[datetime | None, str]:
    if received_at is not None:
        return received_at, "gateway"
    header = gateway or _raw_header(msg, "x-received-at")
    if header:
        return parse_instant(header), "gateway"
    for value in _raw_values(msg, "received"):  # the newest Received: header comes first
        stamp = value.rsplit(";", 1)[-1].strip()
        try:
            return require_aware(parsedate_to_datetime(stamp)), "received_header"
        except (TypeError, ValueError, IndexError, InputError):
            continue
    date = _raw_header(msg, "date")
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
