"""moto's S3 server, as the tests run it, with one bug of moto's mended.

moto picks the service of a signed request by reading a SigV4 credential scope out of the
Authorization header: ``auth.split(",")[0].split()[1].split("/")`` must give five parts. A
SigV2 header (``AWS AKID:signature``, knox's default) normally fails that and is taken as S3;
but a base64 signature with exactly four ``/`` in it (about one request in 1,400) splits
into five parts too, names a service that does not exist, and moto answers 500
(``AttributeError`` in ``backends.get_backend``). The real knox and knoxpy alike met it, at
random, in the side-by-side tests. Here a SigV2 header is always S3's, as moto means it to be.

Run as ``python -m test.servers.moto_s3 -H 127.0.0.1 -p PORT`` or by path; the arguments
are moto.server's.
"""
from __future__ import annotations

import sys
from typing import Any, Dict, Optional

from moto.moto_server.werkzeug_app import DomainDispatcherApplication
from moto.server import main

_infer = DomainDispatcherApplication.infer_service_region_host


def _infer_sigv2_as_s3(self: DomainDispatcherApplication, environ: Dict[str, Any],
                       path: str) -> Optional[str]:
    if environ.get("HTTP_AUTHORIZATION", "").startswith("AWS "):
        return None  # moto's own answer for a SigV2 header: its default, S3 in us-east-1
    return _infer(self, environ, path)


DomainDispatcherApplication.infer_service_region_host = _infer_sigv2_as_s3  # type: ignore

if __name__ == "__main__":
    main(sys.argv[1:])
