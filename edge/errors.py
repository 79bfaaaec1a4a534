"""Baidu-style errors: every failure a caller can cause carries an error_code and error_msg.

The codes and messages are the ones of Baidu's v2 SDK and v3 search tables
(../shared/docs); callers branch on the code, so it never changes for a given cause.
"""
from __future__ import annotations

# code -> Baidu's error_msg, exactly as the docs' tables spell it.
MESSAGES: dict[int, str] = {
    # both versions: access and rate limits
    2: "Service temporarily unavailable",
    3: "Unsupported openapi method",
    4: "Open api request limit reached",
    6: "No permission to access data",  # Baidu's public common table; a feed-only key, a replica (docs/sync.md)
    14: "IAM Certification failed",
    17: "Open api daily request limit reached",
    18: "Open api qps request limit reached",
    100: "Invalid parameter",
    110: "Access token invalid or no longer valid",
    111: "Access token expired",
    # v2 (baidu-face-python-sdk-v2.txt, 错误码)
    216100: "invalid param",
    216101: "not enough param",
    216102: "service not support",
    216103: "param too long",
    216110: "appid not exist",
    216111: "invalid userid",
    216200: "empty image",
    216201: "image format error",
    216202: "image size error",
    216300: "db error",
    216401: "internal error",
    216402: "face not found",
    216611: "user not exist",
    216614: "not enough images",
    216616: "image existed",
    216618: "no user in group",
    216619: "user must be in one group at least",  # only in the deleteGroupUser example
    216631: "request add user overlimit",
    # v3 (baidu-face-v3-search.txt, 错误码; codes it does not list follow Baidu's
    # public v3 table, see docs/api.md)
    222001: "param[] is null",
    222002: "param[start] format error",
    222003: "param[length] format error",
    222006: "param[group_id] format error",
    222010: "param[user_info] format error",
    222013: "param[image] format error",
    222015: "param[image_type] format error",
    222016: "param[max_face_num] format error",
    222017: "param[face_field] format error",
    222018: "param[user_id] format error",
    222019: "param[quality_control] format error",
    222020: "param[liveness_control] format error",
    222021: "param[max_user_num] format error",
    222023: "param[face_token] format error",
    222024: "param[face_type] format error",
    222025: "param[action_type] format error",
    222026: "param[spoofing_control] format error",
    222030: "param[match_threshold] format error",
    222039: "param[face_sort_type] format error",
    222200: "request body should be json format",
    222202: "pic not has face",
    222203: "image check fail",
    222204: "image download fail",
    222207: "match user is not found",
    222208: "the number of image is incorrect",
    222209: "face token not exist",
    222301: "get face fail",
    222304: "image size is too large",
    222915: "system busy",
    223100: "group is not exist",
    223101: "group is already exist",
    223102: "user is already exist",
    223103: "user is not exist",
    223105: "face is already exist",
    223106: "face is not exist",
    223113: "face is covered",
    223114: "face is fuzzy",
    223115: "face light is not good",
    223116: "incomplete face",
    223120: "liveness check fail",
    223121: "left eye is occlusion",
    223122: "right eye is occlusion",
    223123: "left cheek is occlusion",
    223124: "right cheek is occlusion",
    223125: "chin contour is occlusion",
    223126: "nose is occlusion",
    223127: "mouth is occlusion",
    223129: "face not forward",
    # edge's own (docs/api.md, Choices `push-codes`): a terminal pushed an embedding of
    # another model than the hub's library holds
    223190: "face model mismatch",
}


# Why an image is refused -> the code each version answers (docs/api.md, Choices).  v2
# follows its error table; v3 its own codes: 222001 nothing sent, 222013 not base64
# (param[image] format error), 222203 not a readable JPEG/PNG/BMP ("image check fail"),
# 222304 over the size or dimensions allowed ("image size is too large").
IMAGE_ERRORS: dict[str, dict[str, int]] = {
    "v2": {"missing": 216200, "not_base64": 216200, "format": 216201, "unreadable": 216200,
           "too_big": 216202, "too_large": 216202, "too_small": 216202, "request_too_big": 216103},
    "v3": {"missing": 222001, "not_base64": 222013, "format": 222203, "unreadable": 222203,
           "too_big": 222304, "too_large": 222304, "too_small": 222203, "request_too_big": 222304},
}
# A request body over its endpoint's cap that carries no image: v2 216103, v3 222200.
BODY_TOO_LONG = {"v2": 216103, "v3": 222200}


def image_error(api: str, cause: str, detail: str | None = None) -> "EdgeError":
    """The EdgeError `api` answers for an image refused because of `cause`."""
    return EdgeError(IMAGE_ERRORS[api][cause], detail)


class EdgeError(Exception):
    """An error a caller can act on; `to_dict()` is the Baidu response body.

    The response's error_msg is always the docs' text for the code (clients may match
    on it); a more specific `detail` goes to the log and str(), not to the client."""

    def __init__(self, error_code: int, detail: str | None = None):
        self.error_code = int(error_code)
        self.error_msg = MESSAGES.get(self.error_code, detail or "unknown error")
        self.detail = detail or self.error_msg
        super().__init__(f"{self.error_code}: {self.detail}")

    def to_dict(self) -> dict:
        return {"error_code": self.error_code, "error_msg": self.error_msg}


class ModelError(RuntimeError):
    """A model file is missing, fails its checksum or its reference check."""
