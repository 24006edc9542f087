"""When to try a request again, and how long to wait: pure decisions, no I/O.

Transient failures are retried with exponential backoff and full jitter
(AWS's recommendation: ``sleep = random(0, min(cap, base * 2 ** attempt))``):
connection reset/refused, timeouts, broken pipes, HTTP 500, 502, 503
(``SlowDown``), 504, 400 ``RequestTimeout``, and 409 ``ConditionalRequestConflict`` (a
conditional write that raced another: S3 says to try again). Only requests whose body can be
replayed are retried; each attempt is signed afresh by the sender.
"""
from __future__ import annotations

import random
import re
from typing import Optional

__all__ = ["Backoff", "error_code_of", "transient_reason"]

TRANSIENT_ERRNO_CODES = frozenset({"ECONNRESET", "ETIMEDOUT", "ECONNREFUSED", "EPIPE"})
TRANSIENT_STATUS = frozenset({500, 502, 503, 504})
TRANSIENT_S3_CODES = frozenset({"RequestTimeout", "SlowDown", "InternalError",
                                "ServiceUnavailable", "RequestTimeTooSkewed"})
_CODE = re.compile(rb"<Code>([^<]{1,100})</Code>")


def error_code_of(body: bytes) -> Optional[str]:
    """The ``<Code>`` of an S3 error body, found without a full parse (bodies are small)."""
    m = _CODE.search(body[:65536])
    return m.group(1).decode("utf-8", "replace") if m else None


def transient_reason(
    status: Optional[int] = None, code: Optional[str] = None
) -> Optional[str]:
    """Why a failure is worth retrying (``'503 SlowDown'``, ``'ECONNRESET'``), or None."""
    if status is None:
        return code if code in TRANSIENT_ERRNO_CODES else None
    if status in TRANSIENT_STATUS:
        return f"{status} {code}" if code else str(status)
    if status == 400 and code in TRANSIENT_S3_CODES:
        return f"{status} {code}"
    if status == 409 and code == "ConditionalRequestConflict":
        return f"{status} {code}"
    return None


class Backoff:
    """Exponential backoff with full jitter; ``max_retries=0`` turns retries off."""

    def __init__(self, max_retries: int = 3, base: float = 0.1, cap: float = 20.0) -> None:
        if max_retries < 0:
            raise ValueError("maxRetries must be 0 or more")
        self.max_retries = max_retries
        self.base = base
        self.cap = cap

    def delay(self, attempt: int, retry_after: Optional[float] = None) -> float:
        """Seconds to wait before retry number ``attempt + 1`` (``attempt`` counts from 0)."""
        ceiling = min(self.cap, self.base * (2 ** attempt))
        wait = random.uniform(0, ceiling)
        if retry_after is not None:
            wait = max(wait, min(retry_after, self.cap))
        return wait

    def __repr__(self) -> str:
        return f"Backoff(max_retries={self.max_retries}, base={self.base}, cap={self.cap})"
