"""Response envelopes of the two API versions, and error mapping.

A method body returns its result or raises EdgeError / LibraryError; the decorators
wrap that into the version's JSON (v2: fields + log_id; v3: error_code 0, error_msg
SUCCESS, log_id, timestamp, cached, result). Nothing escapes as a traceback: an
unexpected exception is logged and answered with the version's internal-error code.
"""
from __future__ import annotations

import contextvars
import functools
import logging
import time

from edge.errors import EdgeError
from edge.library.store import LibraryError
from edge.sqlite import StorageError
from edge.service import new_log_id

log = logging.getLogger("edge.aip")

# Library rule -> error code, per API version.
LIBRARY_CODES = {
    "v2": {"user_not_found": 216611, "face_exists": 216616, "last_group": 216619, "user_exists": 216100,
           "group_not_found": 216618, "group_exists": 216100, "face_not_found": 216611, "bad_app_id": 216110,
           "replica": 6, "upstream_full": 216300},
    "v3": {"user_not_found": 223103, "face_exists": 223105, "last_group": 223103, "user_exists": 223102,
           "group_not_found": 223100, "group_exists": 223101, "face_not_found": 223106, "bad_app_id": 216110,
           "replica": 6, "upstream_full": 222915},
}
INTERNAL_ERROR = {"v2": 216401, "v3": 222915}
# The library's files are damaged, missing, full or read-only (docs/storage.md): v2's
# "db error"; v3 documents no database code, so its backend-failure 222915.
DB_ERROR = {"v2": 216300, "v3": 222915}

# The AipFace method running in this thread or task: its name selects the method's own
# image limits when the runtime decodes a photo (edge/image_limits.py), without every
# helper between the method and the decoder passing it along.
CURRENT_METHOD: contextvars.ContextVar[str | None] = contextvars.ContextVar("edge_aip_method", default=None)


def _error(version: str, exc: BaseException) -> EdgeError:
    if isinstance(exc, EdgeError):
        return exc
    if isinstance(exc, LibraryError):
        return EdgeError(LIBRARY_CODES[version][exc.kind], str(exc))
    if isinstance(exc, StorageError):  # a damaged file is logged once where it is found
        if not exc.sticky:
            log.warning("%s", exc)
        return EdgeError(DB_ERROR[version], str(exc))
    log.exception("internal error")
    return EdgeError(INTERNAL_ERROR[version], repr(exc))


def _api_call(version: str, body):
    """Decorator: run the method, then wrap its result or error with body(result, error)."""
    def decorate(fn):
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            log_id = new_log_id()
            method = CURRENT_METHOD.set(fn.__name__)
            try:
                result, err = fn(*args, **kwargs), None
            except Exception as exc:  # noqa: BLE001 - every failure becomes a Baidu error body
                result, err = None, _error(version, exc)
                log.info("%s %s -> %s", version, fn.__name__, err)
            finally:
                CURRENT_METHOD.reset(method)
            return {**body(result, err), "log_id": log_id}
        return wrapper
    return decorate


def _v2_body(result, err: EdgeError | None) -> dict:
    return err.to_dict() if err else dict(result or {})


def _v3_body(result, err: EdgeError | None) -> dict:
    head = err.to_dict() if err else {"error_code": 0, "error_msg": "SUCCESS"}
    return {**head, "result": result, "timestamp": int(time.time()), "cached": 0}


def error_body(version: str, err: EdgeError) -> dict:
    """The version's answer for an error raised outside a method (HTTP layer: auth, limits)."""
    return {**(_v3_body if version == "v3" else _v2_body)(None, err), "log_id": new_log_id()}


v2_call = _api_call("v2", _v2_body)
v3_call = _api_call("v3", _v3_body)
