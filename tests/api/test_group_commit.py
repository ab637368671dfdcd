"""Turn groups: the requests of one event-loop turn are scored together and share a transaction, and each still
gets its own answer."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import func, select

from api.group_commit import GroupCommit
from api.metrics import STORE_GROUPS
from classifier.ingest import Message
from classifier.pipeline import Classifier
from classifier.store.db import sessions, upgrade
from classifier.store.repository import IdConflict
from classifier.store.tables import ClassificationRow
from tests.conftest import at, repo_settings
from tests.servers import post_json, running_server


def _groups() -> tuple[float, float]:
    """(transactions, rows) observed so far by the group-size histogram."""
    samples = {s.name: s.value for s in STORE_GROUPS.collect()[0].samples}
    return samples["clasificador_store_group_size_count"], samples["clasificador_store_group_size_sum"]


def _rows(url: str) -> int:
    with sessions(url)() as session:
        return session.scalar(select(func.count()).select_from(ClassificationRow))


@pytest.fixture
def store(database_url):
    upgrade(database_url)
    return GroupCommit(database_url, store_bodies=True)


@pytest.fixture(scope="module")
def classifier() -> Classifier:
    return Classifier.load(repo_settings())


MESSAGES = [Message("caida", "email", "Urgente", "No carga la plataforma para ningún docente desde esta mañana.",
                    at("2026-11-25 09:00")),
            Message("consulta", "chat", "", "Buenas tardes, ¿cómo descargo el informe de asistencia?",
                    at("2026-11-25 10:30")),
            Message("sugerencia", "email", "Idea", "Sería bueno poder cambiar el color del menú.",
                    at("2026-11-27 18:00"))]


def _alone(classifier: Classifier, message: Message) -> dict:
    return classifier.classify(message).as_dict()


def _one_turn(store: GroupCommit, classifier: Classifier, *requests: list[Message], extra=None) -> list:
    """Each list of messages as one request, all started in the same event-loop turn; a failure is returned."""
    async def turn():
        return await asyncio.gather(*(store.classify_and_store(classifier, r, (extra or {}).get(i)) for i, r in
                                      enumerate(requests)), return_exceptions=True)

    return asyncio.run(turn())


def test_messages_of_one_turn_are_scored_in_one_pass_each_as_if_alone(store, classifier, monkeypatch):
    calls: list[int] = []
    score = classifier.classify_many
    monkeypatch.setattr(classifier, "classify_many", lambda ms, **kw: calls.append(len(ms)) or score(ms, **kw))
    before = _groups()

    [(first, new_1)], [(second, new_2), (third, new_3)] = _one_turn(
        store, classifier, [MESSAGES[0]], MESSAGES[1:], extra={1: [{"fuente": "a"}, {"fuente": "b"}]})
    assert calls == [3] and new_1 and new_2 and new_3
    assert len({a["classification_id"] for a in (first, second, third)}) == 3
    assert (_groups()[0] - before[0], _groups()[1] - before[1]) == (1, 3)
    monkeypatch.undo()
    for answer, message, extra in ((first, MESSAGES[0], {}), (second, MESSAGES[1], {"fuente": "a"}),
                                   (third, MESSAGES[2], {"fuente": "b"})):
        assert {k: v for k, v in answer.items() if k != "classification_id"} == {**_alone(classifier, message),
                                                                                **extra}
    assert [a["priority"] for a in (first, second, third)] != [first["priority"]] * 3  # distinct answers


def test_a_message_that_cannot_be_scored_fails_its_own_request_only(store, classifier, database_url, monkeypatch):
    score = classifier.classify_many

    def fragile(ms, **kw):
        if any(m.id == "mal" for m in ms):
            raise ValueError("no se pudo clasificar")
        return score(ms, **kw)

    monkeypatch.setattr(classifier, "classify_many", fragile)
    bad = Message("mal", "chat", "", "texto", at("2026-11-25 09:00"))

    good_1, failed, good_2 = _one_turn(store, classifier, [MESSAGES[0]], [bad], [MESSAGES[1]])
    assert isinstance(failed, ValueError)
    assert good_1[0][0]["id"] == "caida" and good_2[0][0]["id"] == "consulta"
    assert _rows(database_url) == 2


def test_the_same_id_twice_in_a_group_is_stored_once(store, classifier, database_url):
    caida = MESSAGES[0]
    retry = Message(caida.id, caida.channel, caida.subject, caida.body, at("2026-11-25 09:05"))  # same message again
    claim = Message(caida.id, "chat", "", "¿Cómo cambio mi contraseña?", at("2026-11-25 09:05"))  # same id, other text

    [(first, new_1)], [(_, new_2)], [(second, new_3)], [conflict] = _one_turn(
        store, classifier, [caida], [MESSAGES[1]], [retry], [claim])
    assert (new_1, new_2, new_3) == (True, True, False)
    assert second == first and second["priority"] == _alone(classifier, caida)["priority"]
    assert isinstance(conflict, IdConflict) and conflict.message_id == caida.id  # never the other's result
    assert _rows(database_url) == 2


def test_a_request_whose_rows_cannot_be_written_fails_alone(store, classifier, database_url, monkeypatch):
    import api.group_commit as group_commit

    write = group_commit.save_classifications

    def refusing(*, items, **kw):  # as a database refusing one request's row (a constraint, a value it cannot hold)
        if any(item.message.id == "mal" for item in items):
            raise ValueError("fila rechazada")
        return write(items=items, **kw)

    monkeypatch.setattr(group_commit, "save_classifications", refusing)
    bad = Message("mal", "chat", "", "la plataforma no carga", at("2026-11-25 09:00"))

    good_1, failed, good_2 = _one_turn(store, classifier, [MESSAGES[0]], [bad], [MESSAGES[1]])
    assert isinstance(failed, ValueError)
    assert good_1[0][1] and good_2[0][1]
    assert _rows(database_url) == 2


def test_rows_stored_one_by_one_keep_their_outcome_when_a_later_row_fails(store, classifier, database_url,
                                                                           monkeypatch):
    """A repeated id sends the group to one transaction per row; a row then refused for another reason fails its
    own request, and the rows committed before it still answer as new, not as earlier copies."""
    import classifier.store.repository as repository

    insert = repository._insert

    def refusing(connection, rows):
        if any(row["message_id"] == "mal" for row in rows) and len(rows) == 1:
            raise ValueError("valor rechazado")
        return insert(connection, rows)

    monkeypatch.setattr(repository, "_insert", refusing)
    twin = Message("caida", "email", "Urgente", MESSAGES[0].body, at("2026-11-25 09:01"))  # a retry of the first
    bad = Message("mal", "chat", "", "la plataforma no carga", at("2026-11-25 09:00"))

    first, failed, last = _one_turn(store, classifier, [MESSAGES[0], twin], [bad], [MESSAGES[1]])
    assert isinstance(failed, ValueError)
    assert [created for _, created in first] == [True, False] and first[1][0] == first[0][0]
    assert last[0][1] is True
    assert _rows(database_url) == 2


def test_a_group_larger_than_one_by_one_scores_as_each_message_alone(store, classifier):
    from classifier.corpus import load_rows
    from classifier.pipeline import ONE_BY_ONE

    rows = load_rows(repo_settings().corpus_path)[: ONE_BY_ONE * 2 + 3]
    messages = [Message(f"g{i}", r.channel, r.subject, r.body, at("2026-11-25 09:00"))
                for i, r in enumerate(rows)]

    half = len(messages) // 2
    answers = [stored for part in _one_turn(store, classifier, messages[:half], messages[half:]) for stored, _ in part]
    for answer, message in zip(answers, messages, strict=True):
        alone = _alone(classifier, message)
        assert answer["priority"] == alone["priority"] and answer["rules"] == alone["rules"]
        assert abs(answer["confidence"] - alone["confidence"]) < 1e-3


def test_without_grouping_each_request_is_its_own_group_with_the_same_results(database_url, classifier):
    upgrade(database_url)
    alone = GroupCommit(database_url, store_bodies=True, grouped=False)
    before = _groups()

    answers = _one_turn(alone, classifier, [MESSAGES[0]], MESSAGES[1:])
    assert (_groups()[0] - before[0], _groups()[1] - before[1]) == (2, 3)  # two transactions: one per request
    for (answer, created), message in zip([a for part in answers for a in part], MESSAGES, strict=True):
        assert created
        assert {k: v for k, v in answer.items() if k != "classification_id"} == _alone(classifier, message)


def test_concurrent_requests_over_http_each_get_their_own_stored_answer(tmp_path):
    url = f"sqlite:///{tmp_path / 'store.sqlite3'}"
    upgrade(url)
    bodies = [{"id": f"correo-{i}", "channel": "email", "subject": "Consulta",
               "body": f"Buenas tardes, ¿cómo descargo el informe {i} de asistencia?"} for i in range(24)]
    bodies += [{"id": "repetido", "channel": "chat", "body": "No carga la plataforma para ningún docente"}] * 8
    with running_server({"CLASSIFIER_DATABASE_URL": url, "CLASSIFIER_AUTO_MIGRATE": "false"}) as port:
        with ThreadPoolExecutor(16) as pool:
            answers = list(pool.map(lambda body: post_json(port, "/v1/classify", body), bodies))
    assert [a["id"] for a in answers] == [b["id"] for b in bodies]
    assert len({a["classification_id"] for a in answers[:24]}) == 24
    repeated = answers[24:]
    assert len({a["classification_id"] for a in repeated}) == 1
    assert sum(not a["duplicate"] for a in repeated) == 1
    assert _rows(url) == 25
