"""Killing the service mid-write loses no committed feedback, and a restart recovers."""

from __future__ import annotations

import json
import os
import signal
import threading
import time
import urllib.error
import urllib.request

from tests.servers import free_port, post_json, start_server

KEY = "clave-de-prueba-crash"


def _post(port: int, path: str, body: dict, key: bool = False) -> dict:
    return post_json(port, path, body, {"x-api-key": KEY} if key else None)


def test_kill_mid_write_loses_no_committed_feedback(tmp_path):
    env = {"CLASSIFIER_DATABASE_URL": f"sqlite:///{tmp_path / 'crash.sqlite3'}",
           "CLASSIFIER_API_KEY": KEY, "CLASSIFIER_CLASSIFY_REQUIRE_KEY": "false"}  # classify open, as before
    port = free_port()
    server = start_server(env, port)
    ids = [_post(port, "/v1/classify", {"id": f"c-{i}", "channel": "chat", "body": f"el reporte {i} sale mal"}
                 )["classification_id"] for i in range(400)]
    acknowledged: list[str] = []

    def agent() -> None:
        for cid in ids:
            try:
                _post(port, "/v1/feedback", {"classification_id": cid, "agent": "laura", "decision": "accept"},
                      key=True)
            except (OSError, urllib.error.URLError):
                return
            acknowledged.append(cid)

    worker = threading.Thread(target=agent)
    worker.start()
    while len(acknowledged) < 50:
        time.sleep(0.01)
    os.kill(server.pid, signal.SIGKILL)  # no shutdown, no flush: the process just dies
    worker.join(30)
    server.wait(10)
    assert 50 <= len(acknowledged) < len(ids)

    server = start_server(env, port)
    try:
        request = urllib.request.Request(f"http://127.0.0.1:{port}/v1/feedback/export", headers={"x-api-key": KEY})
        with urllib.request.urlopen(request, timeout=30) as r:
            stored = {json.loads(line)["id"] for line in r.read().decode().splitlines()}
        assert set(acknowledged) <= stored
        assert _post(port, "/v1/classify", {"channel": "chat", "body": "hola"})["priority"] == "muy_baja"
    finally:
        server.terminate()
        server.wait(30)
