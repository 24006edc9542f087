"""The exceptions knoxpy raises or passes to callbacks.

::

    Exception
     └── KnoxError                      every knoxpy error
          ├── ValidationError (ValueError)   bad input, with knox's own messages
          ├── RequestError (OSError)         a transport failure, Node-style ``.code``:
          │                                    ECONNRESET, ETIMEDOUT, ECONNREFUSED, ENOTFOUND,
          │                                    EPIPE, EPROTO, ECONNABORTED (aborted by the caller)
          ├── S3Error                        an S3 error answer (beyond-knox calls only):
          │    │                               .code .message .statusCode .requestId
          │    └── PreconditionFailed         412: a conditional write (If-None-Match: *,
          │                                    If-Match: ETag) or read found another object
          ├── IntegrityError                 a body that is short, long or corrupt
          ├── Cancelled                      stopped by Ctrl-C (knoxpy._cancel): an upload
          │                                    aborted, a partial file removed
          └── MalformedXML (ValueError)      XML from the server that is bad or hostile
                                               (knoxpy._xml; exported as knoxpy.MalformedXML)

Following knox, a non-2xx answer to one of knox's own calls (``get``, ``getFile``,
``put``...) is a response, not an error. Transport errors are mapped from urllib3's
and the socket's in exactly one place, ``knoxpy._transport``.
"""
from __future__ import annotations

from typing import Any, Optional

__all__ = ["Cancelled", "IntegrityError", "KnoxError", "PreconditionFailed", "RequestError",
           "S3Error",
           "ValidationError"]


class KnoxError(Exception):
    """Base class of every error knoxpy raises."""


class ValidationError(KnoxError, ValueError):
    """Bad input to a knoxpy call; the message is knox's, word for word where knox has one."""


class RequestError(KnoxError, OSError):
    """A request failed in transport: no complete answer came back.

    ``code`` is Node's name for it (``'ECONNRESET'``, ``'ETIMEDOUT'``...), ``method`` and
    ``url`` say which request (the URL never carries a signature or token).
    """

    def __init__(self, message: str, code: str, *, method: str = "", url: str = "") -> None:
        super().__init__(message)
        self.code = code
        self.method = method
        self.url = url

    def __str__(self) -> str:
        where = f" ({self.method} {self.url})" if self.url else ""
        return f"{self.code}: {self.args[0]}{where}"

    def __reduce__(self) -> Any:
        return (type(self), (self.args[0], self.code), {"method": self.method, "url": self.url})


class S3Error(KnoxError):
    """An error answer from S3, parsed from its XML body.

    ``code`` (``'NoSuchKey'``, ``'SlowDown'``...), ``message``, ``statusCode``,
    ``requestId`` and, when S3 sends them, ``resource``, ``key``, ``bucket``, ``region``.
    """

    def __init__(
        self,
        code: str,
        message: str = "",
        statusCode: int = 0,
        requestId: Optional[str] = None,
        *,
        key: Optional[str] = None,
        bucket: Optional[str] = None,
        region: Optional[str] = None,
        resource: Optional[str] = None,
    ) -> None:
        super().__init__(code, message, statusCode)
        self.code = code
        self.message = message
        self.statusCode = statusCode
        self.status_code = statusCode
        self.requestId = requestId
        self.request_id = requestId
        self.key = key
        self.bucket = bucket
        self.region = region
        self.resource = resource

    def __str__(self) -> str:
        text = f"{self.code} ({self.statusCode})"
        if self.message:
            text += f": {self.message}"
        if self.key:
            text += f" [key {self.key!r}]"
        return text


class PreconditionFailed(S3Error):
    """412 Precondition Failed: the object is not the one a condition named.

    A write with ``If-None-Match: *`` (create only) found the key taken; one with
    ``If-Match: <ETag>`` (compare-and-swap) found another version; a read with
    ``If-Match`` found the object changed. Never retried: trying again cannot help.
    """


class IntegrityError(KnoxError):
    """A body did not match what was promised (length, ETag or checksum)."""


class Cancelled(KnoxError):
    """The operation was stopped because everything was cancelled (Ctrl-C).

    What it had begun is undone as on any failure: a multipart upload is aborted, a
    partial download removed. Its callback and ``wait()`` get this error.
    """

    def __init__(self, message: str = "cancelled (interrupted)") -> None:
        super().__init__(message)
