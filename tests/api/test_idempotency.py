"""Message ids over HTTP: a repeated id is a retry only when it carries the same message; an id cannot be claimed
in advance, nor used to read the result stored for another message."""

from __future__ import annotations

import json
import random
import unicodedata
from concurrent.futures import ThreadPoolExecutor

from alembic import command
from fastapi.testclient import TestClient
from sqlalchemy import text

from api.main import create_app
from classifier.store.content_hash import content_hash
from classifier.store.db import alembic_config, engine_for, upgrade
from tests.api.conftest import make_settings
from tests.servers import free_port, start_server

REAL = {"id": "chat-100001", "channel": "chat", "received_at": "2026-11-25T09:00:00-05:00",
        "body": "la plataforma está caída, ningún docente del colegio puede entrar desde las 7",
        "sender": "coordinacion@sanmartin.edu.co"}
CLAIM = {"id": "chat-100001", "channel": "chat", "body": "ok"}


def assert_id_conflict(response, *, hidden: tuple[str, ...] = ()) -> None:
    """409 ``id_conflict`` in the one error shape, in Spanish, and nothing of any stored result."""
    assert response.status_code == 409, response.text[:300]
    body = response.json()
    assert set(body) == {"error", "request_id"} and body["error"]["code"] == "id_conflict"
    assert "otro mensaje" in body["error"]["message"] and body["error"]["fields"][0]["field"] == "id"
    for secret in ("priority", "acknowledgement", "classification_id", "customer", "muy_baja", *hidden):
        assert secret not in response.text


def test_an_id_claimed_in_advance_does_not_capture_the_real_message(client):
    claimed = client.post("/v1/classify", json=CLAIM)
    assert claimed.status_code == 200 and claimed.json()["priority"] == "muy_baja"

    real = client.post("/v1/classify", json=REAL)
    assert_id_conflict(real, hidden=(claimed.json()["classification_id"],))


def test_another_message_under_a_stored_id_reveals_nothing_of_it(client):
    stored = client.post("/v1/classify", json=REAL).json()
    assert stored["customer"]["name"] == "Colegio San Martín de Porres" and stored["rules"]

    probe = client.post("/v1/classify", json={"id": REAL["id"], "channel": "chat", "body": "x"})
    words = {ev["text"] for hit in stored["rules"] for ev in hit["evidence"]}
    assert_id_conflict(probe, hidden=(stored["classification_id"], "San Martín", *words))


def test_a_retry_of_the_same_message_returns_the_stored_result(client):
    first = client.post("/v1/classify", json=REAL).json()
    again = client.post("/v1/classify", json=REAL).json()
    assert again["duplicate"] is True and again["classification_id"] == first["classification_id"]
    assert {k: v for k, v in again.items() if k != "duplicate"} == {k: v for k, v in first.items() if k != "duplicate"}


def test_a_retry_is_recognised_through_normalisation_and_without_arrival_time(client):
    """The same text in another Unicode form or with CRLF line breaks, the sender in capitals, and no received_at
    (the gateway restamps, or the API stamps now): still the same message."""
    first = client.post("/v1/classify", json={**REAL, "body": REAL["body"] + "\nGracias"}).json()
    variant = {**REAL, "body": unicodedata.normalize("NFD", REAL["body"]) + "\r\nGracias  ",
               "sender": REAL["sender"].upper()}
    del variant["received_at"]
    again = client.post("/v1/classify", json=variant)
    assert again.status_code == 200 and again.json()["duplicate"] is True
    assert again.json()["classification_id"] == first["classification_id"]


def test_who_sent_it_is_part_of_the_message(client):
    client.post("/v1/classify", json=REAL)
    for other in ({"sender": "otra@eltornillo.com.co"}, {"customer_id": "ferreteria-el-tornillo"},
                  {"channel": "email"}, {"product": "academico"}):
        assert_id_conflict(client.post("/v1/classify", json={**REAL, **other}))


def test_a_batch_reports_a_conflicting_item_in_its_place(client):
    stored = client.post("/v1/classify", json=REAL).json()
    batch = client.post("/v1/classify/batch", json={"messages": [
        {"id": "nuevo-1", "channel": "chat", "body": "¿Cómo descargo el informe de asistencia?"},
        CLAIM,
        REAL,
        {"id": "doble", "channel": "chat", "body": "No carga la plataforma para ningún docente"},
        {"id": "doble", "channel": "chat", "body": "Gracias, ya quedó"},  # the same id twice in one batch
    ]})
    assert batch.status_code == 200, batch.text[:300]
    new, conflict, retry, first, twin = batch.json()["results"]
    assert new["priority"] and new["duplicate"] is False
    assert conflict == {"index": 1, "id": "chat-100001", "error": {
        "code": "id_conflict", "message": conflict["error"]["message"], "fields": [
            {"field": "id", "message": "ya usado por otro mensaje"}]}}
    assert retry["duplicate"] is True and retry["classification_id"] == stored["classification_id"]
    assert first["priority"] and first["duplicate"] is False
    assert twin["index"] == 4 and twin["error"]["code"] == "id_conflict" and "priority" not in twin


def test_an_email_with_a_reused_message_id_and_other_content_conflicts(client):
    def raw(body: str) -> bytes:
        return ("From: Ana <ana@sanmartin.edu.co>\r\nSubject: Plataforma\r\nMessage-ID: <abc-1@sanmartin.edu.co>\r\n"
                f"Date: Wed, 25 Nov 2026 09:00:00 -0500\r\n\r\n{body}\r\n").encode()

    post = lambda body: client.post("/v1/classify/email", content=raw(body), headers={"content-type": "message/rfc822"})
    text = "No carga la plataforma para ningún docente."
    first, again = post(text), post(text)
    assert first.status_code == 200 and again.json()["duplicate"] is True
    assert again.json()["classification_id"] == first.json()["classification_id"]
    assert_id_conflict(post("ok"))


def test_concurrent_posts_of_one_id_store_one_message_and_refuse_the_other(tmp_path):
    """Through group commit on a real server: whichever message wins the id, its retries are duplicates of it and
    every post of the other message gets 409, never the winner's result."""
    url = f"sqlite:///{tmp_path / 'store.sqlite3'}"
    upgrade(url)
    other = {**REAL, "body": "Buenas tardes, ¿cómo cambio la contraseña de un docente?"}
    posts = [REAL] * 8 + [other] * 8
    random.Random(7).shuffle(posts)
    port = free_port()
    proc = start_server({"CLASSIFIER_DATABASE_URL": url, "CLASSIFIER_AUTO_MIGRATE": "false",
                         "CLASSIFIER_CLASSIFY_REQUIRE_KEY": "false"}, port)
    try:
        with ThreadPoolExecutor(16) as pool:
            answers = list(pool.map(lambda body: _post(port, body), posts))
    finally:
        proc.terminate()
        proc.wait(30)
    created = [(body, answer) for body, (status, answer) in zip(posts, answers) if status == 200
               and not answer["duplicate"]]
    assert len(created) == 1
    winner = created[0][0]
    for body, (status, answer) in zip(posts, answers):
        if body is winner:
            assert status == 200 and answer["classification_id"] == created[0][1]["classification_id"]
        else:
            assert status == 409 and answer["error"]["code"] == "id_conflict"


def _post(port: int, body: dict) -> tuple[int, dict]:
    import urllib.error
    import urllib.request

    request = urllib.request.Request(f"http://127.0.0.1:{port}/v1/classify", data=json.dumps(body).encode(),
                                     headers={"content-type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=30) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_rows_stored_before_content_hashes_are_matched_by_their_stored_text(tmp_path, database_url):
    """Migration 0005 computes the hash of rows already stored from their subject and body; a row whose text is
    gone (purged, or never kept) keeps NULL and its id answers 409, never the stored result."""
    reference = f"sqlite:///{tmp_path / 'referencia.sqlite3'}"  # a real stored result, from today's code
    with TestClient(create_app(make_settings(tmp_path, database_url=reference))) as client:
        answer = {k: v for k, v in client.post("/v1/classify", json=REAL).json().items() if k != "duplicate"}
    command.upgrade(alembic_config(database_url), "0004")
    insert = text("INSERT INTO classifications (id, message_id, channel, subject, body, sender, customer_id, "
                  "received_at, created_at, priority, source, confidence, needs_review, result, version) VALUES "
                  "(:id, :message_id, 'chat', :subject, :body, :sender, NULL, '2026-11-25 14:00:00', "
                  "'2026-11-25 14:00:00', 'muy_alta', 'rule', 0.9, false, :result, 1)")
    with engine_for(database_url).begin() as conn:
        for row_id, message_id, body in (("c-1", REAL["id"], REAL["body"]), ("c-2", "purgado-1", None)):
            conn.execute(insert, {"id": row_id, "message_id": message_id, "subject": "" if body else None,
                                  "body": body, "sender": REAL["sender"],
                                  "result": json.dumps({**answer, "id": message_id, "classification_id": row_id})})
    upgrade(database_url)
    with engine_for(database_url).connect() as conn:
        hashes = dict(conn.execute(text("SELECT id, content_hash FROM classifications")).all())
    assert hashes == {"c-1": content_hash(channel="chat", subject="", body=REAL["body"], sender=REAL["sender"],
                                          customer_id=None, product=None), "c-2": None}

    with TestClient(create_app(make_settings(tmp_path, database_url=database_url))) as client:
        again = client.post("/v1/classify", json=REAL)
        assert again.status_code == 200 and again.json()["classification_id"] == "c-1" and again.json()["duplicate"]
        assert_id_conflict(client.post("/v1/classify", json={**REAL, "id": "purgado-1"}))
