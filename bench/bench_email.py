"""Hostile e-mails: reading time as each kind of input grows (within the limits and past them), its growth exponent,
peak memory against idle, and how fast the inputs of the security review are refused.

Each kind grows n over a factor of 16: within the limits up to the default limit, past them from 1k to 16k. The
exponent is the slope of log(time) against log(n): 1 is linear, 2 quadratic. Peak memory is read from
/proc/self/status (VmHWM) in a fresh process that has imported the reader and read a small e-mail (idle), then reads
one input; a bare process is a stricter baseline than a worker, which also holds spaCy and the model.
"""

from __future__ import annotations

import json
import math
import re
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from bench.report import Figure
from classifier.ingest import EmailLimitError, EmailLimits, message_from_rfc822
from classifier.settings import get_settings

HEAD = b"From: Ana <ana@colegio.edu.co>\r\nDate: Wed, 25 Nov 2026 09:00:00 -0500\r\n"
TEXT = b"\r\n\r\nNo podemos ingresar a la plataforma desde esta ma\xc3\xb1ana.\r\n"


def encoded_words(n: int) -> bytes:
    return HEAD + b"Subject: " + b"=?utf-8?q?a?= " * n + TEXT


def addresses(n: int) -> bytes:
    return b"From: " + b", ".join(b"u%d@x.co" % i for i in range(n)) + b"\r\nSubject: Acceso" + TEXT


def parts(n: int) -> bytes:
    attachment = b"--b\r\nContent-Type: application/pdf\r\n\r\nJVBERi0xLjQK\r\n"
    return (HEAD + b"Subject: Acceso\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n"
            b"--b\r\nContent-Type: text/plain; charset=utf-8" + TEXT + attachment * max(n - 2, 0) + b"--b--\r\n")


def received(n: int) -> bytes:
    hop = b"Received: from mx%d by mx; Wed, 25 Nov 2026 09:00:00 -0500\r\n"
    return b"".join(hop % i for i in range(max(n - 2, 0))) + b"From: ana@colegio.edu.co\r\nSubject: Acceso" + TEXT


def header_bytes(n: int) -> bytes:
    field = b"Subject: Acceso "
    return HEAD + field + b"plataforma " * ((n - len(field)) // 11) + TEXT


def depth(n: int) -> bytes:
    nest = b"".join(b"Content-Type: multipart/mixed; boundary=b%d\r\n\r\n--b%d\r\n" % (i, i) for i in range(n))
    return HEAD + b"Subject: Acceso\r\nMIME-Version: 1.0\r\n" + nest + b"Content-Type: text/plain" + TEXT


def html(n: int) -> bytes:
    """n bytes of unclosed tags: 5 s for 16 KB with Python 3.11's html.parser."""
    return HEAD + b"Subject: Acceso\r\nContent-Type: text/html; charset=utf-8\r\n\r\n" + b"<a " * (n // 3)


def paragraphs(n: int) -> bytes:
    """n bytes of one-word paragraphs: the most text (and memory) per byte of HTML."""
    return HEAD + b"Subject: Acceso\r\nContent-Type: text/html; charset=utf-8\r\n\r\n" + b"<p>x</p>\n" * (n // 9)


KINDS: dict[str, tuple[Callable[[int], bytes], str | None]] = {  # builder, the limit on n (None: the body size)
    "encoded words in Subject": (encoded_words, "encoded_words"),
    "addresses in From": (addresses, "addresses"),
    "MIME parts": (parts, "parts"),
    "Received headers": (received, "headers"),
    "bytes of one header": (header_bytes, "header_bytes"),
    "bytes of HTML with unclosed tags": (html, None),
    "bytes of HTML paragraphs": (paragraphs, None),
}
FINDINGS = {  # the inputs of the security review, and what they cost before
    "60,000 encoded words (840 KB)": (encoded_words, 60_000, "was 23 GB, OOM kill"),
    "70,000 addresses (980 KB)": (addresses, 70_000, "was 50 s, 1.4 GB"),
    "8,000 MIME parts": (parts, 8_000, "was 3.6 s"),
    "15,000 Received headers": (received, 15_000, "was 2.5 s"),
    "5,000 nested multiparts": (depth, 5_000, "was a RecursionError after 0.8 s"),
}


def _seconds(raw: bytes, limits: EmailLimits) -> float:
    """Best time of one read (or refusal) of ``raw``, over enough calls to last ~50 ms per round."""
    def once() -> None:
        try:
            message_from_rfc822(raw, limits=limits)
        except EmailLimitError:
            pass

    once()
    started = time.perf_counter()
    once()
    calls = max(1, min(200, int(0.05 / max(time.perf_counter() - started, 1e-6))))
    best = math.inf
    for _ in range(5):
        started = time.perf_counter()
        for _ in range(calls):
            once()
        best = min(best, (time.perf_counter() - started) / calls)
    return best


def _slope(sizes: list[int], seconds: list[float]) -> float:
    return statistics.linear_regression([math.log(n) for n in sizes], [math.log(s) for s in seconds]).slope


def _refused(raw: bytes, limits: EmailLimits) -> bool:
    try:
        message_from_rfc822(raw, limits=limits)
    except EmailLimitError:
        return True
    return False


def _peak(kind: str, n: int) -> tuple[float, float]:
    """Idle and peak resident memory (MB) of a fresh process that reads one input of ``kind``."""
    out = subprocess.run([sys.executable, "-m", "bench.bench_email", "--peak", kind, str(n)], capture_output=True,
                         text=True, check=True, cwd=Path(__file__).resolve().parent.parent).stdout
    data = json.loads(out.strip().splitlines()[-1])
    return data["idle_mb"], data["peak_mb"]


def _status_mb(field: str) -> float:
    status = Path("/proc/self/status").read_text()
    return int(re.search(rf"{field}:\s+(\d+)", status).group(1)) / 1024


def _measure_peak(kind: str, n: int) -> None:
    build = ({k: b for k, (b, _) in KINDS.items()} | {k: b for k, (b, _, _) in FINDINGS.items()})[kind]
    limits = EmailLimits.from_settings(get_settings())
    message_from_rfc822(parts(4), limits=limits)  # every code path imported and warm
    raw = build(n)
    idle = _status_mb("VmRSS")
    try:
        message_from_rfc822(raw, limits=limits)
    except EmailLimitError:
        pass
    print(json.dumps({"idle_mb": idle, "peak_mb": _status_mb("VmHWM")}))


def run() -> list[Figure]:
    limits = EmailLimits.from_settings(get_settings())
    caps = {"encoded_words": limits.encoded_words, "addresses": limits.addresses, "parts": limits.parts,
            "headers": limits.headers, "header_bytes": limits.header_bytes, None: 1_000_000}
    figures: list[Figure] = []
    for kind, (build, limit) in KINDS.items():
        cap = caps[limit]
        within = [max(cap // 2 ** k, 2) for k in range(4, -1, -1)]
        times = [_seconds(build(n), limits) for n in within]
        assert not any(_refused(build(n), limits) for n in within), kind
        idle, peak = _peak(kind, within[-1])
        figures += [
            Figure(f"{kind}: read at the limit (n = {within[-1]:,})", times[-1] * 1000, "ms", note=", ".join(
                f"{n:,}: {t * 1000:.2f} ms" for n, t in zip(within, times))),
            Figure(f"{kind}: growth exponent within the limit", _slope(within, times), "", 1.2,
                   higher_is_better=False,
                   note=f"n = {within[0]:,} … {within[-1]:,}; 1 = linear, below 1 a fixed cost per e-mail"),
            Figure(f"{kind}: peak / idle memory at the limit", peak / idle, "×", 2.0, higher_is_better=False,
                   note=f"{idle:.0f} MB idle, {peak:.0f} MB peak"),
        ]
        if limit is None:
            continue
        beyond = [max(1000, 2 * cap) * 2 ** k for k in range(5)]  # 1k … 16k, or from twice the limit
        assert all(_refused(build(n), limits) for n in beyond), kind
        refusals = [_seconds(build(n), limits) for n in beyond]
        figures += [
            Figure(f"{kind}: refusal past the limit (n = {beyond[-1]:,})", refusals[-1] * 1000, "ms", 100,
                   higher_is_better=False, note=", ".join(f"{n:,}: {t * 1000:.2f} ms"
                                                          for n, t in zip(beyond, refusals))),
            Figure(f"{kind}: growth exponent of the refusal", _slope(beyond, refusals), "", 1.2,
                   higher_is_better=False, note="the scan is linear; the parser is never reached"),
        ]
    for name, (build, n, before) in FINDINGS.items():
        raw = build(n)
        assert _refused(raw, limits), name
        seconds = _seconds(raw, limits)
        idle, peak = _peak(name, n)
        figures += [
            Figure(f"refusal: {name}", seconds * 1000, "ms", 100, higher_is_better=False, note=before),
            Figure(f"refusal: {name}, peak / idle memory", peak / idle, "×", 2.0, higher_is_better=False,
                   note=f"{idle:.0f} MB idle, {peak:.0f} MB peak"),
        ]
    return figures


if __name__ == "__main__":
    if sys.argv[1:2] == ["--peak"]:
        _measure_peak(sys.argv[2], int(sys.argv[3]))
    else:
        for figure in run():
            print(figure)
