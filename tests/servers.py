"""A real uvicorn server for end-to-end tests, on a free loopback port."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from contextlib import contextmanager

from tests.conftest import ROOT


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(env: dict, port: int, factory: str = "api.main:app_factory", cwd=ROOT) -> subprocess.Popen:
    """A uvicorn process serving on ``port``, once its /readyz answers; ``cwd`` is its working directory (where
    relative settings such as ``models`` point)."""
    proc = subprocess.Popen([sys.executable, "-m", "uvicorn", "--factory", factory, "--host",
                             "127.0.0.1", "--port", str(port), "--log-level", "warning"], cwd=cwd,
                            env={**os.environ, **env}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 60
    while time.time() < deadline:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=1)
            return proc
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError("service did not start")


@contextmanager
def running_server(env: dict, factory: str = "api.main:app_factory", cwd=ROOT):
    port = free_port()
    proc = start_server(env, port, factory, cwd)
    try:
        yield port
    finally:
        proc.terminate()
        proc.wait(30)


def post_json(port: int, path: str, body: dict, headers: dict | None = None) -> dict:
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=json.dumps(body).encode(),
                                     headers={"content-type": "application/json", **(headers or {})})
    with urllib.request.urlopen(request, timeout=30) as r:
        return json.loads(r.read())
