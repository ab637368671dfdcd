"""The review page's session: a cookie naming the agent, with an expiry, signed with the API key."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time

COOKIE = "revision_sesion"
SESSION_SECONDS = 12 * 3600


def _sign(key: str, payload: str) -> str:
    return hmac.new(key.encode(), payload.encode(), hashlib.sha256).hexdigest()


def make_session(key: str, agent: str) -> str:
    agent_b64 = base64.urlsafe_b64encode(agent.encode()).decode()
    payload = f"{agent_b64}.{int(time.time()) + SESSION_SECONDS}"
    return f"{payload}.{_sign(key, payload)}"


def session_agent(key: str | None, cookie: str | None) -> str | None:
    """The agent of a valid, unexpired session cookie signed with the API key (constant-time check)."""
    if not key or not cookie or cookie.count(".") != 2:
        return None
    agent_b64, expiry, signature = cookie.split(".")
    if not hmac.compare_digest(signature, _sign(key, f"{agent_b64}.{expiry}")):
        return None
    if not expiry.isdigit() or int(expiry) < time.time():
        return None
    try:
        return base64.urlsafe_b64decode(agent_b64.encode()).decode()
    except (ValueError, UnicodeDecodeError):
        return None
