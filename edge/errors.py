"""Baidu-style errors: every failure a caller can cause carries an error_code and error_msg.

The codes and messages are the ones of Baidu's v2 SDK and v3 search tables
(../shared/docs); callers branch on the code, so it never changes for a given cause.
"""
from __future__ import annotations

# code -> Baidu's error_msg, exactly as the docs' tables spell it.
MESSAGES: dict[int, str] = {
    100: "Invalid parameter",
    216100: "invalid param",
    216101: "not enough param",
    216200: "empty image",
    216201: "image format error",
    216202: "image size error",
    216401: "internal error",
    216402: "face not found",
    222200: "request body should be json format",
    222202: "pic not has face",
    222203: "image check fail",
    222304: "image size is too large",
}


class EdgeError(Exception):
    """An error a caller can act on; `to_dict()` is the Baidu response body."""

    def __init__(self, error_code: int, error_msg: str | None = None):
        self.error_code = int(error_code)
        self.error_msg = error_msg or MESSAGES.get(self.error_code, "unknown error")
        super().__init__(f"{self.error_code}: {self.error_msg}")

    def to_dict(self) -> dict:
        return {"error_code": self.error_code, "error_msg": self.error_msg}


class ModelError(RuntimeError):
    """A model file is missing, fails its checksum or its reference check."""
