"""Several machines, one service: two instances (one worker each, separate working directories and model copies)
over one PostgreSQL server, as behind a load balancer.

``/v1/classify`` throughput of each instance alone, then of both loaded at once (one wrk per instance, as a load
balancer spreads connections), and the ratio of the two instances together to the sum of each alone; then how long
a promotion takes, from its commit to both instances serving it. On a 2-core machine the instances, the load
generators and PostgreSQL share the two cores, so "both" cannot reach the sum: the ratio says how close it gets.
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path

from bench.bench_http import BODY, _free_port, wrk
from bench.report import Figure

ROOT = Path(__file__).resolve().parent.parent
RUNS, SECONDS, CONNECTIONS = 3, 5, 8
PROMOTIONS = 6


def _env(url: str) -> dict:
    return {**os.environ, "CLASSIFIER_DATABASE_URL": url, "CLASSIFIER_AUTO_MIGRATE": "false",
            "CLASSIFIER_MODELS_DIR": "models", "CLASSIFIER_POLICY_PATH": str(ROOT / "rules/policy.yaml"),
            "CLASSIFIER_RULES_DIR": str(ROOT / "rules/prioridad"),
            "CLASSIFIER_CUSTOMERS_PATH": str(ROOT / "data/customers.yaml"), "CLASSIFIER_DATA_DIR": str(ROOT / "data")}


def _start(url: str, machine: Path) -> tuple[subprocess.Popen, int]:
    port = _free_port()
    proc = subprocess.Popen([sys.executable, "-m", "uvicorn", "--factory", "api.main:app_factory", "--host",
                             "127.0.0.1", "--port", str(port), "--no-access-log", "--log-level", "warning"],
                            cwd=machine, env=_env(url), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if _ready(port)["model_registry"]["listening"]:
                return proc, port
        except OSError:
            pass
        time.sleep(0.05)
    proc.kill()
    raise RuntimeError("instance did not become ready in 60 s")


def _ready(port: int) -> dict:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=5) as r:
        return json.loads(r.read())


def _cpu(pids: list[int]) -> float:
    """CPU seconds (user + system) the processes have used so far."""
    total = 0
    for pid in pids:
        with suppress(OSError):
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def _postgres_pids(port: int) -> list[int]:
    """The test server's postmaster (the one started with ``-p port``) and its children (one per connection)."""
    stats = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with suppress(OSError):
                stats[int(entry.name)] = ((entry / "cmdline").read_bytes(),
                                          int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1]))
    wanted = (b"-p", str(port).encode())
    master = [pid for pid, (cmdline, _) in stats.items()
              if wanted in zip(cmdline.split(b"\0"), cmdline.split(b"\0")[1:])]
    return master + [pid for pid, (_, parent) in stats.items() if parent in master]


@dataclass
class Load:
    """One load run: requests per second in all and per instance, and the CPU each part used, in cores."""

    rps: float
    each: list[float]
    cores: dict[str, float]


def _load(ports: list[int], instances: list[int], pg_port: int) -> Load:
    """/v1/classify on every port at once, one wrk each; the CPU used meanwhile by the instances, PostgreSQL and the
    load generators (the children this process waited for: the wrk runs)."""
    results: dict[int, dict] = {}

    def one(port: int) -> None:
        results[port] = wrk(f"http://127.0.0.1:{port}/v1/classify", body=BODY, seconds=SECONDS,
                            connections=CONNECTIONS)

    pg = _postgres_pids(pg_port)
    before = (_cpu(instances), _cpu(pg), resource.getrusage(resource.RUSAGE_CHILDREN), time.monotonic())
    threads = [threading.Thread(target=one, args=(port,)) for port in ports]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    after = (_cpu(instances), _cpu(pg), resource.getrusage(resource.RUSAGE_CHILDREN), time.monotonic())
    if any(results[p]["non_2xx"] for p in ports):
        raise RuntimeError(f"non-2xx answers under load: {results}")
    wall = after[3] - before[3]
    generators = (after[2].ru_utime + after[2].ru_stime) - (before[2].ru_utime + before[2].ru_stime)
    return Load(sum(results[p]["rps"] for p in ports), [results[p]["rps"] for p in ports],
                {"instances": (after[0] - before[0]) / wall, "PostgreSQL": (after[1] - before[1]) / wall,
                 "wrk": generators / wall})


def _median(runs: list[Load]) -> Load:
    return sorted(runs, key=lambda r: r.rps)[len(runs) // 2]


def _cores(load: Load) -> str:
    return ", ".join(f"{name} {value:.2f}" for name, value in load.cores.items()) + \
        f" (total {sum(load.cores.values()):.2f} of {os.cpu_count()})"


def _promotions(url: str, ports: list[int], work: Path) -> list[float]:
    """Seconds from each promotion's commit to both instances answering /readyz with it (alternating between the
    two shipped versions, each already copied by both, so the time is the notification, the load and the swap)."""
    from classifier.store.registry import StoreRegistry

    registry = StoreRegistry(url, work)
    versions = [e["model_version"] for _, e in registry.list()]
    took = []
    for n in range(PROMOTIONS):
        target = versions[(n + 1) % 2]
        registry.promote(target)
        started = time.monotonic()
        while not all(_ready(p)["model_version"] == target for p in ports):
            if time.monotonic() - started > 30:
                raise RuntimeError(f"{target} not served by both instances within 30 s")
            time.sleep(0.025)
        took.append(time.monotonic() - started)
        time.sleep(0.5)
    return took


def run() -> list[Figure]:
    if shutil.which("wrk") is None:
        return [Figure("fleet benchmarks skipped: wrk is not installed (make bench installs it as root)", 0, "")]
    from classifier.store.db import upgrade
    from classifier.store.registry import StoreRegistry
    from tests.postgres import postgres_server

    with postgres_server() as url, tempfile.TemporaryDirectory() as tmp:
        upgrade(url)
        StoreRegistry(url, Path(tmp) / "exporter").export_files(ROOT / "models")
        machines = [Path(tmp) / "maquina-a", Path(tmp) / "maquina-b"]
        procs = []
        try:
            ports = []
            for machine in machines:
                machine.mkdir()
                proc, port = _start(url, machine)
                procs.append(proc)
                ports.append(port)
            for port in ports:  # warm up: first query plans, connection pools
                for _ in range(50):
                    urllib.request.urlopen(urllib.request.Request(
                        f"http://127.0.0.1:{port}/v1/classify", data=json.dumps(BODY).encode(),
                        headers={"content-type": "application/json"})).read()
            pg_port = int(url.rsplit(":", 1)[1].split("/")[0])
            alone = [_median([_load([port], [proc.pid], pg_port) for _ in range(RUNS)])
                     for port, proc in zip(ports, procs)]
            both = _median([_load(ports, [proc.pid for proc in procs], pg_port) for _ in range(RUNS)])
            took = _promotions(url, ports, Path(tmp) / "promoter")
        finally:
            for proc in procs:
                proc.terminate()
            for proc in procs:
                proc.wait(timeout=30)
    ratio = both.rps / sum(a.rps for a in alone)
    per_core = [load.rps / sum(load.cores.values()) for load in (*alone, both)]
    return [
        Figure("/v1/classify requests/s, instance A alone (one worker, PostgreSQL store)", alone[0].rps, "req/s",
               note=f"wrk, {CONNECTIONS} connections, median of {RUNS} runs of {SECONDS} s; cores used: "
                    f"{_cores(alone[0])}"),
        Figure("/v1/classify requests/s, instance B alone", alone[1].rps, "req/s",
               note=f"the same on the other instance; cores used: {_cores(alone[1])}"),
        Figure("/v1/classify requests/s, both instances loaded at once", both.rps, "req/s",
               note=f"one wrk per instance ({both.each[0]:.0f} + {both.each[1]:.0f}); cores used: {_cores(both)}"),
        Figure("both at once / sum of each alone", ratio, "×",
               note=f"{both.rps:.0f} / ({alone[0].rps:.0f} + {alone[1].rps:.0f}); cores used: each alone "
                    f"{sum(alone[0].cores.values()):.2f} and {sum(alone[1].cores.values()):.2f}, both at once "
                    f"{sum(both.cores.values()):.2f} of {os.cpu_count()} (a core other programs take shows here)"),
        Figure("requests per core-second, both at once / each alone", per_core[2] / statistics.mean(per_core[:2]),
               "×", note=f"{per_core[2]:.0f} against {per_core[0]:.0f} and {per_core[1]:.0f} (instances, PostgreSQL "
                         "and wrk counted): what sharing one store costs per request, whatever else the machine runs"),
        Figure("promotion committed → both instances serving it (median)", statistics.median(took), "s", 2.0,
               higher_is_better=False, note=f"{PROMOTIONS} promotions, slowest {max(took):.2f} s "
                                            "(LISTEN/NOTIFY, load, warm-up, swap)"),
    ]


if __name__ == "__main__":  # printed only (bench/results/ is left as it is)
    from bench.report import table

    print("\n".join(table(run())))
