"""The real app over HTTP (TestClient) with a temporary SQLite file."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from api.main import create_app
from classifier.settings import Settings
from tests.conftest import repo_settings

KEY = "clave-de-prueba-123"


def make_settings(tmp_path, **overrides) -> Settings:
    """Classify stays open here (its tests are about classifying); tests/api/test_security.py checks the default."""
    return repo_settings(**{"database_url": f"sqlite:///{tmp_path / 'store.sqlite3'}", "api_key": KEY,
                            "classify_require_key": False, **overrides})


@pytest.fixture
def client(tmp_path):
    with TestClient(create_app(make_settings(tmp_path))) as c:
        yield c


@pytest.fixture
def make_client(tmp_path):
    """A client of an app built from the test defaults plus ``overrides``, seen as coming from ``address``."""
    clients = []

    def factory(*, address: str = "testclient", **overrides):
        c = TestClient(create_app(make_settings(tmp_path, **overrides)), client=(address, 50000))
        c.__enter__()
        clients.append(c)
        return c

    yield factory
    for c in clients:
        c.__exit__(None, None, None)
