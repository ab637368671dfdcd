"""Group commit: classifications stored by requests handled in the same turn of the event loop share one
transaction.

Under load a worker finishes several classifications between two looks at its sockets; writing them with one
INSERT and one commit costs about as much as writing one. Every request still waits for its own rows to be
committed before it answers, so nothing is acknowledged that is not stored. With one request at a time the
group is that request alone.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from api.metrics import STORE_GROUPS
from classifier.ingest import Message
from classifier.store.db import engine_for
from classifier.store.repository import find_by_message_ids, save_classifications

Item = tuple[Message, dict]
Saved = tuple[dict, bool]


class GroupCommit:
    """Collects the rows of the requests of one event-loop turn and stores them together (one per worker)."""

    def __init__(self, database_url: str, *, store_bodies: bool):
        self.database_url = database_url
        self.store_bodies = store_bodies
        self._waiting: list[tuple[list[Item], asyncio.Future]] = []

    def stored(self, message_ids: Sequence[str]) -> dict[str, dict]:
        """Results already stored for these message ids (read now: reads need no grouping)."""
        if not message_ids:
            return {}
        with engine_for(self.database_url).connect() as conn:
            return find_by_message_ids(session=conn, message_ids=message_ids)

    async def save(self, items: Sequence[Item]) -> list[Saved]:
        """Store ``items`` (message, result) and return each stored result and whether it was new."""
        if not items:
            return []
        loop = asyncio.get_running_loop()
        done = loop.create_future()
        if not self._waiting:  # the first of this turn: flush once the requests already running have added theirs
            loop.call_soon(self._flush)
        self._waiting.append((list(items), done))
        return await done

    def _write(self, items: list[Item]) -> list[Saved]:
        STORE_GROUPS.observe(len(items))
        with engine_for(self.database_url).connect() as conn:
            return save_classifications(session=conn, items=items, store_body=self.store_bodies)

    def _flush(self) -> None:
        group, self._waiting = self._waiting, []
        try:
            saved = self._write([item for items, _ in group for item in items])
        except Exception as exc:
            if len(group) == 1:
                _settle(group[0][1], exc=exc)
                return
            for items, done in group:  # one request's failure is not the others': each on its own
                try:
                    _settle(done, result=self._write(items))
                except Exception as alone:
                    _settle(done, exc=alone)
            return
        start = 0
        for items, done in group:
            _settle(done, result=saved[start:start + len(items)])
            start += len(items)


def _settle(done: asyncio.Future, *, result=None, exc: BaseException | None = None) -> None:
    if done.done():  # the request was cancelled (client gone): its rows are stored all the same
        return
    if exc is not None:
        done.set_exception(exc)
    else:
        done.set_result(result)
