"""``python -m classifier sla`` and ``calendar`` as a user runs them: a real subprocess."""

from __future__ import annotations

import json
import subprocess
import sys

import icalendar

from tests.conftest import ROOT


def run(args: list[str], stdin: str = "") -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "classifier", *args], input=stdin, capture_output=True,
                          text=True, cwd=ROOT, timeout=120)


def test_help_lists_every_command():
    out = run(["--help"]).stdout
    for command in ("sla", "escalations", "calendar"):
        assert command in out


def test_sla_answers_every_line_in_order_errors_included():
    lines = [
        {"id": "1", "received_at": "2026-11-27T16:30:00-05:00", "priority": "alta"},
        {"id": "2", "received_at": "2026-11-27T16:30:00", "priority": "alta"},
        "not json",
        {"id": "4", "priority": "alta"},
        {"id": "5", "received_at": "2026-11-25T14:00:00Z", "priority": "media", "customer_id": "ferreteria-el-tornillo"},
    ]
    stdin = "\n".join(x if isinstance(x, str) else json.dumps(x) for x in lines) + "\n"
    proc = run(["sla"], stdin)
    assert proc.returncode == 0
    out = [json.loads(line) for line in proc.stdout.splitlines()]
    assert [o["id"] for o in out] == ["1", "2", None, "4", "5"]
    assert out[0]["response_due"] == "2026-11-30T10:30:00-05:00"
    assert out[0]["solution_due"] == "2026-12-01T16:30:00-05:00" and out[0]["committed"] is True
    assert "no lleva zona horaria" in out[1]["error"]
    assert "no es JSON válido" in out[2]["error"]
    assert "received_at" in out[3]["error"]
    assert out[4]["committed"] is False and out[4]["response_due"] is None and out[4]["reason"]


def test_escalations_command():
    stdin = json.dumps({"id": "t1", "received_at": "2026-11-25T09:00:00-05:00", "priority": "alta"}) + "\n"
    proc = run(["escalations", "--now", "2026-11-26T09:00:00-05:00"], stdin)
    out = json.loads(proc.stdout)
    assert out["escalate"] is True and out["proposed_priority"] == "muy_alta" and out["proposed_level"] == "N2"


def test_calendar_feed_is_valid_icalendar():
    proc = subprocess.run([sys.executable, "-m", "classifier", "calendar", "--start", "2026-11-25", "--days", "60"],
                          capture_output=True, cwd=ROOT, timeout=120)
    cal = icalendar.Calendar.from_ical(proc.stdout)
    summaries = [str(e.get("summary")) for e in cal.walk("VEVENT")]
    assert any("Navidad" in s for s in summaries) and any("Inmaculada" in s for s in summaries)
