"""A store that cannot write, over HTTP: 503 ``store_unavailable`` with Retry-After (not a 500), /readyz not ready
while writes fail and ready again once the store takes them, on SQLite and PostgreSQL.

The faults are the databases' own refusals, made so that they hold for root too (chmod does not stop root):
SQLite's ``query_only`` and ``max_page_count`` on every connection (the errors a read-only file and a full disk
give), and a PostgreSQL database switched to read-only transactions with its sessions ended.
"""

from __future__ import annotations

import time
from contextlib import contextmanager

from fastapi.testclient import TestClient
from sqlalchemy import create_engine, event, text

from api.main import create_app
from classifier.store.db import engine_for
from tests.api.conftest import KEY, make_settings

H = {"x-api-key": KEY}
HOLD = 1  # CLASSIFIER_STORE_RETRY_AFTER_SECONDS here: Retry-After, and how long /readyz waits before a probe write
MESSAGE = {"channel": "chat", "body": "No carga la plataforma para ningún docente desde esta mañana",
           "received_at": "2026-11-25T09:00:00-05:00"}


@contextmanager
def sqlite_pragma(url: str, pragma: str):
    """Every connection the app opens from now on runs ``pragma`` (those it holds are closed first)."""
    def apply(dbapi_connection, _record):
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA {pragma}")
        cursor.close()

    engine = engine_for(url)
    event.listen(engine, "connect", apply)
    engine.dispose()
    try:
        yield
    finally:
        event.remove(engine, "connect", apply)
        engine.dispose()


@contextmanager
def postgres_read_only(url: str):
    """The database accepts only read-only transactions, as a replica or a full disk's emergency setting: new
    sessions get it, and the app's sessions are ended so that it reconnects into it."""
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    end_others = text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() "
                      "AND pid <> pg_backend_pid()")
    with admin.connect() as conn:
        conn.execute(text("ALTER DATABASE clasificador SET default_transaction_read_only = on"))
        conn.execute(end_others)
        try:
            yield
        finally:
            conn.execute(text("ALTER DATABASE clasificador RESET default_transaction_read_only"))
            conn.execute(end_others)
    admin.dispose()


def read_only(url: str):
    if url.startswith("sqlite"):
        return sqlite_pragma(url, "query_only = ON")
    return postgres_read_only(url)


def assert_store_unavailable(response) -> None:
    assert response.status_code == 503, response.text[:300]
    body = response.json()
    assert body["error"]["code"] == "store_unavailable" and body["error"]["fields"] == []
    assert "reintente" in body["error"]["message"] and body["request_id"]
    assert response.headers["retry-after"] == str(HOLD)


def settings_for(tmp_path, url: str):
    return make_settings(tmp_path, database_url=url, store_retry_after_seconds=HOLD)


def test_a_read_only_store_answers_503_and_readyz_follows_it(tmp_path, database_url):
    with TestClient(create_app(settings_for(tmp_path, database_url))) as client:
        stored = client.post("/v1/classify", json=MESSAGE).json()
        assert client.get("/readyz").status_code == 200

        with read_only(database_url):
            assert_store_unavailable(client.post("/v1/classify", json={**MESSAGE, "id": "m-1"}))
            ready = client.get("/readyz")
            assert ready.status_code == 503 and ready.json() == {"status": "not_ready", "reason": "store_unavailable"}
            assert_store_unavailable(client.post("/v1/classify/batch", json={"messages": [MESSAGE, MESSAGE]}))
            assert_store_unavailable(client.post("/v1/feedback", headers=H, json={
                "classification_id": stored["classification_id"], "agent": "laura", "decision": "accept"}))
            assert client.get("/v1/review", headers=H).status_code == 200  # reads still work
            time.sleep(HOLD)
            assert client.get("/readyz").status_code == 503  # the probe write is refused too

        time.sleep(HOLD)
        assert client.get("/readyz").status_code == 200  # the probe finds the store writable: no traffic needed
        again = client.post("/v1/classify", json={**MESSAGE, "id": "m-1"})
        assert again.status_code == 200 and again.json()["duplicate"] is False


def test_a_full_sqlite_store_answers_503(tmp_path):
    url = f"sqlite:///{tmp_path / 'store.sqlite3'}"
    with TestClient(create_app(settings_for(tmp_path, url))) as client:
        with engine_for(url).connect() as conn:
            pages = conn.exec_driver_sql("PRAGMA page_count").scalar()
        with sqlite_pragma(url, f"max_page_count = {pages}"):  # not one page more: "database or disk is full"
            batch = [{**MESSAGE, "id": f"lleno-{i}", "body": f"{MESSAGE['body']} ({i})"} for i in range(40)]
            assert_store_unavailable(client.post("/v1/classify/batch", json={"messages": batch}))
            assert client.get("/readyz").status_code == 503
        assert client.post("/v1/classify/batch", json={"messages": batch}).status_code == 200
        assert client.get("/readyz").status_code == 200  # a write succeeded: ready at once


def test_an_unreachable_store_answers_503_on_reads_too(tmp_path):
    """The file's directory replaced by a file: no connection can open it (SQLite "unable to open database")."""
    folder = tmp_path / "almacen"
    url = f"sqlite:///{folder / 'store.sqlite3'}"
    with TestClient(create_app(settings_for(tmp_path, url))) as client:
        assert client.post("/v1/classify", json=MESSAGE).status_code == 200
        folder.rename(tmp_path / "almacen-movido")
        folder.write_text("no es un directorio")
        engine_for(url).dispose()  # the connections it held were opened before the fault
        assert_store_unavailable(client.post("/v1/classify", json={**MESSAGE, "id": "m-2"}))
        assert_store_unavailable(client.get("/v1/quality", headers=H))
        assert client.get("/readyz").status_code == 503
