"""The review page's sessions: a random id in the cookie, its sha256 in the store, and a CSRF token derived from it.

The store's record (agent, role, fingerprint of the key that opened it, expiry, revocation) decides whether a
cookie still works, so logout, expiry and removing the key end a session on the server, not only in the browser.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass

from sqlalchemy.orm import Session

from api.keys import IMPLIES, Keyring
from classifier.store.sessions import create_session, live_session, revoke_session

COOKIE = "revision_sesion"
CSRF_HEADER = "x-csrf-token"
CSRF_FIELD = "csrf"


@dataclass(frozen=True, slots=True)
class ReviewSession:
    """A live session as a request sees it: the raw id (from the cookie), its agent and the roles it has now."""

    token: str
    agent: str
    roles: frozenset[str]

    @property
    def csrf(self) -> str:
        return csrf_token(self.token)


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def csrf_token(token: str) -> str:
    """The session's CSRF token: an HMAC of its id, so only a holder of the cookie's value can compute it."""
    return hmac.new(token.encode("utf-8"), b"csrf", hashlib.sha256).hexdigest()


def csrf_valid(session: ReviewSession, given: str | None) -> bool:
    return bool(given) and hmac.compare_digest(given.encode("utf-8", "replace"), session.csrf.encode())


def open_session(*, db: Session, agent: str, role: str, key_id: str, seconds: int) -> str:
    """Store a new session and return its id for the cookie (only its digest is stored)."""
    token = secrets.token_urlsafe(32)
    create_session(session=db, id_hash=_digest(token), agent=agent, role=role, key_id=key_id, seconds=seconds)
    return token


def find_session(*, db: Session, token: str | None, keys: Keyring) -> ReviewSession | None:
    """The live session of this cookie value, with the roles its key still grants; None once revoked, expired
    or opened with a key that is no longer configured."""
    if not token or len(token) > 128:
        return None
    row = live_session(session=db, id_hash=_digest(token))
    if row is None:
        return None
    roles = keys.roles_of(row.key_id) & IMPLIES.get(row.role, frozenset())
    return ReviewSession(token, row.agent, roles) if roles else None


def close_session(*, db: Session, token: str) -> bool:
    return revoke_session(session=db, id_hash=_digest(token))
