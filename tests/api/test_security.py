"""Keys by role, server-side review sessions, CSRF, security headers and the login rate limit, over HTTP against
the real app with a real store (SQLite file; PostgreSQL too where the store carries the decision)."""

from __future__ import annotations

import hashlib
import logging
import re
import time

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text

from api.main import create_app
from tests.api.conftest import KEY, make_settings
from tests.conftest import repo_settings

MSG = {"channel": "chat", "body": "la plataforma está caída desde las 7, nadie puede entrar"}
COOKIE = "revision_sesion"
GATEWAY, AGENT, ADMIN = "clave-pasarela-0001", "clave-agente-0001", "clave-admin-0001"


def login(c: TestClient, agent: str = "laura", key: str = KEY, accept: str = "*/*"):
    return c.post("/review/login", content=f"agent={agent}&api_key={key}", follow_redirects=False,
                  headers={"content-type": "application/x-www-form-urlencoded", "accept": accept})


def csrf(c: TestClient) -> str:
    """The CSRF token the review page gives its session (in a meta tag and in the logout form)."""
    page = c.get("/review")
    assert page.status_code == 200, page.text[:300]
    return re.search(r'<meta name="csrf-token" content="([^"]+)">', page.text).group(1)


def with_cookie(c: TestClient, value: str) -> TestClient:
    c.cookies.clear()
    c.cookies.set(COOKIE, value)
    return c


# --- keys and roles ------------------------------------------------------------------------------------------


def test_classify_needs_a_gateway_key_once_any_key_is_configured(tmp_path):
    """The real default (no override): CLASSIFIER_API_KEY set, so classify wants a key."""
    settings = repo_settings(database_url=f"sqlite:///{tmp_path / 'default.sqlite3'}", api_key=KEY)
    with TestClient(create_app(settings)) as c:
        assert c.post("/v1/classify", json=MSG).status_code == 401
        assert c.post("/v1/classify", json=MSG, headers={"x-api-key": "mala"}).status_code == 403
        assert c.post("/v1/classify", json=MSG, headers={"x-api-key": KEY}).status_code == 200


def test_classify_can_be_opened_for_a_trial(make_client):
    c = make_client(api_key=None, gateway_keys=GATEWAY, classify_require_key=False)
    assert c.post("/v1/classify", json=MSG).status_code == 200


def test_without_any_configured_key_classify_is_open_and_protected_endpoints_answer_503(make_client):
    c = make_client(api_key=None, classify_require_key=True)
    assert c.post("/v1/classify", json=MSG).status_code == 200
    for method, path in (("GET", "/v1/review"), ("GET", "/v1/feedback/export"), ("POST", "/v1/admin/reload")):
        r = c.request(method, path, headers={"x-api-key": KEY})
        assert r.status_code == 503 and "CLASSIFIER_API_KEY" in r.json()["error"]["message"]
    assert c.get("/healthz").status_code == 200  # the service still starts


ROLE_TABLE = [  # key, method, path, expected status: who may do what (README "Keys and roles")
    (GATEWAY, "POST", "/v1/classify", 200),
    (GATEWAY, "GET", "/v1/review", 403),
    (GATEWAY, "GET", "/v1/feedback/export", 403),
    (GATEWAY, "POST", "/v1/admin/reload", 403),
    (AGENT, "POST", "/v1/classify", 403),
    (AGENT, "GET", "/v1/review", 200),
    (AGENT, "GET", "/v1/quality", 200),
    (AGENT, "GET", "/review", 200),
    (AGENT, "POST", "/v1/admin/reload", 403),
    (AGENT, "GET", "/v1/feedback/export", 403),
    (AGENT, "POST", "/v1/escalations/check", 403),
    (ADMIN, "POST", "/v1/classify", 403),
    (ADMIN, "GET", "/v1/review", 200),  # admin implies agent
    (ADMIN, "POST", "/v1/admin/reload", 200),
    (ADMIN, "GET", "/v1/feedback/export", 200),
    (ADMIN, "POST", "/v1/escalations/check", 200),
    (KEY, "POST", "/v1/classify", 200),  # CLASSIFIER_API_KEY: every role
    (KEY, "GET", "/v1/review", 200),
    (KEY, "POST", "/v1/admin/reload", 200),
    (KEY, "GET", "/v1/feedback/export", 200),
    ("clave-desconocida", "GET", "/v1/review", 403),
]


def test_each_key_reaches_only_its_roles_endpoints(make_client):
    c = make_client(gateway_keys=f"otra-pasarela, {GATEWAY}", agent_keys=AGENT, admin_keys=ADMIN,
                   classify_require_key=True)
    for key, method, path, status in ROLE_TABLE:
        r = c.request(method, path, headers={"x-api-key": key}, json=MSG if path == "/v1/classify" else None)
        assert r.status_code == status, (key, path, r.text[:200])
        if status == 403:
            assert r.json()["error"]["code"] in ("api_key_invalid", "role_forbidden")


def test_a_session_has_the_role_of_the_key_that_opened_it(make_client):
    c = make_client(gateway_keys=GATEWAY, agent_keys=AGENT, admin_keys=ADMIN)
    assert login(c, key=GATEWAY).status_code == 403  # a gateway key opens no session
    assert login(c, key=AGENT).status_code == 303
    token = csrf(c)
    assert c.get("/v1/review").status_code == 200
    assert c.post("/v1/admin/reload", headers={"x-csrf-token": token}).status_code == 403
    assert c.get("/v1/feedback/export").status_code == 403
    assert login(c, key=ADMIN).status_code == 303
    assert c.post("/v1/admin/reload", headers={"x-csrf-token": csrf(c)}).status_code == 200


# --- server-side sessions ------------------------------------------------------------------------------------


def test_a_copied_cookie_stops_working_at_logout(tmp_path, database_url):
    with TestClient(create_app(make_settings(tmp_path, database_url=database_url))) as c:
        assert login(c).status_code == 303
        copied, token = c.cookies[COOKIE], csrf(c)
        # the copy works while the session is open (so the refusals below are the logout's doing)
        assert c.get("/v1/feedback/export").status_code == 200
        assert c.post("/v1/admin/reload", headers={"x-csrf-token": token}).status_code == 200
        logout = c.post("/review/logout", data={"csrf": token}, follow_redirects=False)
        assert logout.status_code == 303
        with_cookie(c, copied)
        assert c.get("/review").status_code == 401 and "Ingresar" in c.get("/review").text
        assert c.get("/v1/feedback/export").status_code == 401
        assert c.post("/v1/admin/reload", headers={"x-csrf-token": token}).status_code == 401


def test_the_store_keeps_only_a_digest_of_the_session_id_and_no_key(tmp_path):
    settings = make_settings(tmp_path)
    with TestClient(create_app(settings)) as c:
        login(c)
        cookie = c.cookies[COOKIE]
    with create_engine(settings.database_url).connect() as conn:
        rows = [dict(r._mapping) for r in conn.execute(text("SELECT * FROM review_sessions"))]
    assert len(rows) == 1 and rows[0]["agent"] == "laura" and rows[0]["role"] == "admin"
    dump = repr(rows)
    assert rows[0]["id"] == hashlib.sha256(cookie.encode()).hexdigest()
    assert cookie not in dump and KEY not in dump


def test_rotating_keys_ends_sessions_made_with_a_removed_key(tmp_path, database_url):
    both = make_settings(tmp_path, database_url=database_url, api_key=None, agent_keys="clave-vieja-1,clave-nueva-1")
    with TestClient(create_app(both)) as c:
        login(c, "laura", "clave-vieja-1")
        old = c.cookies[COOKIE]
        c.cookies.clear()
        login(c, "pedro", "clave-nueva-1")
        new = c.cookies[COOKIE]
        assert with_cookie(c, old).get("/v1/review").status_code == 200
    rotated = both.model_copy(update={"agent_keys": ("clave-nueva-1",)})
    with TestClient(create_app(rotated)) as c:
        assert with_cookie(c, old).get("/v1/review").status_code == 401
        assert with_cookie(c, old).get("/review").status_code == 401
        assert with_cookie(c, new).get("/v1/review").status_code == 200  # sessions live in the store


def test_sessions_expire(make_client):
    c = make_client(session_seconds=1)
    login(c)
    assert c.get("/v1/review").status_code == 200
    time.sleep(1.2)
    assert c.get("/v1/review").status_code == 401


# --- a session is bound to its agent ------------------------------------------------------------------------


def test_a_session_decides_only_as_its_own_agent(tmp_path, database_url):
    with TestClient(create_app(make_settings(tmp_path, database_url=database_url))) as c:
        cid = c.post("/v1/classify", json=MSG).json()["classification_id"]
        login(c, "laura")
        token = csrf(c)
        other = c.post("/v1/feedback", headers={"x-csrf-token": token},
                       json={"classification_id": cid, "agent": "pedro", "decision": "accept"})
        assert other.status_code == 403 and other.json()["error"]["code"] == "agent_mismatch"
        own = c.post("/v1/feedback", headers={"x-csrf-token": token},
                     json={"classification_id": cid, "agent": "laura", "decision": "accept"})
        assert own.status_code == 200 and own.json()["agent"] == "laura"
        c.cookies.clear()  # an API key without a session: the body's agent stands
        keyed = c.post("/v1/feedback", headers={"x-api-key": KEY},
                       json={"classification_id": cid, "agent": "pedro", "decision": "escalate", "replaces": True})
        assert keyed.status_code == 200 and keyed.json()["agent"] == "pedro"


# --- CSRF ----------------------------------------------------------------------------------------------------


def test_cookie_requests_that_change_state_need_the_csrf_token(client):
    cid = client.post("/v1/classify", json=MSG).json()["classification_id"]
    login(client)
    token = csrf(client)
    decision = {"classification_id": cid, "agent": "laura", "decision": "accept"}
    for headers in ({}, {"x-csrf-token": "falso"}, {"x-csrf-token": token[:-1] + ("0" if token[-1] != "0" else "1")}):
        r = client.post("/v1/feedback", json=decision, headers=headers)
        assert r.status_code == 403 and r.json()["error"]["code"] == "csrf_invalid", headers
        assert client.post("/v1/admin/reload", headers=headers).status_code == 403
        assert client.post("/v1/escalations/check", headers=headers).status_code == 403
        assert client.post("/review/logout", data={"csrf": headers.get("x-csrf-token", "")},
                           follow_redirects=False).status_code == 403
    assert client.get("/v1/review").status_code == 200  # the refused logout did not end the session
    assert client.post("/v1/feedback", json=decision, headers={"x-csrf-token": token}).status_code == 200
    client.cookies.clear()  # X-API-Key needs no token
    assert client.post("/v1/admin/reload", headers={"x-api-key": KEY}).status_code == 200


# --- headers -------------------------------------------------------------------------------------------------


def _assert_common_headers(r) -> None:
    assert r.headers["x-frame-options"] == "DENY"
    assert r.headers["x-content-type-options"] == "nosniff"
    assert r.headers["referrer-policy"] == "no-referrer"
    assert "frame-ancestors 'none'" in r.headers["content-security-policy"]


def test_security_headers_on_pages_and_json(client):
    login_page = client.get("/review")
    client.post("/v1/classify", json=MSG)
    login(client)
    queue = client.get("/review?needs_review=all")
    for r in (login_page, queue, client.get("/v1/review", headers={"x-api-key": KEY}),
              client.post("/v1/classify", json=MSG), client.get("/v1/no-existe")):
        _assert_common_headers(r)
        assert r.headers["cache-control"] == "no-store"
    for page in (login_page, queue):  # the page's own policy: nothing inline runs without this response's nonce
        policy = page.headers["content-security-policy"]
        nonce = re.search(r"'nonce-([^']+)'", policy).group(1)
        assert "unsafe-inline" not in policy and "default-src 'none'" in policy
        tags = re.findall(r"<(script|style)\b([^>]*)>", page.text)
        assert tags and all(f'nonce="{nonce}"' in attrs for _, attrs in tags)
        markup = re.sub(r"<script\b.*?</script>", "", page.text, flags=re.S)
        assert not re.search(r"\s(style|on[a-z]+)=", markup)  # no inline style or handler attributes


# --- login rate limit ----------------------------------------------------------------------------------------


def test_the_sixth_failed_login_from_one_address_gets_429(make_client):
    c = make_client(address="10.0.0.1")
    for i in range(5):
        assert login(c, f"agente{i}", "mala").status_code == 403
    r = login(c, "agente-nuevo", KEY)  # even the right key waits
    assert r.status_code == 429
    assert 0 < int(r.headers["retry-after"]) <= 300
    body = r.json()
    assert body["error"]["code"] == "too_many_logins" and "Demasiados intentos" in body["error"]["message"]
    assert body["request_id"]
    html = login(c, "otra", KEY, accept="text/html")
    assert html.status_code == 429 and "Demasiados intentos" in html.text and html.headers["retry-after"]


def test_failed_logins_for_one_agent_are_limited_across_addresses(tmp_path, database_url):
    settings = make_settings(tmp_path, database_url=database_url)  # the limiter lives in the store: every worker
    app = create_app(settings)
    with TestClient(app, client=("10.0.0.1", 1)) as first, TestClient(app, client=("10.0.0.2", 1)) as second:
        for c in (first, second, first, second, first):
            assert login(c, "laura", "mala").status_code == 403
        refused = login(second, "laura", KEY)
        assert refused.status_code == 429 and 0 < int(refused.headers["retry-after"]) <= 300
        assert login(second, "pedro", KEY).status_code == 303  # other agents from that address still log in


def test_the_limit_is_a_setting(make_client):
    c = make_client(login_max_failures=2, login_window_seconds=60)
    assert [login(c, "x", "mala").status_code for _ in range(3)] == [403, 403, 429]


# --- logs ----------------------------------------------------------------------------------------------------


def test_logs_hold_neither_bodies_nor_keys_nor_session_ids(client, caplog):
    loggers = [logging.getLogger(name) for name in ("clasificador", "clasificador.http")]
    for logger in loggers:
        logger.addHandler(caplog.handler)
    try:
        with caplog.at_level(logging.INFO):
            client.post("/v1/classify", json={**MSG, "body": "secreto-del-cliente caída"},
                        headers={"x-api-key": KEY})
            login(client)
            client.get("/review")
            login(client, "laura", "clave-erronea-xyz")
    finally:
        for logger in loggers:
            logger.removeHandler(caplog.handler)
    text_ = " ".join(str(r.__dict__) for r in caplog.records)
    assert caplog.records and "secreto-del-cliente" not in text_ and KEY not in text_
    assert "clave-erronea-xyz" not in text_ and client.cookies[COOKIE] not in text_
