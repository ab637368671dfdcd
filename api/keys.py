"""API keys by role: which configured key a request carries, checked in constant time, and the roles it grants.

Roles: ``gateway`` (classify), ``agent`` (review, feedback, quality) and ``admin`` (reload, export, escalation
check; admin implies agent). CLASSIFIER_API_KEY is one key with every role. A key is known elsewhere only by
its fingerprint (a truncated HMAC), never by its value.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from functools import lru_cache
from typing import Literal

from classifier.settings import Settings

Role = Literal["gateway", "agent", "admin"]
IMPLIES: dict[str, frozenset[str]] = {"gateway": frozenset({"gateway"}), "agent": frozenset({"agent"}),
                                      "admin": frozenset({"admin", "agent"})}
ENV: dict[str, str] = {"gateway": "CLASSIFIER_GATEWAY_KEYS", "agent": "CLASSIFIER_AGENT_KEYS",
                       "admin": "CLASSIFIER_ADMIN_KEYS"}


def key_id(key: str) -> str:
    """A fingerprint naming a key in the store (sessions) without revealing it."""
    return hmac.new(b"clasificador/key-id", key.encode("utf-8"), hashlib.sha256).hexdigest()[:24]


@dataclass(frozen=True, slots=True)
class KeyMatch:
    key_id: str
    roles: frozenset[str]


@dataclass(frozen=True, slots=True)
class Keyring:
    """Every configured key with its fingerprint and roles."""

    keys: tuple[tuple[bytes, KeyMatch], ...]  # (sha256 of the key, what it grants): equal lengths, no length leak

    @property
    def configured(self) -> bool:
        return bool(self.keys)

    def grants(self, role: str) -> bool:
        """Some configured key has this role."""
        return any(role in match.roles for _, match in self.keys)

    def match(self, given: str) -> KeyMatch | None:
        """The key ``given`` is, compared in constant time against every configured key (no early exit)."""
        found = None
        candidate = hashlib.sha256(given.encode("utf-8")).digest()
        for digest, match in self.keys:
            if hmac.compare_digest(candidate, digest):
                found = match
        return found

    def roles_of(self, fingerprint: str) -> frozenset[str]:
        """The roles the key with this fingerprint grants now (none once it is no longer configured)."""
        return next((match.roles for _, match in self.keys if hmac.compare_digest(match.key_id, fingerprint)),
                    frozenset())


@lru_cache(maxsize=8)
def _keyring(api_key: str | None, by_role: tuple[tuple[str, tuple[str, ...]], ...]) -> Keyring:
    roles: dict[str, set[str]] = {}
    for role, keys in by_role:
        for key in keys:
            roles.setdefault(key, set()).update(IMPLIES[role])
    if api_key:
        roles.setdefault(api_key, set()).update(("gateway", "agent", "admin"))
    return Keyring(tuple((hashlib.sha256(key.encode("utf-8")).digest(), KeyMatch(key_id(key), frozenset(granted)))
                         for key, granted in roles.items()))


def keyring(settings: Settings) -> Keyring:
    """The settings' keys (built once per distinct configuration)."""
    return _keyring(settings.api_key or None, (("gateway", settings.gateway_keys), ("agent", settings.agent_keys),
                                               ("admin", settings.admin_keys)))
