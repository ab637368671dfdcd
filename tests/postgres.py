"""A real PostgreSQL server for the test run, started in a temporary directory and stopped afterwards.

Debian's ``postgresql`` package provides the binaries (``make test`` installs it when missing). ``initdb``
refuses to run as root, so as root the server runs as the ``postgres`` user.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time
from contextlib import contextmanager


def _bin(name: str) -> str:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    if not found:
        raise RuntimeError(f"PostgreSQL's {name} not found: install Debian's postgresql package (make test does)")
    return found[-1]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def postgres_server():
    """Yield a SQLAlchemy URL of a fresh database on a private server."""
    base = tempfile.mkdtemp(prefix="pgtest-")
    data = os.path.join(base, "data")
    as_root = os.geteuid() == 0
    prefix = ["runuser", "-u", "postgres", "--"] if as_root else []
    if as_root:
        shutil.chown(base, "postgres", "postgres")
        os.chmod(base, 0o700)
    port = _free_port()
    subprocess.run([*prefix, _bin("initdb"), "-D", data, "-U", "postgres", "-A", "trust", "-E", "UTF8",
                    "--no-sync"], check=True, capture_output=True, timeout=120)
    subprocess.run([*prefix, _bin("pg_ctl"), "-D", data, "-l", os.path.join(base, "log"), "-w", "-t", "60",
                    "-o", f"-p {port} -k {base} -h 127.0.0.1 -c fsync=off", "start"],
                   check=True, capture_output=True, timeout=120)
    try:
        for _ in range(100):
            if subprocess.run([_bin("pg_isready"), "-h", "127.0.0.1", "-p", str(port)],
                              capture_output=True).returncode == 0:
                break
            time.sleep(0.1)
        subprocess.run([_bin("createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", "postgres", "clasificador"],
                       check=True, capture_output=True, timeout=60)
        yield f"postgresql+psycopg://postgres@127.0.0.1:{port}/clasificador"
    finally:
        subprocess.run([*prefix, _bin("pg_ctl"), "-D", data, "-m", "fast", "-w", "stop"], capture_output=True,
                       timeout=120)
        shutil.rmtree(base, ignore_errors=True)
