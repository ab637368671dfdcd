"""HTTP: throughput with wrk and latency at a fixed 200 req/s, /v1/classify against /healthz, 1 and 2 workers;
then agents' reports over a store of 100,000 rows, alone and while /healthz is measured
(``python -m bench.bench_http reports`` runs only that part and prints its table).

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

from bench.report import Figure, table

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


def start_server(workers: int, tmp: Path, *, database_url: str | None = None, extra_env: dict | None = None
                 ) -> tuple[subprocess.Popen, int, float]:
    port = _free_port()
    env = {**os.environ, "CLASSIFIER_DATABASE_URL": database_url or f"sqlite:///{tmp / f'bench-{workers}.sqlite3'}",
           "CLASSIFIER_AUTO_MIGRATE": "false", **(extra_env or {})}  # as `make run`: migrations applied once, first
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
    return figures + run_reports()


# ---------------------------------------------------------------------------------------- reports over a full store

STORE_ROWS = 100_000
REPORTS = {"/v1/quality?weeks=104": "GET", "/review": "GET", "/v1/review": "GET",
           "/v1/review?order=least_confident": "GET", "/v1/feedback/export": "GET", "/v1/escalations/check": "POST"}
# The review console as agents use it: the default queue, each order, filters with a search, a customer, the
# overdue filter, decided messages a few pages in, the quality panel and the live count it polls.
CONSOLE = {"/review": "GET", "/review?order=closest_to_breach": "GET",
           "/review?needs_review=all&channel=email&q=plataforma": "GET",
           "/review?needs_review=all&customer=gimnasio-los-andes&overdue=false&order=closest_to_breach": "GET",
           "/review?needs_review=all&overdue=true&priority=alta&order=least_confident": "GET",
           "/review?state=decided&needs_review=all&priority=alta&page=3": "GET",
           "/review/quality": "GET", "/v1/review/waiting": "GET"}
# senders of the stored rows: customers of data/customers.yaml (one in arrears) and unknown ones
BENCH_SENDERS = (("coordinacion@sanmartin.edu.co", "col-san-martin", "Colegio San Martín de Porres"),
                 ("rectoria@gimnasiolosandes.edu.co", "gimnasio-los-andes", "Gimnasio Los Andes"),
                 ("compras@eltornillo.com.co", "ferreteria-el-tornillo", "Ferretería El Tornillo S.A.S."),
                 ("contabilidad@districosta.com", "distribuidora-costa", "Distribuidora de la Costa S.A."),
                 ("soporte@otra-empresa.com", None, None), (None, None, None))
BENCH_KEY = "clave-de-banco-de-pruebas"


def fill_store(url: str, rows: int, *, seed: int = 0, decided: float = 0.15, settings=None) -> None:
    """``rows`` realistic classifications spread over the last two years (real results of corpus messages, each
    stored under its own ids and times) and agents' decisions on a share of them, written with bulk INSERTs: a
    store of 100,000 rows in seconds, not through HTTP. The schema must be migrated already; ``settings`` (by
    default the environment's) say where the corpus, rules and model are."""
    import random
    from datetime import datetime, timedelta, timezone
    from zoneinfo import ZoneInfo

    from sqlalchemy import insert
    from uuid6 import uuid7

    from classifier.corpus import load_rows
    from classifier.ingest import Message
    from classifier.pipeline import Classifier
    from classifier.settings import get_settings
    from classifier.store.content_hash import message_hash
    from classifier.store.db import engine_for
    from classifier.store.tables import ClassificationRow, DecisionRow

    rng = random.Random(seed)
    settings = settings or get_settings()
    corpus = load_rows(settings.corpus_path)
    samples = [corpus[i] for i in sorted(rng.sample(range(len(corpus)), min(400, len(corpus))))]
    classifier = Classifier.load(settings)
    messages = [Message(None, r.channel, r.subject, r.body, None) for r in samples]
    templates = [(m, c.as_dict()) for m, c in zip(messages, classifier.classify_many(messages))]
    now = datetime.now(timezone.utc)
    bogota = ZoneInfo("America/Bogota")
    span = timedelta(weeks=104).total_seconds()
    priorities = ("muy_alta", "alta", "media", "baja", "muy_baja")
    engine = engine_for(url)
    with engine.begin() as conn:
        for start in range(0, rows, 5000):
            classifications, decisions = [], []
            for i in range(start, min(start + 5000, rows)):
                message, answer = templates[i % len(templates)]
                created = now - timedelta(seconds=rng.random() * span)
                received = (created - timedelta(seconds=rng.random() * 30)).astimezone(bogota)  # as the API stores it
                row_id, message_id = str(uuid7()), f"bench-{seed}-{i}"
                sender, customer_id, name = rng.choice(BENCH_SENDERS)
                classifications.append(dict(
                    id=row_id, message_id=message_id, channel=message.channel, subject=message.subject,
                    body=message.body, sender=sender, customer_id=None, received_at=received, created_at=created,
                    priority=answer["priority"], source=answer["source"], confidence=answer["confidence"],
                    needs_review=answer["needs_review"], model_priority=answer["model_priority"],
                    model_version=answer["model_version"], version=1, body_purged_at=None,
                    content_hash=message_hash(message),
                    result={**answer, "id": message_id, "classification_id": row_id,
                            "received_at": received.isoformat(),
                            "customer": {"id": customer_id, "name": name, "known": customer_id is not None,
                                         "matched_by": "sender" if customer_id else None}}))
                if rng.random() < decided:
                    kind = rng.choices(("accept", "change", "escalate"), (6, 3, 1))[0]
                    final = answer["priority"] if kind == "accept" else rng.choice(priorities)
                    decisions.append(dict(
                        id=str(uuid7()), classification_id=row_id, agent=f"agente-{rng.randrange(8)}",
                        decision=kind, priority=final, suggested_priority=answer["priority"],
                        level="N2" if kind == "escalate" else "N1", reason="banco de pruebas" if kind == "change"
                        else None, replaces=None, current=True,
                        created_at=created + timedelta(minutes=rng.randrange(1, 600))))
            conn.execute(insert(ClassificationRow.__table__), classifications)
            if decisions:
                conn.execute(insert(DecisionRow.__table__), decisions)


REPORT_TARGET_MS, HEALTHZ_P99_TARGET_MS = 300.0, 20.0
HAMMERED = ("/v1/quality?weeks=104", "/review", "/v1/feedback/export")


def _request(port: int, path: str, method: str = "GET") -> tuple[float, int]:
    """Milliseconds until the whole answer of a keyed request arrived, and its size."""
    started = time.perf_counter()
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", method=method,
                                     headers={"x-api-key": BENCH_KEY})
    with urllib.request.urlopen(request, timeout=120) as r:
        size = len(r.read())
    return (time.perf_counter() - started) * 1000, size


def _hammer(port: int, seconds: int, connections: int = 3) -> subprocess.Popen:
    """wrk on the heavy reports, round robin over ``connections`` connections, in the background."""
    script = tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False)
    paths = ", ".join(f'"{p}"' for p in HAMMERED)
    script.write(f'wrk.headers["X-API-Key"] = "{BENCH_KEY}"\nlocal paths = {{{paths}}}\nlocal i = 0\n'
                 "request = function()\n  i = i % #paths + 1\n  return wrk.format(nil, paths[i])\nend\n")
    script.close()
    cmd = ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--timeout", "30s", "-s", script.name,
           f"http://127.0.0.1:{port}"]
    if len(_cores()) > 1:
        cmd = ["taskset", "-c", str(_cores()[-1]), *cmd]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)


def run_reports(rows: int = STORE_ROWS, *, only_console: bool = False) -> list[Figure]:
    """Each report's and console view's latency over ``rows`` stored classifications, then /healthz at 50 req/s
    while wrk keeps three of them running: database work runs off the event loop, so liveness must not wait for
    reports. ``only_console``: the console's views alone, without the /healthz part."""
    if shutil.which("wrk") is None:
        return [Figure("report benchmarks skipped: wrk is not installed (make bench installs it as root)", 0, "")]
    from classifier.store.db import upgrade

    figures: list[Figure] = []
    all_cores = set(_cores())
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp) / 'reports.sqlite3'}"
        upgrade(url)
        started = time.perf_counter()
        fill_store(url, rows)
        figures.append(Figure(f"filling the store with {rows:,} classifications (bulk INSERT)",
                              time.perf_counter() - started, "s", note="realistic rows: stored results of corpus "
                                                                      "messages, 15 % with agents' decisions"))
        proc, port, _ = start_server(1, Path(tmp), database_url=url, extra_env={"CLASSIFIER_API_KEY": BENCH_KEY})
        try:
            for path, method in (CONSOLE if only_console else REPORTS | CONSOLE).items():
                _request(port, path, method)  # warm up: page cache, first query plans
                runs = sorted(_request(port, path, method) for _ in range(5))
                median, size = runs[2]
                figures.append(Figure(f"{method} {path} at {rows:,} rows", median, "ms", REPORT_TARGET_MS,
                                      higher_is_better=False,
                                      note=f"median of 5, slowest {runs[-1][0]:.0f} ms; {size / 1e6:.2f} MB"))
            if only_console:
                return figures
            hammer = _hammer(port, seconds=14)
            time.sleep(2)  # the reports are running
            health = fixed_rate(port, "/healthz", None, rate=50, seconds=10)
            os.sched_setaffinity(0, all_cores)
            out, _ = hammer.communicate(timeout=60)
            served = re.search(r"(\d+) requests in ([\d.]+)s", out)
            rate = f"{int(served.group(1)) / float(served.group(2)):.1f} reports/s" if served else "wrk gave no count"
            figures.append(Figure("/healthz p99 while three clients run reports without pause", health["p99"], "ms",
                                  HEALTHZ_P99_TARGET_MS, higher_is_better=False,
                                  note=f"p50 {health['p50']:.1f} ms over {health['count']} requests at 50/s; "
                                       f"{', '.join(HAMMERED)} served at {rate}"))
        finally:
            proc.terminate()
            proc.wait(timeout=30)
    return figures


if __name__ == "__main__":  # only the reports part (or the console's views), printed (bench/results/ is left as it is)
    if sys.argv[1:] not in (["reports"], ["console"]):
        raise SystemExit("usage: python -m bench.bench_http reports|console")
    print("\n".join(table(run_reports(only_console=sys.argv[1] == "console"))))
