"""How large a request body each endpoint reads: its documented image limits, in bytes.

Why per endpoint: v2 match may carry 20 MB of base64 and v2 addUser 10 MB, but a 20 MB
detect body is refused from its Content-Length, before it is read.  The caps come from
the same table as the decoder's limits (edge/image_limits.py), keyed by the endpoint's
version and method (edge/server/endpoints.py), so HTTP and in-process agree.
`server.max_body_mb` is the operator's bound: it can lower a cap, never raise one.
"""
from __future__ import annotations

from edge.errors import BODY_TOO_LONG, IMAGE_ERRORS, EdgeError
from edge.image_limits import MB, image_limits
from edge.server.endpoints import ENDPOINTS, Endpoint

# How much longer base64 gets in the body: urlencoding turns '+', '/' and '=' into three
# characters (2 of 64 symbols: +6.25 %); JSON encoders that escape '/' add 1.6 %.
ENCODING_GROWTH = {"v2": 1.10, "v3": 1.05}
FIELDS_BYTES = 1 * MB  # everything else a request carries (ids, group lists, options)


def body_cap(ep: Endpoint, operator_mb: float = 0) -> int:
    """Largest body, in bytes, `ep` reads; `operator_mb` > 0 lowers it."""
    cap = FIELDS_BYTES
    if ep.images:
        cap += int(image_limits(ep.version, ep.method).request_total * ENCODING_GROWTH[ep.version])
    if operator_mb > 0:
        cap = min(cap, int(operator_mb * MB))
    return cap


def largest_body(operator_mb: float = 0) -> int:
    """The server-wide read limit: the largest cap of any endpoint."""
    return max(body_cap(ep, operator_mb) for ep in ENDPOINTS.values())


def path_cap(path: str, operator_mb: float = 0) -> int:
    """The cap of the endpoint at `path`; any other path (token, health) reads FIELDS_BYTES."""
    ep = ENDPOINTS.get(path.rstrip("/"))
    if ep is not None:
        return body_cap(ep, operator_mb)
    return min(FIELDS_BYTES, int(operator_mb * MB)) if operator_mb > 0 else FIELDS_BYTES


def path_too_long(path: str, cap: int) -> EdgeError:
    """body_too_long for the endpoint at `path`; v2's or v3's "too long" elsewhere."""
    ep = ENDPOINTS.get(path.rstrip("/"))
    if ep is not None:
        return body_too_long(ep, cap)
    version = "v2" if "/v2/" in path else "v3"
    return EdgeError(BODY_TOO_LONG[version], f"body over {cap} bytes")


def body_too_long(ep: Endpoint, cap: int) -> EdgeError:
    """v2 216103 "param too long"; v3 222304 where the body carries images, else 222200."""
    code = IMAGE_ERRORS[ep.version]["request_too_big"] if ep.images else BODY_TOO_LONG[ep.version]
    return EdgeError(code, f"body over {cap} bytes")
