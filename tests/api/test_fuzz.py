"""Property-based fuzzing of the API against its own OpenAPI schema (schemathesis): no 5xx, no schema breaks."""

from __future__ import annotations

import tempfile
from pathlib import Path

import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error, response_schema_conformance

from api.main import create_app
from classifier.pipeline import Classifier
from classifier.store.db import upgrade
from tests.api.conftest import make_settings

_SETTINGS = make_settings(Path(tempfile.mkdtemp(prefix="fuzz-")), batch_limit=20)
APP = create_app(_SETTINGS)
upgrade(_SETTINGS.database_url)
APP.state.classifier = Classifier.load(_SETTINGS)  # what the lifespan does, once for the whole module



@schemathesis.serializer("message/rfc822")
def raw_email(ctx, value) -> bytes:
    """Generated e-mail bodies are sent as raw bytes, as the gateway does."""
    return value if isinstance(value, bytes) else str(value).encode("utf-8", errors="surrogatepass")


schema = schemathesis.openapi.from_asgi("/openapi.json", APP)


@schema.parametrize()
@settings(max_examples=15, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_server_errors_and_responses_match_the_schema(case):
    case.call_and_validate(checks=[not_a_server_error, response_schema_conformance])
