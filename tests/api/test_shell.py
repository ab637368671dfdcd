"""The application shell over HTTP: offline API docs, model reload without traffic, route labels in /metrics,
unexpected errors (500), 415 for bodies that are not JSON, and bounds on numbers."""

from __future__ import annotations

import http.client
import json
import logging
import os
import re
import shutil
import subprocess
import sys
import time
import urllib.request

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from api.deps import get_classifier
from api.main import JsonLogFormatter, create_app
from classifier.artefacts import read_manifest, write_manifest
from tests.api.conftest import KEY, make_settings
from tests.conftest import ROOT, repo_settings
from tests.servers import running_server

CHROMIUM = "/usr/bin/chromium"  # Debian's, as in test_review_page.py; no browser is ever downloaded
MESSAGE = {"channel": "chat", "body": "No podemos ingresar a la plataforma desde esta mañana."}
CLIENT_DATA = "dato-sensible-del-cliente"
ERROR_500 = {"code": "internal_error", "message": "Error interno; el equipo fue notificado.", "fields": []}


def requests_counted(client: TestClient) -> dict[tuple[str, str, str], float]:
    """clasificador_requests_total from /metrics, by (method, route, status)."""
    counts = {}
    for family in text_string_to_metric_families(client.get("/metrics").text):
        if family.name == "clasificador_requests":
            for s in family.samples:
                if s.name == "clasificador_requests_total":
                    counts[(s.labels["method"], s.labels["route"], s.labels["status"])] = s.value
    return counts


@pytest.fixture
def app_logs(caplog):
    """Records of the service's loggers (they do not propagate to the root logger, where caplog listens)."""
    logger = logging.getLogger("clasificador")
    logger.addHandler(caplog.handler)
    caplog.handler.setLevel(logging.INFO)
    yield caplog
    logger.removeHandler(caplog.handler)


# --- 1. /docs works without internet --------------------------------------------------------------------------


def test_docs_page_references_only_files_the_service_serves(client):
    page = client.get("/docs")
    assert page.status_code == 200
    absolute = re.findall(r"""(?:https?:)?//[^\s"'<>)]+""", page.text)
    assert [u for u in absolute if not u.startswith("http://testserver/")] == []
    assets = re.findall(r"""<(?:script|link)\b[^>]*?\b(?:src|href)=["']([^"']+)""", page.text)
    spec = re.findall(r"""\burl:\s*["']([^"']+)""", page.text)
    assert len(assets) >= 2 and spec == ["/openapi.json"], page.text  # at least Swagger UI's script and styles
    for url in assets + spec:
        assert client.get(url).status_code == 200, url
    assert client.get("/redoc").status_code == 404  # no second docs page that would load from a CDN


def test_docs_page_renders_every_operation_in_a_browser_without_internet(tmp_path):
    playwright = pytest.importorskip("playwright.sync_api")
    env = {"CLASSIFIER_DATABASE_URL": f"sqlite:///{tmp_path / 'docs.sqlite3'}"}
    with running_server(env) as port:
        base = f"http://127.0.0.1:{port}"
        with urllib.request.urlopen(f"{base}/openapi.json", timeout=10) as r:
            operations = sum(len(methods) for methods in json.loads(r.read())["paths"].values())
        outside: list[str] = []
        with playwright.sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, headless=True,
                                        args=["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                                              "--disable-component-update", "--no-first-run"])
            page = browser.new_page()

            def only_the_service(route):
                if route.request.url.startswith(base + "/") or route.request.url.startswith("data:"):
                    route.continue_()
                else:
                    outside.append(route.request.url)
                    route.abort()

            page.route("**/*", only_the_service)
            page.goto(f"{base}/docs")
            page.wait_for_selector(".opblock", timeout=15_000)
            shown = page.locator(".opblock").count()
            browser.close()
    assert outside == [] and shown == operations


# --- 2. every worker follows the manifest, with or without traffic ---------------------------------------------


def copy_models(tmp_path):
    models = tmp_path / "models"
    shutil.copytree(ROOT / "models", models, ignore=shutil.ignore_patterns("*.png", "evaluation*.json"))
    manifest = read_manifest(models)
    assert manifest.get("previous"), "the test needs two model versions in models/manifest.json"
    return models, manifest["current"]["model_version"], manifest["previous"][0]["model_version"]


def model_command(models, *args: str) -> None:
    subprocess.run([sys.executable, "-m", "classifier", "model", *args], cwd=ROOT, check=True, capture_output=True,
                   env={**os.environ, "CLASSIFIER_MODELS_DIR": str(models)})


def served_version(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=5) as r:
        return json.loads(r.read())["model_version"]


def seconds_until_served(port: int, version: str, limit: float) -> float:
    started = time.monotonic()
    while served_version(port) != version:
        assert time.monotonic() - started < limit, f"{version} not served after {limit} s"
        time.sleep(0.05)
    return time.monotonic() - started


@pytest.mark.serial
def test_rollback_and_promote_are_served_without_any_classify_request(tmp_path):
    models, current, previous = copy_models(tmp_path)
    env = {"CLASSIFIER_MODELS_DIR": str(models), "CLASSIFIER_DATABASE_URL": f"sqlite:///{tmp_path / 's.sqlite3'}",
           "CLASSIFIER_MODEL_CHECK_SECONDS": "0.5"}
    with running_server(env) as port:
        assert served_version(port) == current
        model_command(models, "rollback")
        assert seconds_until_served(port, previous, 2.5) < 2.5
        model_command(models, "promote", current)
        assert seconds_until_served(port, current, 2.5) < 2.5


def test_a_refused_model_is_logged_and_the_verified_one_keeps_serving(tmp_path, make_client, app_logs):
    models, current, previous = copy_models(tmp_path)
    client = make_client(models_dir=models, model_check_seconds=0.1)
    manifest = read_manifest(models)
    entry = manifest["previous"][0]
    (models / entry["serving"]["artefact"]).write_bytes(b"not the file the manifest hashed")
    write_manifest(models, {**manifest, "current": entry, "previous": [manifest["current"]]})
    deadline = time.monotonic() + 3
    while not any(r.getMessage() == "model reload refused" for r in app_logs.records):
        assert time.monotonic() < deadline, "the refused model was not logged"
        time.sleep(0.05)
    refused = next(r for r in app_logs.records if r.getMessage() == "model reload refused")
    assert refused.levelno == logging.ERROR and previous in json.loads(JsonLogFormatter().format(refused))["error"]
    assert client.get("/readyz").json()["model_version"] == current
    assert client.post("/v1/classify", json=MESSAGE).status_code == 200


def test_the_model_watcher_stops_with_the_app(tmp_path):
    app = create_app(make_settings(tmp_path, model_check_seconds=0.1))
    with TestClient(app):
        watcher = app.state.model_watcher
        assert not watcher.done()
    assert watcher.cancelled()


# --- 3. /metrics: one series per route template -----------------------------------------------------------------


def test_metrics_label_each_route_by_its_template_and_unknown_paths_by_one_label(client):
    keyed = {"x-api-key": KEY}
    client.get("/v1/review", headers=keyed)
    client.get("/v1/quality", headers=keyed)
    client.post("/v1/escalations/check", headers=keyed)
    client.post("/v1/classify", json=MESSAGE)
    client.post("/v1/feedback", json={}, headers=keyed)
    asset = re.search(r"""<script\b[^>]*?\bsrc=["']([^"']+)""", client.get("/docs").text).group(1)
    assert client.get(asset).status_code == 200  # a file of a mounted folder: labelled by the mount's template
    client.get("/no/existe/1")
    client.get("/no/existe/2")
    labels = {route for _, route, _ in requests_counted(client)}
    assert {"/v1/review", "/v1/quality", "/v1/escalations/check", "/v1/classify", "/v1/feedback", "/docs",
            asset.rsplit("/", 1)[0] + "/{path}", "unmatched"} <= labels
    assert "other" not in labels and not any(label.startswith("/no/") for label in labels)


def test_metrics_label_a_parametrised_route_by_its_template(tmp_path):
    app = create_app(make_settings(tmp_path))

    @app.get("/v1/prueba/{item_id}/detalle")
    async def detail(item_id: str) -> dict:
        return {"id": item_id}

    with TestClient(app) as client:
        for item in ("a1", "b2", "c3"):
            assert client.get(f"/v1/prueba/{item}/detalle").status_code == 200
        counts = requests_counted(client)
    assert counts[("GET", "/v1/prueba/{item_id}/detalle", "200")] >= 3
    assert not any("a1" in route or "b2" in route for _, route, _ in counts)


def test_requests_refused_before_routing_keep_their_route_label(make_client):
    client = make_client(max_body_bytes=1_000)
    before = requests_counted(client).get(("POST", "/v1/classify", "413"), 0)
    assert client.post("/v1/classify", json={**MESSAGE, "body": "x" * 2_000}).status_code == 413
    assert requests_counted(client)[("POST", "/v1/classify", "413")] == before + 1


# --- 4. unexpected errors ----------------------------------------------------------------------------------------


def broken_classifier():
    raise RuntimeError(f"fallo simulado con {CLIENT_DATA}")


def test_an_unexpected_error_is_a_500_in_the_one_shape_logged_and_counted(client, app_logs):
    client.app.dependency_overrides[get_classifier] = broken_classifier
    before = requests_counted(client).get(("GET", "/v1/policy", "500"), 0)
    r = client.get("/v1/policy", headers={"x-request-id": "prueba-500"})
    assert r.status_code == 500 and r.headers["x-request-id"] == "prueba-500"
    assert r.json() == {"error": ERROR_500, "request_id": "prueba-500"}
    lines = [json.loads(JsonLogFormatter().format(rec)) for rec in app_logs.records
             if getattr(rec, "request_id", None) == "prueba-500" and rec.levelno >= logging.ERROR]
    assert any(line["msg"] == "unexpected error" and line["error"] == "RuntimeError" for line in lines), lines
    assert any(line["msg"] == "request" and line["status"] == 500 for line in lines), lines
    assert CLIENT_DATA not in json.dumps(lines)  # the exception's message may quote client data
    assert requests_counted(client)[("GET", "/v1/policy", "500")] == before + 1


def broken_app_factory() -> FastAPI:
    """For uvicorn: the real app whose routes that need the classifier fail unexpectedly."""
    app = create_app()
    app.dependency_overrides[get_classifier] = broken_classifier
    return app


def test_a_500_keeps_the_keep_alive_connection_open(tmp_path):
    env = {"CLASSIFIER_DATABASE_URL": f"sqlite:///{tmp_path / 's.sqlite3'}"}
    with running_server(env, factory="tests.api.test_shell:broken_app_factory") as port:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        conn.request("GET", "/v1/policy")
        first = conn.getresponse()
        assert first.status == 500 and json.loads(first.read())["error"]["code"] == "internal_error"
        assert first.getheader("x-request-id") and first.getheader("connection") != "close"
        sock = conn.sock
        conn.request("GET", "/healthz")
        second = conn.getresponse()
        assert second.status == 200 and json.loads(second.read()) == {"status": "ok"}
        assert conn.sock is sock  # the same TCP connection, not a reconnection
        conn.close()


# --- 5. 415 for a body that is not JSON ---------------------------------------------------------------------------


def json_body_operations() -> list[tuple[str, str]]:
    """Every operation of the app's routes that takes a JSON body, as its OpenAPI schema lists them."""
    paths = create_app(repo_settings()).openapi()["paths"]  # building the app opens no database
    return sorted((method.upper(), path) for path, methods in paths.items() for method, op in methods.items()
                  if "application/json" in op.get("requestBody", {}).get("content", {}))


def test_json_operations_are_listed():
    assert {("POST", "/v1/classify"), ("POST", "/v1/classify/batch"), ("POST", "/v1/sla"),
            ("POST", "/v1/feedback")} <= set(json_body_operations())


@pytest.mark.parametrize(("method", "path"), json_body_operations())
def test_a_body_that_is_not_json_gets_415(client, method, path):
    for ctype in ("text/plain", "application/x-www-form-urlencoded", "text/plain; charset=utf-8", None):
        headers = {"x-api-key": KEY} | ({"content-type": ctype} if ctype else {})
        r = client.request(method, path, content=json.dumps(MESSAGE).encode(), headers=headers)
        assert r.status_code == 415, (ctype, r.text)
        error = r.json()["error"]
        assert error["code"] == "unsupported_media_type" and error["message"].startswith("Envíe"), error
        assert "application/json" in error["message"] and r.json()["request_id"]


def test_json_with_a_charset_and_rfc822_mail_are_still_accepted(client):
    r = client.post("/v1/classify", content=json.dumps(MESSAGE).encode(),
                    headers={"content-type": "application/json; charset=utf-8"})
    assert r.status_code == 200
    mail = (b"From: coordinacion@sanmartin.edu.co\r\nSubject: Plataforma caida\r\n"
            b"Date: Fri, 27 Nov 2026 16:30:00 -0500\r\n\r\nNingun docente puede ingresar.\r\n")
    r = client.post("/v1/classify/email", content=mail, headers={"content-type": "message/rfc822"})
    assert r.status_code == 200, r.text


def test_an_empty_body_without_content_type_is_still_a_missing_field(client):
    r = client.post("/v1/classify")
    assert r.status_code == 422 and r.json()["error"]["fields"][0]["field"] == "body"


# --- 6. numbers beyond what the service can hold ------------------------------------------------------------------


def test_a_5000_digit_integer_is_invalid_json(client):
    raw = b'{"channel": "chat", "body": "hola", "id": ' + b"9" * 5000 + b"}"
    r = client.post("/v1/classify", content=raw, headers={"content-type": "application/json"})
    assert r.status_code == 400, r.text
    assert r.json()["error"]["code"] == "invalid_json" and r.json()["request_id"]
    assert "cifras" in r.json()["error"]["message"]


@pytest.mark.parametrize("offset", ["9223372036854775808", "1" + "0" * 30])
def test_an_offset_beyond_any_row_is_a_422_not_a_500(client, offset):
    r = client.get(f"/v1/review?offset={offset}", headers={"x-api-key": KEY})
    assert r.status_code == 422, r.text
    assert r.json()["error"]["code"] == "invalid_request"
    assert r.json()["error"]["fields"][0]["field"] == "offset"
