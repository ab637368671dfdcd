"""Hostile input on every path (HTTP and command line): a clear error or a result, never a crash or a hang."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings, strategies as st

from api.main import create_app
from tests.api.conftest import KEY, make_settings
from tests.conftest import ROOT

NASTY_TEXT = st.one_of(
    st.text(max_size=300),
    st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=300),  # every script, emoji included
    st.text(alphabet="\x00\x01\x07\x08\x0b\x0c\x1b\x7f\u200b\u202e\ufeff\n\r\t ", max_size=80),  # control chars
    st.sampled_from(["🔥" * 200, "مرحبا Привет 你好 la plataforma está caída", "\u202e" * 50 + "caída",
                     "a" * 200_000, "no " * 40_000, "<script>alert(1)</script>", "' OR 1=1 --", "%s%n%x" * 50]),
)


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    with TestClient(create_app(make_settings(tmp_path_factory.mktemp("robust")))) as c:
        yield c


def _ok_or_clear_error(response) -> None:
    assert response.status_code < 500, response.text[:300]
    body = response.json()
    if response.status_code >= 400:
        assert body["error"]["code"] and body["error"]["message"]
    else:
        assert body["priority"] in ("muy_alta", "alta", "media", "baja", "muy_baja")


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(subject=NASTY_TEXT, body=NASTY_TEXT, channel=st.sampled_from(["email", "chat"]))
def test_any_text_gets_a_result_or_a_clear_error(client, subject, body, channel):
    if channel == "chat":
        subject = ""
    _ok_or_clear_error(client.post("/v1/classify", json={"channel": channel, "subject": subject, "body": body}))


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(raw=st.binary(max_size=2000))
def test_random_bytes_on_every_post_endpoint(client, raw):
    for path, ctype in (("/v1/classify", "application/json"), ("/v1/classify/batch", "application/json"),
                        ("/v1/sla", "application/json"), ("/v1/classify/email", "message/rfc822")):
        r = client.post(path, content=raw, headers={"content-type": ctype})
        assert r.status_code < 500, (path, raw[:50], r.text[:200])
        if r.status_code >= 400:
            assert r.json()["error"]["code"]


@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
@given(value=st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=20),
                          lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8),
                                                                                              children, max_size=4),
                          max_leaves=30))
def test_arbitrary_json_shapes(client, value):
    r = client.post("/v1/classify", content=json.dumps(value), headers={"content-type": "application/json"})
    assert r.status_code < 500 and (r.status_code == 200 or r.json()["error"]["code"])


@pytest.mark.parametrize("depth", [10, 33, 1000, 100_000])
def test_deeply_nested_json(client, depth):
    raw = b'{"channel": "chat", "body": ' + b"[" * depth + b"]" * depth + b"}"
    r = client.post("/v1/classify", content=raw, headers={"content-type": "application/json"})
    assert r.status_code in (400, 413, 422) and r.json()["error"]["code"]


@pytest.mark.parametrize(
    "raw",
    [
        b"Subject: =?utf-8?B?!!!notbase64?=\r\nContent-Type: multipart/mixed; boundary=x\r\n\r\n--x\r\n",
        b"Content-Type: text/plain; charset=utf-99\r\nContent-Transfer-Encoding: base64\r\n\r\n@@@###",
        b"From: <<<>>>\r\nDate: not a date\r\nReceived: garbage; also not a date\r\nSubject: hola\r\n\r\nayuda",
        b"Subject: " + "🔥".encode() * 500 + b"\r\n\r\n" + b"\xff\xfe\xfd" * 1000,
        b"\x00" * 5000,
        b"MIME-Version: 1.0\r\nContent-Type: multipart/alternative\r\n\r\nno boundary at all",
    ],
)
def test_broken_mime(client, raw):
    r = client.post("/v1/classify/email", content=raw, headers={"content-type": "message/rfc822"})
    assert r.status_code < 500 and (r.status_code == 200 or r.json()["error"]["code"])


def test_command_line_answers_every_hostile_line():
    lines = [
        b"\xff\xfe not utf-8",
        b"[" * 10000 + b"]" * 10000,
        json.dumps({"id": "e", "channel": "chat", "body": "🔥" * 5000}).encode(),
        json.dumps({"id": "c", "channel": "chat", "body": "\x00\x1b[31m caída \u202e"}).encode(),
        json.dumps({"id": "n", "channel": "chat", "body": None}).encode(),
        json.dumps([1, 2]).encode(),
        b'{"id": "x", "channel": "email", "subject": "hola", "body": "' + b"a" * 300_000 + b'"}',
    ]
    for command in (["score"], ["sla"]):
        proc = subprocess.run([sys.executable, "-m", "classifier", *command], input=b"\n".join(lines) + b"\n",
                              capture_output=True, cwd=ROOT, timeout=180)
        assert proc.returncode == 0, proc.stderr[-500:]
        out = [json.loads(line) for line in proc.stdout.decode("utf-8").splitlines()]
        assert len(out) == len(lines), (command, len(out))
        assert all("error" in o or "priority" in o for o in out)


def test_nul_and_lone_surrogates_are_stored_on_both_stores_and_refused_in_feedback(tmp_path, database_url):
    """PostgreSQL text cannot hold NUL: a customer's message with one is still classified, stored and found again
    by its id (NUL shown as U+FFFD), and an agent's feedback with one gets a 422 naming the field."""
    message = {"id": "nul\x00-1", "channel": "email", "subject": "Caída\x00", "body": "No carga la\x00 plataforma",
               "sender": "ana\x00@colegio.edu.co", "customer_id": "c\x00"}
    raw = (b"From: Ana <ana@colegio.edu.co>\r\nSubject: hola\r\nMessage-ID: <nul-2@colegio.edu.co>\r\n"
           b"Date: Wed, 25 Nov 2026 09:00:00 -0500\r\n\r\nNo carga\x00 la plataforma\r\n")
    with TestClient(create_app(make_settings(tmp_path, database_url=database_url))) as client:
        first = client.post("/v1/classify", json=message)
        assert first.status_code == 200, first.text[:300]
        assert first.json()["id"] == "nul\ufffd-1"
        again = client.post("/v1/classify", json=message).json()
        assert again["duplicate"] and again["classification_id"] == first.json()["classification_id"]
        batch = client.post("/v1/classify/batch", json={"messages": [message, {"channel": "chat", "body": "a\x00"}]})
        assert batch.status_code == 200 and all("priority" in r for r in batch.json()["results"])
        # Lone surrogates (valid JSON escapes, not valid text): a clear 422 naming the field where the schema checks
        # it, else (a batch item's body) a classification with U+FFFD in their place, never a 500.
        lone = b'{"channel": "chat", "subject": "\\ud83d", "body": "No carga \\udc00 la plataforma"}'
        single = client.post("/v1/classify", content=lone, headers={"content-type": "application/json"})
        assert single.status_code == 422 and single.json()["error"]["fields"][0]["field"] == "subject"
        batch = client.post("/v1/classify/batch", content=b'{"messages": [' + lone + b', {"channel": "chat", '
                            b'"body": "No carga \\udc00 la plataforma"}]}', headers={"content-type": "application/json"})
        assert batch.status_code == 200, batch.text[:300]
        refused, classified = batch.json()["results"]
        assert refused["error"]["fields"][0]["field"] == "subject" and classified["priority"]
        email = client.post("/v1/classify/email", content=raw, headers={"content-type": "message/rfc822"})
        assert email.status_code == 200, email.text[:300]
        feedback = client.post("/v1/feedback", headers={"x-api-key": KEY}, json={
            "classification_id": first.json()["classification_id"], "agent": "laura\x00", "decision": "accept"})
        assert feedback.status_code == 422
        assert [f["field"] for f in feedback.json()["error"]["fields"]] == ["agent"]
        accepted = client.post("/v1/feedback", headers={"x-api-key": KEY}, json={
            "classification_id": first.json()["classification_id"], "agent": "laura", "decision": "accept"})
        assert accepted.status_code == 200, accepted.text[:300]
        for agent, status in (("ana%00", 403), ("ana", 303)):  # the review page's login names the agent too
            login = client.post("/review/login", content=f"agent={agent}&api_key={KEY}",
                                headers={"content-type": "application/x-www-form-urlencoded"}, follow_redirects=False)
            assert login.status_code == status


def test_overlong_message_ids_and_senders_of_e_mails_fit_both_stores(tmp_path, database_url):
    """The JSON API refuses ids over 512 characters; an e-mail's headers are taken as they come, so an over-long
    Message-ID is shortened with a digest of the whole: stored, found again, and distinct from a near twin."""
    def raw(message_id: str) -> bytes:
        return (f"From: {'a' * 600}@sanmartin.edu.co\r\nSubject: Consulta\r\nMessage-ID: <{message_id}>\r\n"
                "Date: Wed, 25 Nov 2026 09:00:00 -0500\r\n\r\n¿Cómo descargo el informe de asistencia?\r\n").encode()

    long_id = "x" * 700 + "@colegio.edu.co"
    with TestClient(create_app(make_settings(tmp_path, database_url=database_url))) as client:
        post = lambda m: client.post("/v1/classify/email", content=raw(m), headers={"content-type": "message/rfc822"})
        first, again, twin = post(long_id), post(long_id), post(long_id.replace("@", "@x."))
        assert first.status_code == again.status_code == twin.status_code == 200, first.text[:300]
        assert len(first.json()["id"]) == 512 and again.json()["duplicate"]
        assert first.json()["customer"]["id"] == "col-san-martin"  # the shortened sender keeps its domain
        assert again.json()["classification_id"] == first.json()["classification_id"]
        assert twin.json()["id"] != first.json()["id"] and not twin.json()["duplicate"]


STORED_TEXT = st.one_of(st.text(alphabet=st.characters(blacklist_categories=()), max_size=40),  # surrogates too
                        st.text(alphabet="\x00\x7f\ud800\udfff\ufffd aé", max_size=20), st.none())


def test_any_text_in_any_stored_field_is_stored_on_postgresql_and_found_again(postgres_url, tmp_path):
    """PostgreSQL is stricter than SQLite about text (NUL, surrogates, lengths): every field a batch item stores
    gets arbitrary text; each item is classified or refused in its place, and a retry finds what was stored."""
    settings_ = make_settings(tmp_path, database_url=postgres_url, auto_migrate=True)
    with TestClient(create_app(settings_)) as client:
        @settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
        @given(items=st.lists(st.fixed_dictionaries({"id": STORED_TEXT, "subject": STORED_TEXT, "body": STORED_TEXT,
                                                     "sender": STORED_TEXT, "customer_id": STORED_TEXT,
                                                     "channel": st.just("email")}), min_size=1, max_size=4))
        def check(items):
            post = lambda: client.post("/v1/classify/batch", content=json.dumps({"messages": items}).encode(),
                                       headers={"content-type": "application/json"})
            first = post()
            assert first.status_code == 200, first.text[:300]
            again = post().json()["results"]
            for before, after in zip(first.json()["results"], again):
                assert "priority" in before or before["error"]["code"] in ("invalid_message", "id_conflict")
                if "priority" in before and before["id"]:
                    assert after["duplicate"] and after["classification_id"] == before["classification_id"]

        check()
