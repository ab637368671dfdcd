"""POST /v1/classify/email with real RFC 822 fixtures: charsets, HTML, replies, forwards, attachments."""

from __future__ import annotations

from tests.conftest import ROOT

FIXTURES = ROOT / "tests/fixtures/emails"


def post(client, name, **kwargs):
    raw = (FIXTURES / name).read_bytes()
    return client.post("/v1/classify/email", content=raw, headers={"content-type": "message/rfc822",
                                                                   **kwargs.pop("headers", {})}, **kwargs)


def test_latin1_quoted_printable_with_encoded_subject(client):
    body = post(client, "latin1_quoted_printable.eml").json()
    assert body["priority"] == "muy_alta" and body["id"] == "20261125091355.4411@sanmartin.edu.co"
    assert body["received_at_source"] == "received_header" and body["received_at"] == "2026-11-25T09:14:03-05:00"
    assert body["customer"]["id"] == "col-san-martin"
    assert any(e["text"].lower().startswith("ningún") or "caída" in e["text"].lower()
               for r in body["rules"] for e in r["evidence"])


def test_html_only_windows_1252_base64(client):
    body = post(client, "html_only_cp1252_base64.eml").json()
    assert body["priority"] == "alta"
    assert body["customer"]["id"] == "distribuidora-costa" and body["handled_by"]["kind"] == "distribuidor"


def test_reply_with_attachments_counts_them_and_ignores_the_quote(client):
    body = post(client, "reply_with_attachments.eml").json()
    assert body["attachments"] == 2
    assert body["priority"] not in ("muy_alta", "alta")  # "plataforma caída" lives only in the quoted reply
    assert "servicio_caido" not in [r["id"] for r in body["rules"]]


def test_forwarded_outlook_thread_uses_the_gateway_time(client):
    body = post(client, "forwarded_outlook.eml").json()
    assert body["received_at_source"] == "gateway" and body["received_at"] == "2026-12-01T18:45:02-05:00"
    assert body["priority"] == "muy_alta" and body["request_type"] == "acceso"


def test_received_at_query_parameter_wins(client):
    r = post(client, "latin1_quoted_printable.eml", params={"received_at": "2026-11-25T10:00:00-05:00"})
    assert r.json()["received_at"] == "2026-11-25T10:00:00-05:00" and r.json()["received_at_source"] == "gateway"


def test_broken_mime_still_gets_a_result(client):
    r = post(client, "broken_mime.eml")
    assert r.status_code == 200 and r.json()["received_at_source"] == "arrival"


def test_wrong_content_type_is_415(client):
    r = client.post("/v1/classify/email", content=b"x", headers={"content-type": "application/json"})
    assert r.status_code == 415 and r.json()["error"]["code"] == "unsupported_media_type"


def test_empty_or_headerless_email_is_422(client):
    for raw in (b"", b"\r\n\r\n"):
        r = client.post("/v1/classify/email", content=raw, headers={"content-type": "message/rfc822"})
        assert r.status_code == 422, raw


def test_naive_received_at_query_is_422(client):
    r = post(client, "latin1_quoted_printable.eml", params={"received_at": "2026-11-25T10:00:00"})
    assert r.status_code == 422 and "no lleva zona horaria" in r.json()["error"]["message"]


def test_an_email_with_only_an_attachment_is_classified_not_refused(client):
    """POLICY §1: an empty body or only an attachment is muy_baja; the gateway still files the ticket."""
    r = post(client, "attachment_only.eml")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["priority"] == "muy_baja" and body["attachments"] == 1
    assert body["customer"]["id"] == "gimnasio-los-andes"
