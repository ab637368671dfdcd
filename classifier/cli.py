"""Command line: ``python -m classifier <command>``; JSON Lines in, JSON Lines out, logs on stderr.

Everything a user reads here is Spanish, argparse's own words included (``_Parser``); command and option names
are an interface and stay as they are.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import date, datetime
from pathlib import Path
from typing import NoReturn

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
                raise ValueError(f"falta el campo {key!r}")
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
                raise ValueError(f"falta el campo {key!r}")
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
    sys.stdout.buffer.write(calendar_feed(engine.calendar, engine.policy.company, start=start, days=args.days))
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
    print(f"{path}: {len(corpus)} filas conservadas, {len(merged) - len(corpus)} añadidas; "
          "ejecute `data check` a continuación")
    if dropped:
        print(f"quedan fuera {len(dropped)} filas nuevas casi iguales a filas del corpus en ambas particiones: "
              f"{', '.join(dropped)}")
    return 0


def _data_reference(args: argparse.Namespace) -> int:
    from classifier.corpus import load_rows
    from classifier.reference import evaluate_reference

    path = Path(args.file) if args.file else get_settings().corpus_path
    held_out = load_rows(Path(args.eval)) if args.eval else None
    result = evaluate_reference(load_rows(path), held_out)
    print(f"modelo de referencia (TF-IDF de palabras 1-2 + char_wb 2-5, LogisticRegression C=4) entrenado con "
          f"{path}, evaluado en {args.eval or 'su partición de prueba'}")
    print(f"entrenamiento {result['train']} filas, prueba {result['test']} filas")
    print(result["report"])
    print(f"macro-F1 en prueba: {result['macro_f1']:.4f}")
    return 0


def _score(args: argparse.Namespace) -> int:
    from classifier.ingest import message_from_dict
    from classifier.jsonl import error_line, read_lines
    from classifier.pipeline import Classifier
    from classifier.process import settle

    _mirror_store()
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
            batch.append((item, ValueError(f"se esperaba un objeto JSON, llegó {type(item).__name__}")))
        else:
            try:
                if "id" not in item:
                    raise ValueError("falta el campo 'id'")
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
            print("archivo de correcciones rechazado:\n" + "\n".join(f"  {p}" for p in report.problems),
                  file=sys.stderr)
            return 1
        feedback = report.rows
    settings = get_settings()
    store = _registry() if settings.model_registry_in_store else None
    if store is not None:
        store.checkout()  # models_dir mirrors the store: the candidate is compared with the store's current model
    verdict = train_and_save(settings, data=Path(args.data) if args.data else None, feedback=feedback,
                             params={"random_state": args.seed}, progress=True, compare=bool(args.with_feedback))
    if store is not None:
        from classifier.config import load_policy_engine

        store.publish(verdict.candidate["model_version"], promote=verdict.promoted,
                      keep_rejected=load_policy_engine(settings).policy.retraining.keep_rejected)
    _print_verdict(verdict)
    return 0 if verdict.promoted else 3


def _mirror_store() -> None:
    """With the store registry, its current version copied (verified) into models_dir before a command loads it."""
    if get_settings().model_registry_in_store:
        _registry().materialise()


def _registry():
    """Where model versions live: the store (``CLASSIFIER_MODEL_REGISTRY``, PostgreSQL by default) or models_dir."""
    settings = get_settings()
    if settings.model_registry_in_store:
        from classifier.store.registry import StoreRegistry

        return StoreRegistry(settings.database_url, settings.models_dir)
    from classifier.artefacts import FileRegistry

    return FileRegistry(settings.models_dir)


_SERVED_SOON = "cada worker lo toma en unos segundos; POST /v1/admin/reload lo sirve ya"


def _print_verdict(verdict) -> None:
    """One screen: both models side by side, the decision with its reasons, and where the figures are."""
    from classifier.policy import PRIORITIES

    new, old = verdict.candidate, verdict.current
    print(f"Veredicto del entrenamiento (reglas + modelo sobre las mismas {new['test_rows']} filas de prueba)")
    print(f"  candidato  {new['model_version']}   {new['train_rows']} filas de entrenamiento, "
          f"{new['feedback_used']} correcciones usadas, {new['feedback_dropped_in_test']} descartadas por estar en "
          "prueba")
    print(f"  actual     {old['model_version']}" if old else "  actual     (no había modelo actual)")

    def line(title: str, pick, digits: int) -> None:
        now = f"{pick(old):>10.{digits}f}" if old else f"{'-':>10}"
        change = f"{pick(new) - pick(old):>+12.{digits}f}" if old else ""
        print(f"  {title:20}{now}{pick(new):>11.{digits}f}{change}")

    print(f"\n  {'':20}{'actual':>10}{'candidato':>11}{'diferencia' if old else '':>12}")
    for label in PRIORITIES:
        line(f"F1 {label}", lambda m, label=label: m["f1"][label], 3)
    line("macro-F1", lambda m: m["macro_f1"], 4)
    line("recall muy_alta", lambda m: m["recall_muy_alta"], 4)
    print()
    if not verdict.promoted:
        print("Decisión: no promovido. El modelo actual sigue en servicio porque:")
        for reason in verdict.refused_because:
            print(f"  - {reason}")
        print(f"  `python -m classifier model promote {new['model_version']}` lo pone en servicio de todos modos.")
    elif not old:
        print("Decisión: promovido (no había modelo actual con que compararlo).")
    elif not verdict.gated:
        print("Decisión: promovido (sin --with-feedback el candidato pasa a ser el actual sin el control de "
              "retraining; `model rollback` vuelve al anterior).")
    else:
        print("Decisión: promovido: respeta los límites de retraining de la política (macro-F1 y recall de "
              "muy_alta).")
    if verdict.promoted:
        print(f"  {_SERVED_SOON[0].upper()}{_SERVED_SOON[1:]}.")
    if verdict.figures:
        print("Matrices de confusión (filas: etiqueta; columnas: predicción):")
        for path in verdict.figures:
            print(f"  {path}")
    if verdict.report:
        print(f"Detalle: {verdict.report}")


def _model_list(args: argparse.Namespace) -> int:
    from classifier.artefacts import STATUS

    print(f"{'estado':11} {'versión':28} {'entrenado':26} {'macro-F1':>9} {'recall muy_alta':>16}")
    for status, e in _registry().list():
        m = e.get("metrics", {})
        print(f"{STATUS[status]:11} {e['model_version']:28} {e.get('trained_at', '?'):26} "
              f"{m.get('macro_f1', float('nan')):>9.4f} {m.get('recall_muy_alta', float('nan')):>16.4f}")
    return 0


def _model_promote(args: argparse.Namespace) -> int:
    entry = _registry().promote(args.version)
    print(f"el modelo actual es ahora {entry['model_version']} ({_SERVED_SOON})")
    return 0


def _model_export_serving(args: argparse.Namespace) -> int:
    from classifier.artefacts import add_serving_file, read_manifest, write_manifest

    settings = get_settings()
    if settings.model_registry_in_store:
        print("error: con el registro de modelos en el almacén, ejecute `model export-serving` con "
              "CLASSIFIER_MODEL_REGISTRY=files sobre la carpeta de modelos antes de `model export-to-store`",
              file=sys.stderr)
        return 2
    models_dir = settings.models_dir
    manifest = read_manifest(models_dir)
    for key in ("current", "previous", "rolled_back", "rejected"):
        entries = manifest.get(key)
        if isinstance(entries, dict):
            manifest[key] = entries if "serving" in entries else add_serving_file(models_dir, entries)
        elif entries:
            manifest[key] = [e if "serving" in e else add_serving_file(models_dir, e) for e in entries]
    write_manifest(models_dir, manifest)
    print(f"archivos de servicio escritos; modelo actual {manifest['current']['model_version']}")
    return 0


def _model_rollback(args: argparse.Namespace) -> int:
    entry = _registry().rollback()
    print(f"el modelo actual es ahora {entry['model_version']} ({_SERVED_SOON})")
    return 0


def _model_prune(args: argparse.Namespace) -> int:
    from classifier.artefacts import STATUS

    removed = _registry().prune(args.keep)
    for status, entry, files in removed:
        print(f"eliminado {STATUS[status]:10} {entry['model_version']}: {', '.join(files) or 'sin archivos'}")
    print(f"{len(removed)} versiones eliminadas" if removed else
          "nada que eliminar: se conservan el modelo actual, el anterior y las versiones más recientes")
    return 0


def _model_export_to_store(args: argparse.Namespace) -> int:
    from classifier.store.db import upgrade
    from classifier.store.registry import StoreRegistry

    settings = get_settings()
    models_dir = Path(args.models_dir) if args.models_dir else settings.models_dir
    upgrade(settings.database_url)
    stored, current = StoreRegistry(settings.database_url, settings.models_dir).export_files(models_dir)
    where = settings.database_url.split("@")[-1]
    if current is not None:
        print(f"el registro de modelos del almacén ({where}) ya tiene modelo actual {current}: no se exporta nada "
              "(`model list` muestra sus versiones)")
        return 0
    print(f"{len(stored)} versiones pasaron de {models_dir} al almacén ({where}); modelo actual {stored[0]}")
    if not settings.model_registry_in_store:
        print("aviso: CLASSIFIER_MODEL_REGISTRY=files: los workers siguen leyendo la carpeta de modelos hasta que "
              "usen el registro del almacén (store, o auto con PostgreSQL)", file=sys.stderr)
    return 0


def _jobs_run(args: argparse.Namespace) -> int:
    from classifier.calendar import parse_instant
    from classifier.config import load_policy_engine
    from classifier.store.jobs import JOBS, run_jobs

    settings = get_settings()
    engine = load_policy_engine(settings)
    names = JOBS if args.job == "all" else (args.job,)
    runs = run_jobs(names, database_url=settings.database_url, sla=engine.sla,
                    retention_days=settings.retention_days, now=parse_instant(args.now) if args.now else None)
    for run in runs:
        if not run.ran:
            print(f"{run.job}: omitido, otra instancia lo está ejecutando")
        elif run.job == "escalations":
            level = engine.policy.support.escalation_level
            print(f"escalations: {run.count} tickets pasaron a {level}" + (f": {', '.join(run.ids)}" if run.ids
                                                                          else ""))
        else:
            print(f"purge: {run.count} cuerpos de mensaje de más de {settings.retention_days} días borrados")
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
        report = rules_report(prepared, rows, rules.impact)
        (out_dir / "evaluation-rules.json").write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n", "utf-8")
        _print_rules_report(report)
        return 0
    decision = load_policy_engine(settings).policy.decision
    _mirror_store()
    loaded = load_model(settings.models_dir)
    report = evaluate_prepared(loaded.model, prepared, rows, decision=decision)
    report["model_version"] = loaded.version
    report["rules"] = {k: v for k, v in rules_report(prepared, rows, rules.impact).items() if k in ("coverage", "precision",
                                                                                     "impact_accuracy")}
    if not args.data:  # the whole picture: our test split next to text we did not write and to unseen styles
        report["side_by_side"] = {"prueba del corpus": report["rules_plus_model"]}
        for name, path in (("external.jsonl", settings.data_dir / "external.jsonl"),
                           ("conjunto real (dev)", settings.real_data)):
            if Path(path).exists():
                other = load_labelled(Path(path))
                report["side_by_side"][name] = evaluate_prepared(
                    loaded.model, prepare(other, rules, model_input), other, decision=decision)["rules_plus_model"]
            else:
                print(f"{name}: no se encontró {path}; queda fuera", file=sys.stderr)
        if not args.no_loso:
            corpus = load_rows(settings.corpus_path)
            loso = leave_one_style_out(corpus, rules, model_input, DEFAULT_PARAMS, rules_dir=settings.rules_dir,
                                       decision=decision, progress=True)
            if loso:
                report["leave_one_style_out"] = loso
                worst = min(loso, key=lambda k: loso[k]["macro_f1"])
                report["side_by_side"][f"peor estilo ({worst})"] = loso[worst]
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
    print(f"reglas en {report['rows']} mensajes: precisión {report['precision']:.3f}, "
          f"cobertura {report['coverage']:.3f} ({report['decided']} decididos), "
          f"acierto de impacto {report['impact_accuracy']:.3f} en {report['impact_stated']} con impacto indicado")
    print(f"{'regla':32} {'disparos':>8} {'decididos':>10} {'precisión':>10}")
    for rule, f in report["per_rule"].items():
        prec = "-" if f["precision"] is None else f"{f['precision']:.3f}"
        print(f"{rule:32} {f['fired']:>8} {f['decided']:>10} {prec:>10}")
    print(f"decisiones equivocadas ({len(report['wrong'])}):")
    for w in report["wrong"]:
        print(f"  {w['id']}: etiqueta {w['label']}, las reglas dijeron {w['rules']} ({w['rule']}: {w['evidence']})")


_GAP_LINES = (("macro-F1", "macro_f1", ".3f"), ("exactitud", "accuracy", ".3f"),
              ("completos llamados muy_baja", "complete_called_incomplete", ".1%"),
              ("fallas llamadas baja/muy_baja", "failures_called_low", ".1%"),
              ("enviados a revisión", "review_share", ".1%"), ("exactitud en el resto", "accuracy_not_reviewed", ".3f"))


def _print_table(columns: dict[str, dict]) -> None:
    from classifier.policy import PRIORITIES

    width = max(16, *(len(name) + 2 for name in columns))
    print(f"{'':30}" + "".join(f"{name:>{width}}" for name in columns))
    print(f"{'mensajes':30}" + "".join(f"{sum(c['per_class'][l]['support'] for l in PRIORITIES):>{width}}"
                                       for c in columns.values()))
    for title, key, fmt in _GAP_LINES:
        print(f"{title:30}" + "".join(f"{format(c[key], fmt):>{width}}" for c in columns.values()))
    for label in PRIORITIES:
        print(f"{'F1 ' + label:30}" + "".join(f"{c['per_class'][label]['f1']:>{width}.3f}" for c in columns.values()))


def _print_evaluation(report: dict) -> None:
    from classifier.policy import PRIORITIES

    print(f"modelo {report['model_version']} sobre {report['rows']} mensajes")
    if "side_by_side" in report:
        print("\nreglas + modelo, lado a lado (el conjunto real solo evalúa: nunca se entrena con él)")
        _print_table(report["side_by_side"])
    if "leave_one_style_out" in report:
        print("\ndejando fuera un estilo: entrenado con todos los demás, evaluado en este")
        _print_table(report["leave_one_style_out"])
    print("\neste archivo:")
    systems = [("reglas+baja", "rules_with_default"), ("solo modelo", "model_alone"),
               ("reglas+modelo", "rules_plus_model")]
    print(f"{'':14}" + "".join(f"{name:>16}" for name, _ in systems))
    print(f"{'macro-F1':14}" + "".join(f"{report[k]['macro_f1']:>16.4f}" for _, k in systems))
    print(f"{'exactitud':14}" + "".join(f"{report[k]['accuracy']:>16.4f}" for _, k in systems))
    for label in PRIORITIES:
        print(f"{'F1 ' + label:14}" + "".join(f"{report[k]['per_class'][label]['f1']:>16.4f}" for _, k in systems))
    combined = report["rules_plus_model"]
    print(f"enviados a revisión {combined['review_share']:.3f}; exactitud en lo no enviado a revisión "
          f"{combined['accuracy_not_reviewed']:.4f}; completos llamados muy_baja "
          f"{combined['complete_called_incomplete']:.1%}; fallas llamadas baja/muy_baja "
          f"{combined['failures_called_low']:.1%}; decidido por {combined['source']}")
    print("matriz de confusión (filas: etiqueta, columnas: predicción): " + " ".join(PRIORITIES))
    for label, row in zip(PRIORITIES, combined["confusion_matrix"]["rows_truth_cols_predicted"]):
        print(f"  {label:10} " + " ".join(f"{v:>5}" for v in row))
    if "grouped_cv_train_split" in report:
        cv = report["grouped_cv_train_split"]
        print(f"validación cruzada agrupada de {cv['folds']} pliegues en entrenamiento (solo modelo): macro-F1 "
              f"{cv['macro_f1_mean']:.4f} ± {cv['macro_f1_std']:.4f}; en entrenamiento "
              f"{cv['train_macro_f1_mean']:.4f}; brecha {cv['gap']:.4f}")
    print(f"escrito: {report['written']}")


def _db_upgrade(args: argparse.Namespace) -> int:
    from classifier.store.db import upgrade

    url = get_settings().database_url
    upgrade(url)
    print(f"base de datos en el esquema más reciente: {url.split('@')[-1]}", file=sys.stderr)
    return 0


def _db_purge(args: argparse.Namespace) -> int:
    from classifier.store.db import sessions
    from classifier.store.jobs import purge

    settings = get_settings()
    days = args.days or settings.retention_days
    with sessions(settings.database_url)() as session:
        run = purge(session=session, older_than_days=days)  # the purge job: once, however many machines run it
    if not run.ran:
        print("purge: omitido, otra instancia lo está ejecutando")
        return 0
    print(f"{run.count} cuerpos de mensaje de más de {days} días borrados; se conservan prioridades y decisiones")
    return 0


# argparse's own words, in Spanish: its fixed error phrases (message prefixes and fragments).
_ARGPARSE_PHRASES = (
    ("invalid choice: ", "opción no válida: "), ("(choose from ", "(elija entre "),
    ("the following arguments are required: ", "faltan los argumentos: "),
    ("unrecognized arguments: ", "argumentos no reconocidos: "),
    ("expected one argument", "se esperaba un argumento"),
    ("expected at most one argument", "se esperaba a lo sumo un argumento"),
    ("expected at least one argument", "se esperaba al menos un argumento"),
    ("ambiguous option: ", "opción ambigua: "), (" could match ", " puede ser "),
    ("not allowed with argument ", "no se admite junto con el argumento "),
    ("invalid int value: ", "se esperaba un número entero, no "),
)


class _Formatter(argparse.HelpFormatter):
    """Help screens that start with "uso:"."""

    def add_usage(self, usage, actions, groups, prefix=None):
        super().add_usage(usage, actions, groups, "uso: " if prefix is None else prefix)


class _Parser(argparse.ArgumentParser):
    """``ArgumentParser`` that says its own words in Spanish: usage, section titles, -h and its error messages."""

    def __init__(self, *args, add_help: bool = True, **kwargs):
        kwargs.setdefault("formatter_class", _Formatter)
        super().__init__(*args, add_help=False, **kwargs)
        self._positionals.title, self._optionals.title = "argumentos", "opciones"
        if add_help:
            self.add_argument("-h", "--help", action="help", help="muestra esta ayuda y termina")

    def error(self, message: str) -> NoReturn:
        if message.startswith("argument "):
            message = "argumento " + message.removeprefix("argument ")
        for english, spanish in _ARGPARSE_PHRASES:
            message = message.replace(english, spanish)
        self.print_usage(sys.stderr)
        self.exit(2, f"{self.prog}: error: {message}\n")


def _at_least_one(text: str) -> int:
    """``--keep``: a whole number of versions, at least one."""
    try:
        number = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"se esperaba un número entero, no {text!r}") from None
    if number < 1:
        raise argparse.ArgumentTypeError(f"debe ser al menos 1 (se pidió {number}): siempre quedan el modelo actual, "
                                         "el anterior (el que usa `model rollback`) y al menos la versión más reciente")
    return number


def _command(sub, name: str, text: str) -> argparse.ArgumentParser:
    """A subcommand whose one-line help is also its description on its own --help screen."""
    return sub.add_parser(name, help=text, description=text)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="python -m classifier",
        description="Clasificador de prioridad de mensajes de soporte según la política de servicio al cliente "
                    "(rules/policy.yaml).",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMANDO")

    p = _command(sub, "sla", "plazos para líneas JSON {id, received_at, priority, customer_id?} por la entrada "
                             "estándar")
    p.add_argument("--explain", action="store_true", help="añade los intervalos hábiles contados, día por día")
    p.set_defaults(func=_sla)

    p = _command(sub, "escalations", "qué tickets de N1 (líneas JSON por la entrada estándar) pasaron su tiempo de "
                                     "respuesta")
    p.add_argument("--now", help="el instante de la revisión (ISO 8601 con zona; por omisión, ahora)")
    p.set_defaults(func=_escalations)

    p = _command(sub, "calendar", "escribe el calendario iCalendar para clientes (festivos y excepciones) en la "
                                  "salida estándar")
    p.add_argument("--start", help="primer día (AAAA-MM-DD; por omisión, hoy)")
    p.add_argument("--days", type=int, default=365, help="cuántos días hacia adelante (por omisión 365)")
    p.set_defaults(func=_calendar)

    p = _command(sub, "score", "clasifica líneas JSON {id, channel, subject, body, received_at, customer_id?}")
    p.add_argument("--batch-size", type=int, default=256,
                   help="mensajes que el modelo puntúa en cada llamada (por omisión 256)")
    p.add_argument("--progress", action="store_true", help="muestra una barra de progreso en la salida de errores")
    p.set_defaults(func=_score)

    p = _command(sub, "train", "entrena un candidato con la partición de entrenamiento del corpus, lo compara con "
                               "el modelo actual y muestra el veredicto (código 0: promovido; 3: no promovido)")
    p.add_argument("--data", help="archivo del corpus (por omisión data/corpus.jsonl)")
    p.add_argument("--seed", type=int, default=0,
                   help="semilla aleatoria (mismos datos y semilla dan las mismas métricas)")
    p.add_argument("--with-feedback", metavar="ARCHIVO",
                   help="correcciones de los agentes (GET /v1/feedback/export); el candidato se promueve solo si "
                        "respeta los límites de retraining en la política")
    p.set_defaults(func=_train)

    model = _command(sub, "model", "versiones del modelo (list, promote, rollback, prune, export-serving, "
                                   "export-to-store); en el almacén o en la carpeta de modelos según "
                                   "CLASSIFIER_MODEL_REGISTRY")
    model_sub = model.add_subparsers(dest="model_command", required=True, metavar="COMANDO")
    p = _command(model_sub, "list", "todas las versiones: actual, anteriores, revertidas y rechazadas, con sus "
                                    "métricas")
    p.set_defaults(func=_model_list)
    p = _command(model_sub, "promote", "pone en servicio una versión de la lista (la actual pasa a ser la anterior)")
    p.add_argument("version", metavar="VERSIÓN", help="la versión, tal como la muestra `model list`")
    p.set_defaults(func=_model_promote)
    p = _command(model_sub, "rollback", "vuelve a poner en servicio el modelo anterior")
    p.set_defaults(func=_model_rollback)
    p = _command(model_sub, "prune", "borra versiones viejas: conserva la actual, la anterior (para rollback) y "
                                     "las N más recientes")
    p.add_argument("--keep", type=_at_least_one, required=True, metavar="N",
                   help="cuántas de las versiones más recientes conservar (al menos 1)")
    p.set_defaults(func=_model_prune)
    p = _command(model_sub, "export-serving", "escribe el .npz de servicio de las versiones guardadas sin él")
    p.set_defaults(func=_model_export_serving)
    p = _command(model_sub, "export-to-store", "pasa las versiones de la carpeta de modelos (archivos y manifiesto, "
                                               "comprobados) al registro del almacén, si este aún no tiene modelo")
    p.add_argument("--models-dir", metavar="CARPETA",
                   help="carpeta de modelos de donde salen (por omisión CLASSIFIER_MODELS_DIR)")
    p.set_defaults(func=_model_export_to_store)

    p = _command(sub, "evaluate", "reglas + modelo en la partición de prueba, external.jsonl, el conjunto real y "
                                  "dejando fuera cada estilo, lado a lado (o en un solo archivo con --data)")
    p.add_argument("--data", help="archivo JSON Lines etiquetado (por omisión, la partición de prueba del corpus)")
    p.add_argument("--split", choices=["train", "test"], help="solo esta partición del archivo")
    p.add_argument("--rules-only", action="store_true",
                   help="precisión y cobertura de las reglas, cifras por regla, impacto")
    p.add_argument("--cv", action="store_true",
                   help="además, validación cruzada agrupada de 5 pliegues en la partición de entrenamiento")
    p.add_argument("--no-loso", action="store_true",
                   help="omite la validación que deja fuera cada estilo (un entrenamiento por estilo, unos minutos)")
    p.add_argument("--out", help="carpeta para evaluation.json y confusion_matrix.png (por omisión models/)")
    p.set_defaults(func=_evaluate)

    db = _command(sub, "db", "herramientas de la base de datos (upgrade, purge)")
    db_sub = db.add_subparsers(dest="db_command", required=True, metavar="COMANDO")
    p = _command(db_sub, "upgrade", "aplica las migraciones del esquema (CLASSIFIER_DATABASE_URL; SQLite por "
                                    "omisión)")
    p.set_defaults(func=_db_upgrade)
    p = _command(db_sub, "purge", "retención (Ley 1581 de 2012): borra los cuerpos de más de N días y conserva "
                                  "las etiquetas")
    p.add_argument("--days", type=int,
                   help="conserva los cuerpos de los últimos N días (por omisión CLASSIFIER_RETENTION_DAYS, 365)")
    p.set_defaults(func=_db_purge)

    jobs = _command(sub, "jobs", "tareas periódicas (escalamiento, retención) que corren una sola vez aunque las "
                                 "lancen varias instancias")
    jobs_sub = jobs.add_subparsers(dest="jobs_command", required=True, metavar="COMANDO")
    p = _command(jobs_sub, "run", "ejecuta una vez las tareas: escalations (tickets de N1 con el tiempo de respuesta "
                                  "vencido pasan a N2), purge (retención) o all; con PostgreSQL, si otra instancia "
                                  "está ejecutando una, esta la omite")
    p.add_argument("job", nargs="?", choices=["escalations", "purge", "all"], default="all", metavar="TAREA",
                   help="escalations, purge o all (por omisión all)")
    p.add_argument("--now", help="el instante de la revisión de escalamiento (ISO 8601 con zona; por omisión, ahora)")
    p.set_defaults(func=_jobs_run)

    data = _command(sub, "data", "herramientas del corpus (check, merge, reference)")
    data_sub = data.add_subparsers(dest="data_command", required=True, metavar="COMANDO")
    p = _command(data_sub, "check", "valida un archivo del corpus y muestra sus cuentas")
    p.add_argument("file", nargs="?", metavar="ARCHIVO", help="archivo del corpus (por omisión data/corpus.jsonl)")
    p.add_argument("--profile", choices=["corpus", "feedback"], default="corpus",
                   help="corpus: además tamaño y equilibrio de etiquetas; feedback: correcciones exportadas de los "
                        "agentes")
    p.set_defaults(func=_data_check)
    p = _command(data_sub, "merge", "añade al corpus filas recién escritas (aún sin grupo ni partición)")
    p.add_argument("parts", nargs="+", metavar="ARCHIVO",
                   help="archivos JSON Lines de filas nuevas (campos del corpus sin `group` ni `split`)")
    p.add_argument("--corpus", help="archivo del corpus que crece (por omisión data/corpus.jsonl)")
    p.add_argument("--seed", type=int, default=0, help="semilla del sorteo entre entrenamiento y prueba")
    p.set_defaults(func=_data_merge)
    p = _command(data_sub, "reference", "entrena el modelo de referencia simple y muestra su macro-F1 en prueba")
    p.add_argument("file", nargs="?", metavar="ARCHIVO", help="archivo del corpus (por omisión data/corpus.jsonl)")
    p.add_argument("--eval", help="evalúa en este archivo etiquetado en vez de la partición de prueba "
                                  "(p. ej. data/external.jsonl)")
    p.set_defaults(func=_data_reference)

    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except ConfigError as exc:
        print(f"error de configuración: {exc}", file=sys.stderr)
        return 2
    except ClassifierError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
