"""HTTP: throughput with wrk and latency at a fixed 200 req/s, /v1/classify against /healthz, 1 and 2 workers.

The server runs as uvicorn would in production (with a real SQLite store) and the load comes from another
process on loopback: wrk (Debian package) for the most requests per second (classify and healthz run back to
back, five times, and the median pair's ratio is reported with the lowest and highest), and an open-loop generator
for latency at a fixed rate (wrk cannot hold a rate). With one worker the server is pinned to the first
core and the load generators to the second.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from bench.report import Figure

BODY = {"channel": "email", "subject": "Boletines con error",
        "body": "Buenos días, al generar los boletines del tercer periodo a 3 de los 40 docentes les sale un error "
                "de promedio y el PDF queda en blanco. Les agradezco su colaboración a la mayor brevedad. "
                "Marta Gómez, coordinadora académica.",
        "received_at": "2026-11-25T09:00:00-05:00"}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _cores() -> list[int]:
    return sorted(os.sched_getaffinity(0))


def start_server(workers: int, tmp: Path) -> tuple[subprocess.Popen, int, float]:
    port = _free_port()
    env = {**os.environ, "CLASSIFIER_DATABASE_URL": f"sqlite:///{tmp / f'bench-{workers}.sqlite3'}",
           "CLASSIFIER_AUTO_MIGRATE": "false"}  # as `make run`: migrations applied once, before the workers
    cmd = [sys.executable, "-m", "uvicorn", "--factory", "api.main:app_factory", "--host", "127.0.0.1",
           "--port", str(port), "--no-access-log", "--log-level", "warning"]
    if workers > 1:
        cmd += ["--workers", str(workers)]
    elif len(_cores()) > 1:
        cmd = ["taskset", "-c", str(_cores()[0]), *cmd]
    subprocess.run([sys.executable, "-m", "classifier", "db", "upgrade"], env=env, check=True,
                   capture_output=True)
    started = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    while time.perf_counter() - started < 60:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=1) as r:
                if r.status == 200:
                    return proc, port, time.perf_counter() - started
        except OSError:
            time.sleep(0.05)
    proc.kill()
    raise RuntimeError("server did not become ready in 60 s")


def worker_rss_mb(proc: subprocess.Popen) -> float:
    """Resident memory of the serving process (the uvicorn process itself with one worker)."""
    pid = proc.pid
    children = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout.split()
    for candidate in [pid, *map(int, children)]:
        status = Path(f"/proc/{candidate}/status").read_text()
        if "uvicorn" in Path(f"/proc/{candidate}/cmdline").read_text():
            return int(re.search(r"VmRSS:\s+(\d+)", status).group(1)) / 1024
    return 0.0


def wrk(url: str, *, body: dict | None, seconds: int = 8, connections: int = 8) -> dict:
    script = None
    cmd = ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency", url]
    if body is not None:
        script = tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False)
        script.write('wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\n'
                     f"wrk.body = [==[{json.dumps(body, ensure_ascii=False)}]==]\n")
        script.close()
        cmd[1:1] = ["-s", script.name]
    if len(_cores()) > 1:
        cmd = ["taskset", "-c", str(_cores()[-1]), *cmd]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 30).stdout
    if script:
        os.unlink(script.name)
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    lat = {p: _ms(v) for p, v in re.findall(r"^\s+(50|99)%\s+(\S+)", out, re.M)}
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return {"rps": rps, "p50": lat.get("50"), "p99": lat.get("99"), "non_2xx": int(errors.group(1)) if errors else 0}


PAIRS, PAIR_SECONDS = 5, 5


def paired(base: str) -> tuple[dict, dict, list[float]]:
    """wrk on /v1/classify then /healthz, ``PAIRS`` times: the median run of each and the pairs' ratios, sorted. Each ratio compares two runs a few seconds apart, so a slow spell of the machine (a shared VM) moves
    both sides of it."""
    runs = [(wrk(base + "/v1/classify", body=BODY, seconds=PAIR_SECONDS), wrk(base + "/healthz", body=None,
                                                                           seconds=PAIR_SECONDS))
            for _ in range(PAIRS)]
    ratios = sorted(c["rps"] / h["rps"] for c, h in runs)
    classify = sorted((c for c, _ in runs), key=lambda r: r["rps"])[PAIRS // 2]
    health = sorted((h for _, h in runs), key=lambda r: r["rps"])[PAIRS // 2]
    return classify, health, ratios


def _ms(text: str) -> float:
    value = float(re.match(r"[\d.]+", text).group(0))
    return value / 1000 if text.endswith("us") else value * 1000 if text.endswith("s") and not text.endswith(
        "ms") else value


async def _fixed_rate(port: int, path: str, body: dict | None, rate: int, seconds: int, conns: int = 16) -> list[float]:
    """Open-loop load: request i leaves at t0 + i/rate on one of ``conns`` keep-alive connections."""
    payload = json.dumps(body, ensure_ascii=False).encode() if body is not None else b""
    method = "POST" if body is not None else "GET"
    head = (f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(payload)}\r\n\r\n").encode()
    pool: asyncio.Queue = asyncio.Queue()
    for _ in range(conns):
        pool.put_nowait(await asyncio.open_connection("127.0.0.1", port))
    latencies: list[float] = []
    loop = asyncio.get_running_loop()
    t0 = loop.time()

    async def one(i: int) -> None:
        await asyncio.sleep(max(0.0, t0 + i / rate - loop.time()))
        scheduled = t0 + i / rate
        reader, writer = await pool.get()
        writer.write(head + payload)
        await writer.drain()
        header = await reader.readuntil(b"\r\n\r\n")
        length = int(re.search(rb"content-length: (\d+)", header, re.I).group(1))
        await reader.readexactly(length)
        latencies.append((loop.time() - scheduled) * 1000)
        pool.put_nowait((reader, writer))

    await asyncio.gather(*(one(i) for i in range(rate * seconds)))
    while not pool.empty():
        _, writer = pool.get_nowait()
        writer.close()
    return latencies


def fixed_rate(port: int, path: str, body: dict | None, rate: int = 200, seconds: int = 10) -> dict:
    if len(_cores()) > 1:
        os.sched_setaffinity(0, {_cores()[-1]})
    latencies = sorted(asyncio.run(_fixed_rate(port, path, body, rate, seconds)))
    return {"p50": statistics.median(latencies), "p99": latencies[int(len(latencies) * 0.99) - 1],
            "count": len(latencies)}


def run() -> list[Figure]:
    if shutil.which("wrk") is None:
        return [Figure("HTTP benchmarks skipped: wrk is not installed (make bench installs it as root)", 0, "")]
    figures: list[Figure] = []
    all_cores = set(_cores())
    with tempfile.TemporaryDirectory() as tmp:
        for workers in (1, 2):
            proc, port, startup = start_server(workers, Path(tmp))
            try:
                base = f"http://127.0.0.1:{port}"
                for _ in range(50):  # warm up
                    urllib.request.urlopen(urllib.request.Request(
                        base + "/v1/classify", data=json.dumps(BODY).encode(),
                        headers={"content-type": "application/json"})).read()
                classify, health, ratios = paired(base)
                steady = fixed_rate(port, "/v1/classify", BODY)
                os.sched_setaffinity(0, all_cores)
                tag = f"{workers} worker" + ("s" if workers > 1 else "")
                figures += [
                    Figure(f"/v1/classify requests/s, {tag} (wrk, 8 connections)", classify["rps"], "req/s",
                           note=f"p50 {classify['p50']:.1f} ms, p99 {classify['p99']:.1f} ms, "
                                f"non-2xx {classify['non_2xx']}"),
                    Figure(f"/healthz requests/s, {tag} (wrk)", health["rps"], "req/s",
                           note=f"p50 {health['p50']:.2f} ms, p99 {health['p99']:.2f} ms"),
                    Figure(f"classify / healthz throughput ratio, {tag}", ratios[PAIRS // 2], "×",
                           0.2 if workers == 1 else None,
                           note=f"median of {PAIRS} back-to-back pairs of {PAIR_SECONDS} s runs "
                                f"(lowest {ratios[0]:.3f}, highest {ratios[-1]:.3f})"),
                    Figure(f"/v1/classify p99 at 200 req/s, {tag}", steady["p99"], "ms", 20.0,
                           higher_is_better=False, note=f"p50 {steady['p50']:.1f} ms over {steady['count']} requests"),
                ]
                if workers == 1:
                    figures += [
                        Figure("start-up to ready, one worker (rules and model loaded)", startup,
                               "s", 3.0, higher_is_better=False),
                        Figure("resident memory of one worker after the runs", worker_rss_mb(proc), "MB", 300.0,
                               higher_is_better=False),
                    ]
            finally:
                proc.terminate()
                proc.wait(timeout=30)
    return figures
