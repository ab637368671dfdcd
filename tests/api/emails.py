"""Hypothesis strategies for raw e-mails as a gateway may post them: well-formed MIME of every common shape, and
the same bytes damaged (cut, mis-encoded, hostile headers), so fuzzing reaches the e-mail parser's edges."""

from __future__ import annotations

from email.message import EmailMessage
from email.policy import SMTP

from hypothesis import strategies as st

_WORDS = ["hola", "la", "plataforma", "no", "carga", "factura", "urgente", "contraseña", "¿cómo", "cambio", "el",
          "correo?", "error", "500", "ñandú", "académico", "50%", "gracias", "reporte", "nómina", "😀", "\u200b"]
_CHARSETS = ["utf-8", "iso-8859-1", "windows-1252", "us-ascii", "x-desconocido"]
_ENCODINGS = ["7bit", "8bit", "quoted-printable", "base64", "x-uuencode", "base64-roto"]

words = st.lists(st.sampled_from(_WORDS) | st.text(max_size=12), max_size=40).map(" ".join)
addresses = st.builds(lambda user, host, name: f'"{name}" <{user}@{host}>' if name else f"{user}@{host}",
                      st.from_regex(r"[a-z0-9._%+-]{1,12}", fullmatch=True),
                      st.sampled_from(["colegio.edu.co", "cliente.com", "xn--aa.co", "[127.0.0.1]", ""]),
                      st.sampled_from(["", "Ana Pérez", "=?utf-8?q?Jos=C3=A9?=", 'a"b']))
dates = st.sampled_from(["Wed, 25 Nov 2026 09:05:00 -0500", "25 Nov 2026 09:05 +0000", "mañana", "", "Mon, 99 Foo 0000",
                         "Thu, 01 Jan 1970 00:00:00 +0000", "Fri, 31 Dec 9999 23:59:59 -1200"])


def _encoded_words(text: str, n: int) -> str:
    return " ".join([f"=?utf-8?q?{text[:8].encode('utf-8').hex()[:6] or 'a'}?="] * n)


@st.composite
def emails(draw) -> bytes:
    """One raw e-mail: plain, HTML, multipart with attachments or nested, then possibly damaged."""
    msg = EmailMessage()
    headers = []  # written raw, as a gateway passes them on: not checked by the stdlib's header classes
    subject = draw(words)
    if draw(st.booleans()):
        subject = _encoded_words(subject, draw(st.integers(1, 40)))
    if subject:
        headers.append(f"Subject: {subject}".replace("\n", " ").replace("\r", " "))
    headers.append("From: " + (", ".join(draw(st.lists(addresses, min_size=0, max_size=5))) or "nadie"))
    if draw(st.booleans()):
        headers.append(f"Date: {draw(dates)}")
    for _ in range(draw(st.integers(0, 5))):
        headers.append(f"Received: from mx{draw(st.integers(0, 9))} by gw; {draw(dates)}")
    if draw(st.booleans()):
        headers.append(f"Message-ID: <{draw(st.from_regex(r'[a-z0-9.@-]{0,30}', fullmatch=True))}>")
    body = draw(words)
    kind = draw(st.sampled_from(["plain", "html", "alternative", "attachments", "nested", "empty"]))
    charset = draw(st.sampled_from(_CHARSETS[:3]))
    if kind == "plain":  # a gateway's text is representable in the charset it declares
        msg.set_content(body.encode(charset, "replace").decode(charset), charset=charset)
    elif kind == "html":
        msg.set_content(f"<html><body><p>{body}</p><script>x</script></body></html>", subtype="html")
    elif kind == "alternative":
        msg.set_content(body)
        msg.add_alternative(f"<p>{body}</p>", subtype="html")
    elif kind in ("attachments", "nested"):
        msg.set_content(body)
        for i in range(draw(st.integers(1, 4))):
            msg.add_attachment(draw(st.binary(max_size=64)), maintype="application", subtype="octet-stream",
                               filename=draw(st.sampled_from(["a.pdf", "factura.xml", "=?utf-8?q?x?=", "", f"{i}.png"])))
        if kind == "nested":
            inner = EmailMessage()
            inner["Subject"] = "reenviado"
            inner.set_content(draw(words))
            msg.add_attachment(inner)
    for n, part in enumerate(msg.walk()):
        if part.is_multipart():  # else the stdlib draws a boundary with `random`, which Hypothesis warns about
            part.set_boundary(f"=_limite_{n}_=")
    raw = "\r\n".join(headers).encode("utf-8") + b"\r\n" + msg.as_bytes(policy=SMTP)
    if kind == "empty":
        raw = raw.split(b"\r\n\r\n")[0] + b"\r\n\r\n"
    damage = draw(st.sampled_from(["none", "none", "cut", "charset", "encoding", "bytes", "header_only", "no_headers"]))
    if damage == "cut":
        raw = raw[:draw(st.integers(0, len(raw)))]
    elif damage == "charset":
        raw = raw.replace(b"charset=\"utf-8\"", f"charset=\"{draw(st.sampled_from(_CHARSETS))}\"".encode())
    elif damage == "encoding":
        raw = raw.replace(b"Content-Transfer-Encoding: 7bit",
                          f"Content-Transfer-Encoding: {draw(st.sampled_from(_ENCODINGS))}".encode())
    elif damage == "bytes":
        raw += draw(st.binary(max_size=200))
    elif damage == "header_only":
        raw = raw.split(b"\r\n\r\n")[0]
    elif damage == "no_headers":
        raw = b"\r\n" + raw.split(b"\r\n\r\n", 1)[-1]
    return raw
