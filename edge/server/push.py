"""The hub's side of a terminal's upstream outbox (`POST /edge/sync/v1/push`,
docs/sync.md "Up"): the request's checks, and each operation applied through the
library's normal writes in the hub's order (so it reaches every terminal through the
feed), idempotent per op_id.
"""
from __future__ import annotations

import re

from edge.aip.calls import LIBRARY_CODES
from edge.errors import MESSAGES, EdgeError
from edge.sync.protocol import NO_PERMISSION, signature_ok
from edge.sync.push import BAD_PARAM, PUSH_MAX_BYTES, op_from_wire, op_id_of

PARAMS = {"app_id", "nonce", "access_token"}
PUSH_SCOPES = ("all", "feed+push")
_NONCE_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


def check_request(query, app, content_length: int | None) -> str:
    """The nonce the answer is signed for, or EdgeError: a feed-only key (6), another
    app (6), unknown parameters or a body over the bound (100)."""
    if app.scope not in PUSH_SCOPES:
        raise EdgeError(NO_PERMISSION, "this key may read the feed only: push needs a feed key with scope feed+push")
    unknown = set(query) - PARAMS
    if unknown:
        raise EdgeError(BAD_PARAM, f"unknown parameter(s) {', '.join(sorted(unknown))[:100]}")
    if query.get("app_id", app.app_id) != app.app_id:
        raise EdgeError(NO_PERMISSION, "these credentials do not push to that app")
    nonce = query.get("nonce", "")
    if not _NONCE_RE.match(nonce):
        raise EdgeError(BAD_PARAM, "nonce: 1-64 letters, digits, '-' or '_'")
    if content_length is not None and content_length > PUSH_MAX_BYTES:
        raise EdgeError(BAD_PARAM, f"body over {PUSH_MAX_BYTES} bytes")
    return nonce


def check_body_signature(secret_key: str, nonce: str, body: bytes, header: str | None) -> None:
    """The body is the one the credential's holder sent (bce-auth-v1 signs no body)."""
    if not signature_ok(secret_key, nonce, body, header):
        raise EdgeError(14, "push body signature missing or wrong")


def _answer(op_id: str, code: int, detail: str = "", seq: int | None = None, duplicate: bool = False) -> dict:
    return {"op_id": op_id, "error_code": code, "error_msg": "SUCCESS" if code == 0 else MESSAGES.get(code, ""),
            "detail": detail[:300], "seq": seq, "duplicate": duplicate}


def apply_ops(library, model_id: str, origin: str, raws: list) -> list[dict]:
    """Each operation in order, each its own transaction; a refused one does not stop the
    next (the terminal dead-letters it and goes on, as the hub's order decides)."""
    out = []
    for raw in raws:
        op_id = op_id_of(raw)
        try:
            op = op_from_wire(raw, model_id, library.dim)
        except EdgeError as err:
            out.append(_answer(op_id, err.error_code, err.detail))
            continue
        done = library.apply_push(op, origin)
        code = 0 if done.kind is None else LIBRARY_CODES["v3"][done.kind]
        out.append(_answer(op_id, code, done.detail, done.last_seq, done.duplicate))
    return out
