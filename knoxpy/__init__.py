"""knoxpy: the Python port of knox, the Node.js Amazon S3 client.

>>> import knoxpy
>>> client = knoxpy.createClient(key='<api-key-here>', secret='<secret-here>',
...                              bucket='learnboost')
>>> client.http('/test/Readme.md')
'http://learnboost.s3.amazonaws.com/test/Readme.md'

Requests are Node-style event emitters; callbacks run on knoxpy's loop (see
``docs/execution-model.md``): in ``knoxpy.run()``, in ``.wait()``, or when the
script ends.
"""
from __future__ import annotations

from . import auth, utils
from ._emitter import Emitter, Operation
from ._loop import run
from ._streams import ClientRequest, IncomingMessage, Progress
from ._xml import MalformedXML
from .client import Client, create_client, createClient
from .errors import (
    Cancelled,
    IntegrityError,
    KnoxError,
    PreconditionFailed,
    RequestError,
    S3Error,
    ValidationError,
)

__version__ = "0.1.0"

__all__ = [
    "Cancelled",
    "Client",
    "ClientRequest",
    "Emitter",
    "IncomingMessage",
    "IntegrityError",
    "KnoxError",
    "MalformedXML",
    "Operation",
    "PreconditionFailed",
    "Progress",
    "RequestError",
    "S3Error",
    "ValidationError",
    "__version__",
    "auth",
    "createClient",
    "create_client",
    "run",
    "utils",
]
