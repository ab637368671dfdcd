"""Hostile e-mails on POST /v1/classify/email: what once took seconds, gigabytes or the worker is refused at once
(413 in the API's one error shape, naming the limit and the value), and what lies just within the limits is read.
"""

from __future__ import annotations

import email
import email.policy
import json
import tempfile
import threading
import time
import urllib.request

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings, strategies as st

from api.main import create_app
from classifier.ingest import EmailLimitError, EmailLimits, check_email_limits, html_to_text, message_from_rfc822
from tests.api.conftest import make_settings
from tests.conftest import ROOT, repo_settings
from tests.servers import running_server

FIXTURES = ROOT / "tests/fixtures/emails"
HEAD = b"From: Ana <ana@colegio.edu.co>\r\nDate: Wed, 25 Nov 2026 09:00:00 -0500\r\n"
TEXT = b"\r\n\r\nNo podemos ingresar a la plataforma desde esta ma\xc3\xb1ana.\r\n"


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    with TestClient(create_app(make_settings(tmp_path_factory.mktemp("hostile-email")))) as c:
        yield c


def post(client, raw: bytes):
    started = time.perf_counter()
    response = client.post("/v1/classify/email", content=raw, headers={"content-type": "message/rfc822"})
    return response, time.perf_counter() - started


# ------------------------------------------------------------------------------------------------ builders
# Each takes n, the amount of the thing a limit counts, so that n = limit is accepted and n = limit + 1 refused.

def encoded_words(n: int) -> bytes:
    return HEAD + b"Subject: " + b"=?utf-8?q?a?= " * n + TEXT


def addresses(n: int) -> bytes:
    return (b"From: " + b", ".join(b"u%d@x.co" % i for i in range(n)) + b"\r\nSubject: Acceso"
            + TEXT)


def header_bytes(n: int) -> bytes:
    field = b"Subject: Acceso "
    return HEAD + field + b"x" * (n - len(field)) + TEXT  # n bytes: the field's name, colon and value


def received(n: int) -> bytes:
    """n header fields in all: n - 2 Received plus From and Subject."""
    hop = b"Received: from mx%d by mx; Wed, 25 Nov 2026 09:00:00 -0500\r\n"
    return b"".join(hop % i for i in range(n - 2)) + b"From: ana@colegio.edu.co\r\nSubject: Acceso" + TEXT


def parts(n: int) -> bytes:
    """n MIME parts as walk() counts them: the multipart itself, one text part and n - 2 attachments."""
    attachment = b"--b\r\nContent-Type: application/pdf\r\n\r\nJVBERi0xLjQK\r\n"
    return (HEAD + b"Subject: Acceso\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n"
            b"--b\r\nContent-Type: text/plain; charset=utf-8" + TEXT + attachment * (n - 2) + b"--b--\r\n")


def depth(n: int) -> bytes:
    """A text part n multiparts deep (the message itself is depth 0)."""
    nest = b"".join(b"Content-Type: multipart/mixed; boundary=b%d\r\n\r\n--b%d\r\n" % (i, i) for i in range(n))
    return HEAD + b"Subject: Acceso\r\nMIME-Version: 1.0\r\n" + nest + b"Content-Type: text/plain; charset=utf-8" + TEXT


CAPS = {  # builder: the setting it meets
    encoded_words: "email_max_encoded_words",
    addresses: "email_max_addresses",
    header_bytes: "email_max_header_bytes",
    received: "email_max_headers",
    parts: "email_max_parts",
    depth: "email_max_depth",
}


# ------------------------------------------------------------------------------------------------ refusals

@pytest.mark.parametrize("raw, value, cap", [
    pytest.param(encoded_words(60_000), "60000", "200", id="60k-encoded-words-840KB-was-23GB-OOM"),
    pytest.param(encoded_words(10_000), "10000", "200", id="10k-encoded-words-was-650MB"),
    pytest.param(addresses(70_000), "70000", "100", id="70k-addresses-was-50s-1.4GB"),
    pytest.param(parts(8_000), "8000", "100", id="8k-parts-was-3.6s"),
    pytest.param(received(15_000), "15000", "1000", id="15k-received-was-2.5s"),
    pytest.param(depth(5_000), "11", "10", id="5k-nested-multiparts-was-RecursionError"),
])
@pytest.mark.serial
def test_hostile_email_is_refused_at_once_naming_the_limit(client, raw, value, cap):
    assert len(raw) < client.app.state.settings.max_body_bytes  # the body limit alone lets these through
    response, seconds = post(client, raw)
    assert response.status_code == 413, response.text[:300]
    body = response.json()
    assert body["error"]["code"] == "email_too_large" and body["request_id"]
    message = body["error"]["message"]
    assert value in message and f"el límite es {cap}" in message, message
    assert seconds < 1.0  # the benchmark holds it to 100 ms; this only catches a return of the old parse


@pytest.mark.parametrize("build", CAPS, ids=lambda b: b.__name__)
def test_an_email_at_each_limit_is_classified_and_one_past_it_refused(client, build):
    cap = getattr(client.app.state.settings, CAPS[build])
    at_limit, _ = post(client, build(cap))
    assert at_limit.status_code == 200, at_limit.text[:300]
    assert at_limit.json()["priority"] in ("muy_alta", "alta", "media", "baja", "muy_baja")
    over, _ = post(client, build(cap + 1))
    assert over.status_code == 413 and str(cap) in over.json()["error"]["message"], over.text[:300]


def test_limits_are_settings(tmp_path):
    with TestClient(create_app(make_settings(tmp_path, email_max_parts=5, email_max_encoded_words=2))) as strict:
        assert post(strict, parts(6))[0].status_code == 413
        assert post(strict, parts(5))[0].status_code == 200
        assert post(strict, encoded_words(3))[0].status_code == 413


# ------------------------------------------------------------------------------------------------ the scan

@st.composite
def mime_part(draw, depth: int = 0) -> str:
    """A MIME part as mail programs write them, or a little broken: nested multiparts (digest included), forwarded
    messages, bounces, parts without headers, repeated or missing delimiters."""
    kind = draw(st.sampled_from(["leaf", "leaf", "multipart", "message", "report"] if depth < 3 else ["leaf"]))
    if kind == "report":  # a bounce: header blocks separated by blank lines, one part each
        blocks = draw(st.lists(st.sampled_from(["Action: failed", "", "A: 1\nB: 2", "texto suelto", "A: 1\n"]),
                               max_size=4))
        return "Content-Type: message/delivery-status\n\n" + "\n\n".join(blocks)
    if kind == "multipart":
        boundary = draw(st.sampled_from(["b", "=_x", "frontera 1", "b%d" % depth]))
        subtype = draw(st.sampled_from(["mixed", "alternative", "digest"]))
        inner = draw(st.lists(mime_part(depth + 1), max_size=3))
        closing = f"--{boundary}--\n" if draw(st.booleans()) else ""
        repeated = draw(st.integers(1, 2))  # a repeated delimiter line opens one part, not two
        return (f'Content-Type: multipart/{subtype}; boundary="{boundary}"\n\npreámbulo\n'
                + "".join(f"--{boundary}\n" * repeated + f"{p}\n" for p in inner) + closing
                + draw(st.sampled_from(["", "epílogo\n"])))
    if kind == "message":
        return "Content-Type: message/rfc822\n\nSubject: reenviado\n" + draw(mime_part(depth + 1))
    headers = draw(st.lists(st.sampled_from(["Content-Type: text/plain; charset=utf-8", "Content-Type: text/html",
                                             "Content-Disposition: attachment; filename=a.pdf", "X-Folded: a\n b"]),
                            max_size=3))
    return "".join(h + "\n" for h in headers) + "\n" + draw(st.sampled_from(["Hola", "", "--no es frontera"])) + "\n"


def stdlib_counts(raw: bytes) -> dict[str, int]:
    """Parts, deepest level and header fields of the message the stdlib's parser builds."""
    counts = {"parts": 0, "depth": 0, "headers": 0}
    stack = [(email.message_from_bytes(raw, policy=email.policy.compat32), 0)]
    while stack:
        part, level = stack.pop()
        counts["parts"] += 1
        counts["depth"] = max(counts["depth"], level)
        counts["headers"] += len(part.keys())
        if part.is_multipart():
            stack += [(child, level + 1) for child in part.get_payload()]
    return counts


@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
@given(part=mime_part(), newline=st.sampled_from(["\n", "\r\n", "\r"]))
def test_the_scan_counts_parts_depth_and_headers_as_the_parser_does(part, newline):
    """Each limit set to what the parser finds accepts the e-mail; one less refuses it (where a limit may go)."""
    raw = ("From: ana@colegio.edu.co\nSubject: Acceso\n" + part).replace("\n", newline).encode()
    loose = {"header_bytes": 10**9, "encoded_words": 10**9, "addresses": 10**9, "headers": 10**9, "parts": 10**9,
             "depth": 100}
    for name, found in stdlib_counts(raw).items():
        check_email_limits(raw, EmailLimits(**{**loose, name: found}))
        if found >= 2:
            with pytest.raises(EmailLimitError):
                check_email_limits(raw, EmailLimits(**{**loose, name: found - 1}))


@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
@given(raw=st.binary(max_size=3000) | st.lists(st.sampled_from(
    [b"--b", b"--b--", b"\r\n", b"\n", b"\r", b" ", b"Content-Type: multipart/mixed; boundary=b", b"From: a, b",
     b"Content-Type: message/rfc822", b"Content-Type: message/delivery-status", b"=?", b'"', b"X:", b":"]),
    max_size=60).map(b"".join))
def test_the_scan_only_ever_refuses_with_a_limit(raw):
    try:
        check_email_limits(raw, EmailLimits(200, 3, 2, 50, 4, 2))
    except EmailLimitError as exc:
        assert exc.value > exc.cap and str(exc.cap) in str(exc)


# ------------------------------------------------------------------------------------------------ what is read

@pytest.mark.parametrize("path", sorted(FIXTURES.glob("*.eml")), ids=lambda p: p.name)
def test_real_emails_are_read_as_the_stdlib_reads_them(path):
    """Within the limits nothing is refused, and the headers and text read with compat32 (linear) are those that
    policy.default's structured headers (quadratic on hostile input) give on real e-mails."""
    raw = path.read_bytes()
    parsed = message_from_rfc822(raw, limits=EmailLimits.from_settings(repo_settings()))
    reference = email.message_from_bytes(raw, policy=email.policy.default)
    assert parsed.message.subject == " ".join(str(reference["subject"] or "").split())
    sender = reference["from"].addresses[0].addr_spec if reference["from"] else None
    assert parsed.message.sender == sender
    assert parsed.message.id == (str(reference["message-id"] or "").strip().strip("<>") or None)
    body = reference.get_body(("plain", "html"))
    try:
        text = body.get_content() if body is not None else None
    except LookupError:  # an unknown charset: ingest falls back to UTF-8, then Windows-1252, where the stdlib stops
        text = None
    if text is not None and body.get_content_type() == "text/plain":
        assert text.strip() in parsed.message.body
    elif text is not None:
        assert parsed.message.body == html_to_text(text)


@pytest.mark.serial
@pytest.mark.parametrize("html", [b"<a " * 100_000, b"</" * 150_000, b"<a b='" * 50_000],
                         ids=["unclosed-tags", "unclosed-end-tags", "unclosed-attributes"])
def test_html_that_made_html_parser_quadratic_is_read_in_linear_time(client, html):
    """Python 3.11's html.parser took 5 s on 16 KB of "<a " and hours on 300 KB; lxml reads these in milliseconds."""
    raw = HEAD + b"Subject: Acceso\r\nContent-Type: text/html; charset=utf-8\r\n\r\n" + html
    response, seconds = post(client, raw)
    assert response.status_code == 200, response.text[:300]
    assert seconds < 1.0


def test_deeply_nested_comments_in_from_give_no_sender_not_a_crash(client):
    raw = b"From: " + b"(" * 8_000 + b"ana@colegio.edu.co" + b")" * 8_000 + b"\r\nSubject: Acceso" + TEXT
    response, _ = post(client, raw)
    assert response.status_code == 200, response.text[:300]
    assert response.json()["customer"]["matched_by"] is None


# ------------------------------------------------------------------------------------------------ the event loop

@pytest.mark.serial
def test_healthz_answers_while_a_large_email_is_parsed():
    """A 16 MB HTML e-mail (allowed by a raised body limit) takes seconds to read; it is read in a worker thread, so
    the event loop keeps answering /healthz meanwhile."""
    html = b"<p>x</p>\n" * 1_800_000
    raw = HEAD + b"Subject: Informe\r\nContent-Type: text/html; charset=utf-8\r\n\r\n" + html
    with tempfile.TemporaryDirectory() as tmp, running_server({
            "CLASSIFIER_MAX_BODY_BYTES": str(20_000_000), "CLASSIFIER_DATABASE_URL": f"sqlite:///{tmp}/store.sqlite3",
    }) as port:
        result: dict = {}

        def send() -> None:
            request = urllib.request.Request(f"http://127.0.0.1:{port}/v1/classify/email", data=raw,
                                             headers={"content-type": "message/rfc822"})
            started = time.perf_counter()
            with urllib.request.urlopen(request, timeout=120) as r:
                result["status"] = r.status
            result["seconds"] = time.perf_counter() - started

        sender = threading.Thread(target=send)
        sender.start()
        waits = []
        time.sleep(0.3)  # the body is on its way
        while sender.is_alive():
            started = time.perf_counter()
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=30) as r:
                assert json.loads(r.read()) == {"status": "ok"}
            waits.append(time.perf_counter() - started)
            time.sleep(0.05)
        sender.join()
    assert result["status"] == 200 and result["seconds"] > 1.0, result  # long enough to overlap
    assert len(waits) >= 5 and max(waits) < 1.0, (len(waits), max(waits), result)
