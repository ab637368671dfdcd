"""Turn groups: the messages of the requests handled in the same turn of the event loop are scored together and
stored with one transaction.

Under load a worker takes several requests between two looks at its sockets. Scoring their messages one stage
at a time over all of them (clean-up, then rules, then model, then deadlines) keeps each stage's tables and code
in the processor's caches, and writing their rows with one INSERT and one commit costs about as much as writing
one. Every request still waits for its own rows to be committed before it answers, so nothing is acknowledged
that is not stored; one request's failure is never another's. With one request at a time the group is that
request alone. With ``CLASSIFIER_GROUP_COMMIT=false`` every request is its own group, with the same results.

A message whose id is stored for another message comes back as ``IdConflict`` in its place. A store that cannot
write fails the whole group with ``StoreUnavailable`` at once (retrying each request alone could only fail again),
and every write's outcome is recorded in the ``WriteHealth`` that /readyz reports.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass

from uuid6 import uuid7

from api.metrics import STORE_GROUPS
from classifier.ingest import Message
from classifier.pipeline import Classifier
from classifier.store.db import StoreUnavailable, WriteHealth, engine_for, typed_store_errors
from classifier.store.repository import (IdConflict, NewClassification, Saved, Stored, find_by_message_ids,
                                         save_classifications)

Outcome = Saved | IdConflict


@dataclass
class _Pending:
    """One request's part of a group: its messages, what scores them, and (once scored) what to store."""

    classifier: Classifier
    messages: list[Message]
    extra: list[dict] | None  # merged into each new result (e.g. the e-mail's received-at source)
    done: asyncio.Future
    ids: list[str]  # each row's classification id, fixed before the first write: a retry tells its own rows apart
    items: list[NewClassification] | None = None


class GroupCommit:
    """Collects the requests of one event-loop turn, scores their messages together and stores them in one
    transaction (one per worker); with ``grouped`` off, each request alone, at once."""

    def __init__(self, database_url: str, *, store_bodies: bool, grouped: bool = True,
                 health: WriteHealth | None = None):
        self.database_url = database_url
        self.store_bodies = store_bodies
        self.grouped = grouped
        self.health = health or WriteHealth(database_url)
        self._waiting: list[_Pending] = []

    def stored(self, message_ids: Sequence[str]) -> dict[str, Stored]:
        """Results already stored for these message ids (read now: reads need no grouping)."""
        if not message_ids:
            return {}
        with typed_store_errors(), engine_for(self.database_url).connect() as conn:
            return find_by_message_ids(session=conn, message_ids=message_ids)

    async def classify_and_store(self, classifier: Classifier, messages: Sequence[Message],
                                 extra: Sequence[dict] | None = None) -> list[Outcome]:
        """Score ``messages`` with ``classifier`` (with those of the other requests of this turn), store them, and
        return each stored result and whether it was new (an id stored before for the same message returns the
        earlier result; for another message, ``IdConflict``)."""
        if not messages:
            return []
        loop = asyncio.get_running_loop()
        pending = _Pending(classifier, list(messages), list(extra) if extra is not None else None, loop.create_future(),
                           [str(uuid7()) for _ in messages])
        if not self.grouped:
            self._run([pending])
        else:
            if not self._waiting:  # the first of this turn: flush once the requests already running have added theirs
                loop.call_soon(self._flush)
            self._waiting.append(pending)
        return await pending.done

    def _flush(self) -> None:
        group, self._waiting = self._waiting, []
        self._run(group)

    def _run(self, group: list[_Pending]) -> None:
        try:
            self._score_and_store(group)
        except BaseException:  # never leave a request waiting, whatever escaped (the loop logs it)
            for p in group:
                _settle(p.done, exc=RuntimeError("the classification could not be completed"))
            raise

    def _score_and_store(self, group: list[_Pending]) -> None:
        _score(group)
        group = [p for p in group if p.items is not None]  # the others' scoring failed: settled already
        if not group:
            return
        try:
            saved = self._write([item for p in group for item in p.items])
        except StoreUnavailable as exc:
            for p in group:
                _settle(p.done, exc=exc)
            return
        except Exception as exc:
            if len(group) == 1:
                _settle(group[0].done, exc=exc)
                return
            for p in group:  # one request's failure is not the others': each on its own (rows already committed
                try:         # come back as new, by their classification ids)
                    _settle(p.done, result=self._write(p.items))
                except Exception as alone:
                    _settle(p.done, exc=alone)
            return
        start = 0
        for p in group:
            _settle(p.done, result=saved[start:start + len(p.messages)])
            start += len(p.messages)

    def _write(self, items: list[NewClassification]) -> list[Outcome]:
        STORE_GROUPS.observe(len(items))
        with self.health.watch(), typed_store_errors(), engine_for(self.database_url).connect() as conn:
            return save_classifications(session=conn, items=items, store_body=self.store_bodies)


def _score(pending: list[_Pending]) -> None:
    """Fill in each request's results: one ``classify_many`` per classifier (a reload may fall between two requests
    of a turn) over all their messages; if that fails, request by request, so that a failure is settled on its own
    request."""
    by_classifier: dict[int, list[_Pending]] = {}
    for p in pending:
        by_classifier.setdefault(id(p.classifier), []).append(p)
    for part in by_classifier.values():
        try:
            _fill(part)
        except Exception:
            for p in part:
                try:
                    _fill([p])
                except Exception as exc:
                    p.items = None
                    _settle(p.done, exc=exc)


def _fill(part: list[_Pending]) -> None:
    scored = part[0].classifier.classify_many([m for p in part for m in p.messages])
    start = 0
    for p in part:
        mine, start = scored[start:start + len(p.messages)], start + len(p.messages)
        p.items = [NewClassification.of(c, classification_id=p.ids[i], extra=p.extra[i] if p.extra else None)
                   for i, c in enumerate(mine)]


def _settle(done: asyncio.Future, *, result=None, exc: BaseException | None = None) -> None:
    if done.done():  # the request was cancelled (client gone): its rows are stored all the same
        return
    if exc is not None:
        done.set_exception(exc)
    else:
        done.set_result(result)
