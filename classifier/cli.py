"""Command line: ``python -m classifier <command>``; JSON Lines in, JSON Lines out, logs on stderr."""

from __future__ import annotations

import argparse
import sys
from datetime import date, datetime
from pathlib import Path

from classifier.errors import ClassifierError, ConfigError
from classifier.settings import get_settings


def _sla(args: argparse.Namespace) -> int:
    from classifier.calendar import parse_instant
    from classifier.jsonl import run_lines
    from classifier.service import load_policy_engine

    engine = load_policy_engine(get_settings())

    def handle(item: dict) -> dict:
        for key in ("id", "received_at", "priority"):
            if key not in item:
                raise ValueError(f"missing field {key!r}")
        result = engine.sla.deadlines(
            str(item["priority"]),
            parse_instant(item["received_at"]),
            customer_id=item.get("customer_id"),
            sender=item.get("sender"),
            request_type=item.get("request_type"),
        )
        return {"id": item["id"], **result.as_dict(explain=args.explain)}

    return run_lines(handle)


def _escalations(args: argparse.Namespace) -> int:
    from classifier.calendar import parse_instant
    from classifier.jsonl import run_lines
    from classifier.service import load_policy_engine

    engine = load_policy_engine(get_settings())
    now = parse_instant(args.now) if args.now else datetime.now(engine.calendar.tz)

    def handle(item: dict) -> dict:
        for key in ("id", "received_at", "priority"):
            if key not in item:
                raise ValueError(f"missing field {key!r}")
        check = engine.sla.escalation(
            str(item["priority"]),
            parse_instant(item["received_at"]),
            level=str(item.get("level") or engine.policy.support.first_level),
            now=now,
            customer_id=item.get("customer_id"),
        )
        return {"id": item["id"], **check.as_dict()}

    return run_lines(handle)


def _calendar(args: argparse.Namespace) -> int:
    from classifier.ical import calendar_feed
    from classifier.service import load_policy_engine

    engine = load_policy_engine(get_settings())
    start = date.fromisoformat(args.start) if args.start else datetime.now(engine.calendar.tz).date()
    sys.stdout.buffer.write(calendar_feed(engine.calendar, start=start, days=args.days))
    return 0


def _data_check(args: argparse.Namespace) -> int:
    from classifier.corpus import check_corpus, format_report

    path = Path(args.file) if args.file else get_settings().corpus_path
    report = check_corpus(path, args.profile)
    print(format_report(report))
    return 0 if report.ok else 1


def _data_reference(args: argparse.Namespace) -> int:
    from classifier.corpus import load_rows
    from classifier.reference import evaluate_reference

    path = Path(args.file) if args.file else get_settings().corpus_path
    result = evaluate_reference(load_rows(path))
    print(f"reference model (TF-IDF words 1-2 + char_wb 2-5, LogisticRegression C=4) on {path}")
    print(f"train {result['train']} rows, test {result['test']} rows")
    print(result["report"])
    print(f"macro-F1 on test: {result['macro_f1']:.4f}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m classifier",
        description="Clasificador de prioridad de mensajes de soporte (política de SIEMPRE.NET).",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("sla", help="deadlines for JSON Lines {id, received_at, priority, customer_id?} on stdin")
    p.add_argument("--explain", action="store_true", help="add the open intervals counted, day by day")
    p.set_defaults(func=_sla)

    p = sub.add_parser("escalations", help="which N1 tickets (JSON Lines on stdin) passed their response time")
    p.add_argument("--now", help="the instant to check against (ISO 8601 with offset; default: now)")
    p.set_defaults(func=_escalations)

    p = sub.add_parser("calendar", help="write the customers' iCalendar feed (holidays and exceptions) to stdout")
    p.add_argument("--start", help="first date (YYYY-MM-DD; default: today)")
    p.add_argument("--days", type=int, default=365, help="how many days ahead (default 365)")
    p.set_defaults(func=_calendar)

    data = sub.add_parser("data", help="corpus tools (check, reference)")
    data_sub = data.add_subparsers(dest="data_command", required=True, metavar="DATA_COMMAND")
    p = data_sub.add_parser("check", help="validate a corpus file and print its counts")
    p.add_argument("file", nargs="?", help="corpus file (default: data/corpus.jsonl)")
    p.add_argument("--profile", choices=["corpus", "feedback"], default="corpus",
                   help="corpus: also size and label balance; feedback: agents' exported corrections")
    p.set_defaults(func=_data_check)
    p = data_sub.add_parser("reference", help="train the plain reference model on train, print macro-F1 on test")
    p.add_argument("file", nargs="?", help="corpus file (default: data/corpus.jsonl)")
    p.set_defaults(func=_data_reference)

    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except ConfigError as exc:
        print(f"ConfigError: {exc}", file=sys.stderr)
        return 2
    except ClassifierError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
