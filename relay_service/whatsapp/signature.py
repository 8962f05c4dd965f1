"""``X-Hub-Signature-256``: HMAC-SHA256 of the raw webhook body with the app secret."""

from __future__ import annotations

import hashlib
import hmac

HEADER = "X-Hub-Signature-256"


def sign(app_secret: str, body: bytes) -> str:
    """The header value Meta sends for ``body``: ``sha256=<hex>``."""
    digest = hmac.new(app_secret.encode(), body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


def verify(app_secret: str, body: bytes, header: str | None) -> bool:
    """Whether ``header`` is the right signature of the raw ``body`` (constant-time compare)."""
    if not header or not app_secret:
        return False
    return hmac.compare_digest(sign(app_secret, body).encode(), header.strip().encode())
