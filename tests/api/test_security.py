"""API key: constant-time check, 401/403/503, classify optionally keyed; bodies and keys never logged."""

from __future__ import annotations

import logging

from tests.api.conftest import KEY

MSG = {"channel": "chat", "body": "la plataforma está caída desde las 7, nadie puede entrar"}


def test_classify_is_open_by_default(client):
    assert client.post("/v1/classify", json=MSG).status_code == 200


def test_classify_can_require_the_key(make_client):
    c = make_client(classify_require_key=True)
    assert c.post("/v1/classify", json=MSG).status_code == 401
    assert c.post("/v1/classify", json=MSG, headers={"x-api-key": "mala"}).status_code == 403
    assert c.post("/v1/classify", json=MSG, headers={"x-api-key": KEY}).status_code == 200


def test_without_a_configured_key_protected_endpoints_answer_503(make_client):
    c = make_client(api_key=None, classify_require_key=True)
    r = c.post("/v1/classify", json=MSG)
    assert r.status_code == 503 and "CLASSIFIER_API_KEY" in r.json()["error"]["message"]
    assert c.get("/healthz").status_code == 200  # the service still starts


def test_logs_hold_neither_bodies_nor_keys(client, caplog):
    logger = logging.getLogger("clasificador.http")
    logger.addHandler(caplog.handler)
    try:
        with caplog.at_level(logging.INFO, logger="clasificador.http"):
            client.post("/v1/classify", json={**MSG, "body": "secreto-del-cliente caída"},
                        headers={"x-api-key": KEY})
    finally:
        logger.removeHandler(caplog.handler)
    text = " ".join(str(r.__dict__) for r in caplog.records)
    assert caplog.records and "secreto-del-cliente" not in text and KEY not in text
