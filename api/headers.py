"""ASGI middleware: security headers on every response (pages, JSON, errors), without replacing a route's own.

Pages set their own Content-Security-Policy (with a nonce, ``api/routes/page.py``); other responses get one that
forbids framing, and JSON one that loads nothing at all. Nothing is cached: keyed answers and pages hold
customers' messages.
"""

from __future__ import annotations

DEFAULTS: tuple[tuple[bytes, bytes], ...] = (
    (b"x-frame-options", b"DENY"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"cache-control", b"no-store"),
)
CSP = b"content-security-policy"
CSP_HTML = b"frame-ancestors 'none'"  # HTML we do not render ourselves (the OpenAPI docs) keeps its scripts
CSP_OTHER = b"default-src 'none'; frame-ancestors 'none'"


class SecurityHeadersMiddleware:
    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message):
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", ()))
                present = {name.lower() for name, _ in headers}
                headers.extend(h for h in DEFAULTS if h[0] not in present)
                if CSP not in present:
                    ctype = next((v for k, v in headers if k.lower() == b"content-type"), b"")
                    headers.append((CSP, CSP_HTML if ctype.startswith(b"text/html") else CSP_OTHER))
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_headers)
