"""Command line: ``python -m classifier <command>``; JSON Lines in, JSON Lines out, logs on stderr."""

from __future__ import annotations

import argparse
import json
import sys
from datetime import date, datetime
from pathlib import Path

from classifier.errors import ClassifierError, ConfigError
from classifier.settings import get_settings


def _sla(args: argparse.Namespace) -> int:
    from classifier.calendar import parse_instant
    from classifier.jsonl import run_lines
    from classifier.config import load_policy_engine

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
    from classifier.config import load_policy_engine

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
    from classifier.config import load_policy_engine

    engine = load_policy_engine(get_settings())
    start = date.fromisoformat(args.start) if args.start else datetime.now(engine.calendar.tz).date()
    sys.stdout.buffer.write(calendar_feed(engine.calendar, start=start, days=args.days))
    return 0


def _data_check(args: argparse.Namespace) -> int:
    from classifier.corpus import check_corpus, format_report

    path = Path(args.file) if args.file else get_settings().corpus_path
    settings = get_settings()
    report = check_corpus(path, args.profile,
                          reference=settings.corpus_path if args.profile == "feedback" else None)
    print(format_report(report))
    return 0 if report.ok else 1


def _data_merge(args: argparse.Namespace) -> int:
    from classifier.corpus import load_rows, merge_new_rows

    path = Path(args.corpus) if args.corpus else get_settings().corpus_path
    corpus = load_rows(path)
    new = []
    for part in args.parts:
        with open(part, encoding="utf-8") as handle:
            new.extend(json.loads(line) for line in handle if line.strip())
    merged, dropped = merge_new_rows(corpus, new, seed=args.seed)
    with open(path, "w", encoding="utf-8") as handle:
        for row in merged:
            handle.write(row.model_dump_json(exclude_none=True) + "\n")
    print(f"{path}: {len(corpus)} rows kept, {len(merged) - len(corpus)} added; run `data check` next")
    if dropped:
        print(f"left out {len(dropped)} new rows that near-duplicate corpus rows in both splits: {', '.join(dropped)}")
    return 0


def _data_reference(args: argparse.Namespace) -> int:
    from classifier.corpus import load_rows
    from classifier.reference import evaluate_reference

    path = Path(args.file) if args.file else get_settings().corpus_path
    held_out = load_rows(Path(args.eval)) if args.eval else None
    result = evaluate_reference(load_rows(path), held_out)
    print(f"reference model (TF-IDF words 1-2 + char_wb 2-5, LogisticRegression C=4) trained on {path}, "
          f"scored on {args.eval or 'its test split'}")
    print(f"train {result['train']} rows, test {result['test']} rows")
    print(result["report"])
    print(f"macro-F1 on test: {result['macro_f1']:.4f}")
    return 0


def _score(args: argparse.Namespace) -> int:
    from classifier.ingest import message_from_dict
    from classifier.jsonl import error_line, read_lines
    from classifier.pipeline import Classifier
    from classifier.process import settle

    classifier = Classifier.load(get_settings())
    settle()
    stdin, stdout = sys.stdin, sys.stdout
    batch: list[tuple[object, object]] = []

    def flush() -> None:
        valid = [(i, m) for i, (item, m) in enumerate(batch) if not isinstance(m, Exception)]
        results = classifier.classify_many([m for _, m in valid]) if valid else []
        by_index = dict(zip((i for i, _ in valid), results))
        for i, (item, m) in enumerate(batch):
            out = by_index[i].as_dict() if i in by_index else error_line(item, m)
            if i in by_index and isinstance(item, dict):
                out["id"] = item.get("id")
            stdout.write(json.dumps(out, ensure_ascii=False) + "\n")
        stdout.flush()
        batch.clear()

    lines = read_lines(stdin)
    if args.progress:
        from tqdm import tqdm

        lines = tqdm(lines, desc="clasificando", unit="msg", file=sys.stderr)
    for _number, item in lines:
        if isinstance(item, Exception):
            batch.append((None, item))
        elif not isinstance(item, dict):
            batch.append((item, ValueError(f"expected a JSON object, got {type(item).__name__}")))
        else:
            try:
                if "id" not in item:
                    raise ValueError("missing field 'id'")
                batch.append((item, message_from_dict(item)))
            except (ClassifierError, ValueError) as exc:
                batch.append((item, exc))
        if len(batch) >= args.batch_size:
            flush()
    flush()
    return 0


def _train(args: argparse.Namespace) -> int:
    from classifier.corpus import check_corpus
    from classifier.training import train_and_save

    feedback = None
    if args.with_feedback:
        report = check_corpus(Path(args.with_feedback), "feedback", reference=get_settings().corpus_path)
        if not report.ok:
            print("feedback file rejected:\n" + "\n".join(f"  {p}" for p in report.problems), file=sys.stderr)
            return 1
        feedback = report.rows
    entry = train_and_save(get_settings(), data=Path(args.data) if args.data else None, feedback=feedback,
                           params={"random_state": args.seed}, progress=True, compare=bool(args.with_feedback))
    print(json.dumps({k: entry[k] for k in ("model_version", "artefact", "metrics", "promoted", "compared_with",
                                            "refused_because")}, ensure_ascii=False, indent=2))
    if not entry["promoted"]:
        print(f"candidate {entry['model_version']} NOT promoted: " + "; ".join(entry["refused_because"])
              + ". The current model stays; `model promote VERSION` overrides.", file=sys.stderr)
        return 3
    return 0


def _model_list(args: argparse.Namespace) -> int:
    from classifier.artefacts import list_models

    for status, e in list_models(get_settings().models_dir):
        m = e.get("metrics", {})
        print(f"{status:12} {e['model_version']:28} trained {e.get('trained_at', '?'):25} "
              f"macro-F1 {m.get('macro_f1', float('nan')):.4f}  muy_alta recall {m.get('recall_muy_alta', float('nan')):.4f}")
    return 0


def _model_promote(args: argparse.Namespace) -> int:
    from classifier.artefacts import promote

    entry = promote(get_settings().models_dir, args.version)
    print(f"current model is now {entry['model_version']} (workers pick it up within seconds)")
    return 0


def _model_export_serving(args: argparse.Namespace) -> int:
    from classifier.artefacts import add_serving_file, read_manifest, write_manifest

    models_dir = get_settings().models_dir
    manifest = read_manifest(models_dir)
    for key in ("current", "previous", "rolled_back", "rejected"):
        entries = manifest.get(key)
        if isinstance(entries, dict):
            manifest[key] = entries if "serving" in entries else add_serving_file(models_dir, entries)
        elif entries:
            manifest[key] = [e if "serving" in e else add_serving_file(models_dir, e) for e in entries]
    write_manifest(models_dir, manifest)
    print(f"serving files written; current model {manifest['current']['model_version']}")
    return 0


def _model_rollback(args: argparse.Namespace) -> int:
    from classifier.artefacts import rollback

    entry = rollback(get_settings().models_dir)
    print(f"current model is now {entry['model_version']} (POST /v1/admin/reload to serve it)")
    return 0


def _evaluate(args: argparse.Namespace) -> int:
    from classifier.corpus import load_labelled, load_rows
    from classifier.evaluation import evaluate_prepared, plot_confusion, rules_report
    from classifier.model_input import ModelInputBuilder
    from classifier.rule_engine import RuleEngine
    from classifier.config import load_policy_engine
    from classifier.artefacts import load_model
    from classifier.training import DEFAULT_PARAMS, grouped_cross_validation, leave_one_style_out, prepare

    settings = get_settings()
    rules = RuleEngine.from_dir(settings.rules_dir)
    model_input = ModelInputBuilder.beside_rules(settings.rules_dir)
    out_dir = Path(args.out) if args.out else settings.models_dir
    out_dir.mkdir(parents=True, exist_ok=True)
    if args.data:
        try:
            rows = load_labelled(Path(args.data))
        except (OSError, ValueError) as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        if args.split:
            rows = [r for r in load_rows(Path(args.data)) if r.split == args.split]
    else:
        rows = [r for r in load_rows(settings.corpus_path) if r.split == (args.split or "test")]
    prepared = prepare(rows, rules, model_input, progress=True)
    if args.rules_only:
        report = rules_report(prepared, rows)
        (out_dir / "evaluation-rules.json").write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n", "utf-8")
        _print_rules_report(report)
        return 0
    decision = load_policy_engine(settings).policy.decision
    loaded = load_model(settings.models_dir)
    report = evaluate_prepared(loaded.model, prepared, rows, decision=decision)
    report["model_version"] = loaded.version
    report["rules"] = {k: v for k, v in rules_report(prepared, rows).items() if k in ("coverage", "precision",
                                                                                     "impact_accuracy")}
    if not args.data:  # the whole picture: our test split next to text we did not write and to unseen styles
        report["side_by_side"] = {"corpus test split": report["rules_plus_model"]}
        for name, path in (("external.jsonl", settings.data_dir / "external.jsonl"), ("real dev set", settings.real_data)):
            if Path(path).exists():
                other = load_labelled(Path(path))
                report["side_by_side"][name] = evaluate_prepared(
                    loaded.model, prepare(other, rules, model_input), other, decision=decision)["rules_plus_model"]
            else:
                print(f"{name}: {path} not found, left out", file=sys.stderr)
        if not args.no_loso:
            corpus = load_rows(settings.corpus_path)
            loso = leave_one_style_out(corpus, rules, model_input, DEFAULT_PARAMS, rules_dir=settings.rules_dir,
                                       decision=decision, progress=True)
            if loso:
                report["leave_one_style_out"] = loso
                worst = min(loso, key=lambda k: loso[k]["macro_f1"])
                report["side_by_side"][f"LOSO worst ({worst})"] = loso[worst]
    if args.cv:
        all_rows = [r for r in load_rows(settings.corpus_path) if r.split == "train"]
        train_prepared = prepare(all_rows, rules, model_input, progress=True)
        report["grouped_cv_train_split"] = grouped_cross_validation([p[0] for p in train_prepared], all_rows,
                                                                    DEFAULT_PARAMS)
    (out_dir / "evaluation.json").write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n", "utf-8")
    plot_confusion(report["rules_plus_model"]["confusion_matrix"]["rows_truth_cols_predicted"],
                   out_dir / "confusion_matrix.png", f"Reglas + modelo ({len(rows)} mensajes)")
    report["written"] = f"{out_dir / 'evaluation.json'}, {out_dir / 'confusion_matrix.png'}"
    _print_evaluation(report)
    return 0


def _print_rules_report(report: dict) -> None:
    print(f"rules on {report['rows']} messages: precision {report['precision']:.3f}, "
          f"coverage {report['coverage']:.3f} ({report['decided']} decided), "
          f"impact accuracy {report['impact_accuracy']:.3f} on {report['impact_stated']} with stated impact")
    print(f"{'rule':32} {'fired':>6} {'decided':>8} {'precision':>10}")
    for rule, f in report["per_rule"].items():
        prec = "-" if f["precision"] is None else f"{f['precision']:.3f}"
        print(f"{rule:32} {f['fired']:>6} {f['decided']:>8} {prec:>10}")
    print(f"wrong decisions ({len(report['wrong'])}):")
    for w in report["wrong"]:
        print(f"  {w['id']}: labelled {w['label']}, rules said {w['rules']} ({w['rule']}: {w['evidence']})")


_GAP_LINES = (("macro-F1", "macro_f1", ".3f"), ("accuracy", "accuracy", ".3f"),
              ("complete called muy_baja", "complete_called_incomplete", ".1%"),
              ("failures called baja/muy_baja", "failures_called_low", ".1%"),
              ("sent to review", "review_share", ".1%"), ("accuracy on the rest", "accuracy_not_reviewed", ".3f"))


def _print_table(columns: dict[str, dict]) -> None:
    from classifier.policy import PRIORITIES

    width = max(16, *(len(name) + 2 for name in columns))
    print(f"{'':30}" + "".join(f"{name:>{width}}" for name in columns))
    print(f"{'messages':30}" + "".join(f"{sum(c['per_class'][l]['support'] for l in PRIORITIES):>{width}}"
                                       for c in columns.values()))
    for title, key, fmt in _GAP_LINES:
        print(f"{title:30}" + "".join(f"{format(c[key], fmt):>{width}}" for c in columns.values()))
    for label in PRIORITIES:
        print(f"{'F1 ' + label:30}" + "".join(f"{c['per_class'][label]['f1']:>{width}.3f}" for c in columns.values()))


def _print_evaluation(report: dict) -> None:
    from classifier.policy import PRIORITIES

    print(f"model {report['model_version']} on {report['rows']} messages")
    if "side_by_side" in report:
        print("\nrules + model, side by side (the real dev set is evaluation only: never trained on)")
        _print_table(report["side_by_side"])
    if "leave_one_style_out" in report:
        print("\nleave-one-style-out: trained on every other style, tested on this one")
        _print_table(report["leave_one_style_out"])
    print("\nthis file:")
    systems = [("rules+default", "rules_with_default"), ("model alone", "model_alone"),
               ("rules+model", "rules_plus_model")]
    print(f"{'':14}" + "".join(f"{name:>16}" for name, _ in systems))
    print(f"{'macro-F1':14}" + "".join(f"{report[k]['macro_f1']:>16.4f}" for _, k in systems))
    print(f"{'accuracy':14}" + "".join(f"{report[k]['accuracy']:>16.4f}" for _, k in systems))
    for label in PRIORITIES:
        print(f"{'F1 ' + label:14}" + "".join(f"{report[k]['per_class'][label]['f1']:>16.4f}" for _, k in systems))
    combined = report["rules_plus_model"]
    print(f"review share {combined['review_share']:.3f}; accuracy on what was not sent to review "
          f"{combined['accuracy_not_reviewed']:.4f}; complete called muy_baja "
          f"{combined['complete_called_incomplete']:.1%}; failures called baja/muy_baja "
          f"{combined['failures_called_low']:.1%}; decided by {combined['source']}")
    print("confusion matrix (rows labelled, columns predicted): " + " ".join(PRIORITIES))
    for label, row in zip(PRIORITIES, combined["confusion_matrix"]["rows_truth_cols_predicted"]):
        print(f"  {label:10} " + " ".join(f"{v:>5}" for v in row))
    if "grouped_cv_train_split" in report:
        cv = report["grouped_cv_train_split"]
        print(f"grouped {cv['folds']}-fold CV on train (model alone): macro-F1 {cv['macro_f1_mean']:.4f} "
              f"± {cv['macro_f1_std']:.4f}; train {cv['train_macro_f1_mean']:.4f}; gap {cv['gap']:.4f}")
    print(f"written: {report['written']}")


def _db_upgrade(args: argparse.Namespace) -> int:
    from classifier.store.db import upgrade

    url = get_settings().database_url
    upgrade(url)
    print(f"database at the newest schema: {url.split('@')[-1]}", file=sys.stderr)
    return 0


def _db_purge(args: argparse.Namespace) -> int:
    from classifier.store.db import sessions
    from classifier.store.repository import purge_bodies

    settings = get_settings()
    days = args.days or settings.retention_days
    with sessions(settings.database_url)() as session:
        count = purge_bodies(session=session, older_than_days=days)
    print(f"{count} message bodies older than {days} days purged; priorities and decisions kept")
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

    p = sub.add_parser("score", help="classify JSON Lines {id, channel, subject, body, received_at, customer_id?}")
    p.add_argument("--batch-size", type=int, default=256, help="messages scored per model call (default 256)")
    p.add_argument("--progress", action="store_true", help="show a progress bar on stderr")
    p.set_defaults(func=_score)

    p = sub.add_parser("train", help="train the text model on the corpus train split and make it current")
    p.add_argument("--data", help="corpus file (default: data/corpus.jsonl)")
    p.add_argument("--seed", type=int, default=0, help="random seed (same data and seed give the same metrics)")
    p.add_argument("--with-feedback", metavar="FILE",
                   help="agents' corrections (GET /v1/feedback/export); promote only if not worse on the test split")
    p.set_defaults(func=_train)

    model = sub.add_parser("model", help="model versions (list, promote, rollback, export-serving)")
    model_sub = model.add_subparsers(dest="model_command", required=True, metavar="MODEL_COMMAND")
    p = model_sub.add_parser("list", help="every version: current, previous, rolled back, rejected, with metrics")
    p.set_defaults(func=_model_list)
    p = model_sub.add_parser("promote", help="make a listed version current (the current one becomes previous)")
    p.add_argument("version")
    p.set_defaults(func=_model_promote)
    p = model_sub.add_parser("rollback", help="make the previous model current again")
    p.set_defaults(func=_model_rollback)
    p = model_sub.add_parser("export-serving", help="write the serving .npz of versions saved without one")
    p.set_defaults(func=_model_export_serving)

    p = sub.add_parser("evaluate", help="rules + model on the test split, external.jsonl, the real dev set and "
                                        "leave-one-style-out, side by side (or on one --data file)")
    p.add_argument("--data", help="labelled JSON Lines file (default: the corpus test split)")
    p.add_argument("--split", choices=["train", "test"], help="only this split of the file")
    p.add_argument("--rules-only", action="store_true", help="rule precision, coverage, per-rule figures, impact")
    p.add_argument("--cv", action="store_true", help="also grouped 5-fold cross-validation on the train split")
    p.add_argument("--no-loso", action="store_true",
                   help="skip the leave-one-style-out cross-validation (one training per style, a few minutes)")
    p.add_argument("--out", help="directory for evaluation.json and confusion_matrix.png (default: models/)")
    p.set_defaults(func=_evaluate)

    db = sub.add_parser("db", help="database tools (upgrade, purge)")
    db_sub = db.add_subparsers(dest="db_command", required=True, metavar="DB_COMMAND")
    p = db_sub.add_parser("upgrade", help="apply schema migrations (CLASSIFIER_DATABASE_URL; SQLite by default)")
    p.set_defaults(func=_db_upgrade)
    p = db_sub.add_parser("purge", help="retention (Ley 1581 de 2012): drop bodies older than N days, keep labels")
    p.add_argument("--days", type=int, help="keep bodies of the last N days (default CLASSIFIER_RETENTION_DAYS, 365)")
    p.set_defaults(func=_db_purge)

    data = sub.add_parser("data", help="corpus tools (check, reference)")
    data_sub = data.add_subparsers(dest="data_command", required=True, metavar="DATA_COMMAND")
    p = data_sub.add_parser("check", help="validate a corpus file and print its counts")
    p.add_argument("file", nargs="?", help="corpus file (default: data/corpus.jsonl)")
    p.add_argument("--profile", choices=["corpus", "feedback"], default="corpus",
                   help="corpus: also size and label balance; feedback: agents' exported corrections")
    p.set_defaults(func=_data_check)
    p = data_sub.add_parser("merge", help="add newly written rows (no group or split yet) to the corpus")
    p.add_argument("parts", nargs="+", help="JSON Lines files of new rows (corpus fields without group and split)")
    p.add_argument("--corpus", help="corpus file to grow (default: data/corpus.jsonl)")
    p.add_argument("--seed", type=int, default=0, help="seed of the train/test draw of the new groups")
    p.set_defaults(func=_data_merge)
    p = data_sub.add_parser("reference", help="train the plain reference model on train, print macro-F1 on test")
    p.add_argument("file", nargs="?", help="corpus file (default: data/corpus.jsonl)")
    p.add_argument("--eval", help="score on this labelled file instead of the test split (e.g. data/external.jsonl)")
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
