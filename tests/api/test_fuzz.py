"""Property-based fuzzing of the API against its own OpenAPI schema (schemathesis): no 5xx, no schema breaks."""

from __future__ import annotations

import tempfile
from pathlib import Path

import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error, response_schema_conformance

from api.main import create_app
from classifier.pipeline import Classifier
from classifier.policy import PRIORITIES
from classifier.store.db import upgrade
from tests.api.conftest import make_settings
from tests.api.emails import emails

_SETTINGS = make_settings(Path(tempfile.mkdtemp(prefix="fuzz-")), batch_limit=20)
APP = create_app(_SETTINGS)
upgrade(_SETTINGS.database_url)
APP.state.classifier = Classifier.load(_SETTINGS)  # what the lifespan does, once for the whole module



# E-mail bodies come from an explicit strategy (well-formed MIME of every common shape, then damaged), not from
# the schema's "binary string", which would almost never look like an e-mail.
schemathesis.openapi.media_type("message/rfc822", emails())


schema = schemathesis.openapi.from_asgi("/openapi.json", APP)


@schema.parametrize()
@settings(max_examples=15, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_server_errors_and_responses_match_the_schema(case):
    case.call_and_validate(checks=[not_a_server_error, response_schema_conformance])


@given(raw=emails())
@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
def test_any_email_gets_a_classification_or_a_clear_refusal(raw):
    """Every generated e-mail, well-formed or damaged, is classified or refused in the one error shape; never a 5xx."""
    response = TestClient(APP).post("/v1/classify/email", content=raw, headers={"content-type": "message/rfc822"})
    assert response.status_code in (200, 409, 413, 422), response.text  # 409: a Message-ID reused by another e-mail
    body = response.json()
    if response.status_code == 200:
        assert body["priority"] in PRIORITIES and body["received_at"]
    else:
        assert body["error"]["code"] and body["error"]["message"] and body["request_id"]
