"""POST /v1/classify and /v1/classify/batch over HTTP: results, idempotency and every input error."""

from __future__ import annotations

import pytest

MSG = {"channel": "email", "subject": "Plataforma caída",
       "body": "Desde las 7 ningún docente puede ingresar a la plataforma.",
       "received_at": "2026-11-27T16:30:00-05:00", "sender": "coordinacion@sanmartin.edu.co"}


def test_classify_returns_the_flat_result(client):
    r = client.post("/v1/classify", json=MSG)
    assert r.status_code == 200
    body = r.json()
    for key in ("classification_id", "priority", "response_due", "solution_due", "confidence", "source",
                "needs_review", "impact", "request_type", "rules", "committed", "reason", "level", "handled_by",
                "customer", "model_version", "acknowledgement"):
        assert key in body
    assert body["priority"] == "muy_alta" and body["level"] == "N1"
    assert body["response_due"] == "2026-11-30T07:30:00-05:00"  # Friday 16:30 + 1 h: 30 min Fri, 30 min Mon
    assert body["customer"]["id"] == "col-san-martin" and body["handled_by"]["kind"] == "empresa"
    assert body["rules"][0]["evidence"][0]["field"] in ("subject", "body")
    assert "lunes 30 de noviembre de 2026, 7:30 a. m." in body["acknowledgement"]
    assert "Muy alta".lower() in body["acknowledgement"]


def test_acknowledgement_outside_hours_says_when_service_resumes(client):
    r = client.post("/v1/classify", json={**MSG, "received_at": "2026-11-28T10:00:00-05:00"})
    assert "se reanuda el lunes 30 de noviembre de 2026, 7:00 a. m." in r.json()["acknowledgement"]


def test_same_id_returns_the_same_classification(client):
    first = client.post("/v1/classify", json={**MSG, "id": "m-1"}).json()
    second = client.post("/v1/classify", json={**MSG, "id": "m-1"}).json()
    assert second["classification_id"] == first["classification_id"] and second["duplicate"] is True
    other = client.post("/v1/classify", json={**MSG, "id": "m-1", "body": "otro texto"})  # tests/api/test_idempotency.py
    assert other.status_code == 409 and other.json()["error"]["code"] == "id_conflict"


def test_received_at_defaults_to_now(client):
    body = client.post("/v1/classify", json={"channel": "chat", "body": "¿Cómo cambio mi contraseña?"}).json()
    assert body["received_at"] and body["priority"] == "media"


def test_empty_body_under_a_subject_is_classified(client):
    r = client.post("/v1/classify", json={"channel": "email", "subject": "Urgente", "body": ""})
    assert r.status_code == 200 and r.json()["priority"] == "muy_baja"


def test_customer_in_arrears_has_no_committed_deadlines(client):
    body = client.post("/v1/classify", json={**MSG, "sender": "caja@eltornillo.com.co"}).json()
    assert body["committed"] is False and body["response_due"] is None and "pago" in body["reason"]


def test_distributor_customer_names_the_distributor(client):
    body = client.post("/v1/classify", json={**MSG, "customer_id": "gimnasio-los-andes"}).json()
    assert body["handled_by"]["kind"] == "distribuidor" and body["handled_by"]["channels"]


def test_long_message_is_truncated_and_says_so(client):
    r = client.post("/v1/classify", json={"channel": "email", "subject": "Informe",
                                          "body": "la plataforma no carga para nadie. " * 3000})
    assert r.status_code == 200 and r.json()["truncated"] is True


@pytest.mark.parametrize(
    ("payload", "status", "code", "field"),
    [
        ({**MSG, "received_at": "2026-11-27T16:30:00"}, 422, "invalid_request", "received_at"),
        ({**MSG, "channel": "fax"}, 422, "invalid_request", "channel"),
        ({**MSG, "body": 42}, 422, "invalid_request", "body"),
        ({"subject": "x", "body": "y"}, 422, "invalid_request", "channel"),
        ({"channel": "chat", "subject": "", "body": "   "}, 422, "invalid_message", None),
        ([1, 2, 3], 422, "invalid_request", None),
    ],
)
def test_bad_messages_get_a_clear_4xx(client, payload, status, code, field):
    r = client.post("/v1/classify", json=payload)
    assert r.status_code == status
    err = r.json()["error"]
    assert err["code"] == code and err["message"]
    if field:
        assert any(f["field"] == field for f in err["fields"]), err


@pytest.mark.parametrize(
    ("raw", "ctype", "status", "code"),
    [
        (b'{"channel": "chat", "body": ', "application/json", 400, "invalid_json"),
        (b'{"channel": "chat", "body": "\xff\xfe"}', "application/json", 400, "invalid_utf8"),
        (b"[" * 5000 + b"]" * 5000, "application/json", 400, "json_too_deep"),
        (b'{"channel": "chat", "body": "' + b"a" * 1_100_000 + b'"}', "application/json", 413, "body_too_large"),
    ],
)
def test_malformed_bodies_get_the_same_error_shape(client, raw, ctype, status, code):
    r = client.post("/v1/classify", content=raw, headers={"content-type": ctype})
    assert r.status_code == status and r.json()["error"]["code"] == code and r.json()["request_id"]


def test_batch_answers_in_order_with_errors_in_place(client):
    items = [MSG, {**MSG, "channel": "fax"}, {"channel": "chat", "body": "hola"}, "not an object",
             {**MSG, "received_at": "2026-11-27T16:30:00"}]
    r = client.post("/v1/classify/batch", json={"messages": items})
    assert r.status_code == 200
    results = r.json()["results"]
    assert len(results) == 5
    assert results[0]["priority"] == "muy_alta" and results[2]["priority"] == "muy_baja"
    assert results[1]["error"]["fields"][0]["field"] == "channel" and results[1]["index"] == 1
    assert "error" in results[3] and "error" in results[4]


def test_batch_over_the_limit_is_413(make_client):
    c = make_client(batch_limit=3)
    r = c.post("/v1/classify/batch", json={"messages": [MSG] * 4})
    assert r.status_code == 413 and r.json()["error"]["code"] == "batch_too_large"


def test_unknown_route_and_method_use_the_error_shape(client):
    assert client.get("/v1/nada").json()["error"] == {"code": "not_found", "message": "No existe ese recurso.",
                                                      "fields": []}
    wrong = client.delete("/v1/classify").json()["error"]
    assert wrong["code"] == "method_not_allowed" and wrong["message"].startswith("Ese método HTTP no está permitido")
    assert client.get("/v1/classify").json()["error"]["code"] == "method_not_allowed"


@pytest.mark.parametrize("product, kind", [
    ("academico", "distribuidor"),            # the distributor's contract names it
    ("facturacion_electronica", "empresa"),   # not in the contract: the company handles it (POLICY §5)
    (None, "distribuidor"),                   # unknown product: the contract's distributor
])
def test_distributor_routing_follows_the_contract_products(client, product, kind):
    body = client.post("/v1/classify", json={"channel": "email", "sender": "rectoria@glandes.edu.co",
                                             "body": "La facturación electrónica nos rechaza las facturas.",
                                             **({"product": product} if product else {})}).json()
    assert body["handled_by"]["kind"] == kind


def test_an_unknown_product_is_a_clear_error(client):
    r = client.post("/v1/classify", json={**MSG, "product": "cafeteria"})
    assert r.status_code == 422 and "cafeteria" in r.json()["error"]["message"]
    assert "facturacion_electronica" in r.json()["error"]["message"]


@pytest.mark.parametrize("body, field, words", [
    ({"channel": "fax", "body": "hola"}, "channel", "valor no permitido: use 'email' o 'chat'"),
    ({"body": "hola"}, "channel", "campo obligatorio"),
    ({"channel": "chat", "body": "x", "received_at": "ayer"}, "received_at", "ISO 8601"),
    ({"channel": "chat", "body": "x", "subject": "a" * 2001}, "subject", "máximo 2000"),
])
def test_field_errors_are_in_spanish(client, body, field, words):
    r = client.post("/v1/classify", json=body)
    assert r.status_code == 422
    fields = {f["field"]: f["message"] for f in r.json()["error"]["fields"]}
    assert words in fields[field], fields
