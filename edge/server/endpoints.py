"""The REST paths of Baidu's face API and the SDK method each one runs.

One table drives both the request handling (which fields become the method's
positional arguments, the rest its `options`) and the OpenAPI description, so the two
cannot drift apart.  Paths and field names are the official SDKs' (baidu-aip 2.2.2.0
for v2, form-encoded; 4.16.13 for v3, JSON).
"""
from __future__ import annotations

from dataclasses import dataclass

PREFIX = "/rest/2.0/face"


@dataclass(frozen=True)
class Endpoint:
    version: str                        # "v2" (form) or "v3" (JSON)
    path: str                           # below PREFIX/<version>/
    method: str                         # the AipFace method it calls
    args: tuple[str, ...] = ()          # required fields, in the method's argument order
    options: tuple[str, ...] = ()       # documented optional fields
    images: bool = True                 # runs the models (inference pool) or only the library
    body: str = "object"                # v3 match/faceverify: a JSON array of image objects
    summary: str = ""

    @property
    def url(self) -> str:
        return f"{PREFIX}/{self.version}/{self.path}"


_V2_SEARCH = ("ext_fields", "user_top_num")
V2 = (
    Endpoint("v2", "detect", "detect", ("image",), ("max_face_num", "face_fields"), summary="face detection"),
    Endpoint("v2", "match", "match", ("images",), ("ext_fields", "image_liveness", "types"),
             summary="pairwise comparison of comma-separated base64 images"),
    Endpoint("v2", "identify", "identifyUser", ("group_id", "image"), _V2_SEARCH, summary="1:N identify"),
    Endpoint("v2", "verify", "verifyUser", ("uid", "group_id", "image"), ("top_num", "ext_fields"),
             summary="1:1 verify"),
    Endpoint("v2", "multi-identify", "multiIdentify", ("group_id", "image"), _V2_SEARCH + ("detect_top_num",),
             summary="M:N identify"),
    Endpoint("v2", "faceset/user/add", "addUser", ("uid", "user_info", "group_id", "image"), ("action_type",),
             summary="register a face"),
    Endpoint("v2", "faceset/user/update", "updateUser", ("uid", "user_info", "group_id", "image"),
             ("action_type",), summary="replace a user's faces"),
    Endpoint("v2", "faceset/user/delete", "deleteUser", ("uid",), ("group_id",), images=False),
    Endpoint("v2", "faceset/user/get", "getUser", ("uid",), ("group_id",), images=False),
    Endpoint("v2", "faceset/group/getlist", "getGroupList", (), ("start", "num"), images=False),
    Endpoint("v2", "faceset/group/getusers", "getGroupUsers", ("group_id",), ("start", "num"), images=False),
    Endpoint("v2", "faceset/group/adduser", "addGroupUser", ("src_group_id", "group_id", "uid"), images=False),
    Endpoint("v2", "faceset/group/deleteuser", "deleteGroupUser", ("group_id", "uid"), images=False),
    Endpoint("v2", "person/verify", "personVerify", ("image", "id_card_number", "name"),
             ("ext_fields",), summary="identity-card check (not offered offline: 216102)"),
    Endpoint("v2", "faceverify", "faceverify", ("image",), ("max_face_num", "face_fields"),
             summary="single-photo liveness"),
)

_V3_CONTROLS = ("quality_control", "liveness_control", "spoofing_control")
_V3_REGISTER = ("user_info",) + _V3_CONTROLS + ("action_type", "face_sort_type")
V3 = (
    Endpoint("v3", "detect", "detect", ("image", "image_type"),
             ("face_field", "max_face_num", "face_type", "liveness_control", "face_sort_type")),
    Endpoint("v3", "search", "search", ("image", "image_type", "group_id_list"),
             ("match_threshold", "max_user_num", "user_id", "face_sort_type") + _V3_CONTROLS, summary="1:N search"),
    Endpoint("v3", "multi-search", "multiSearch", ("image", "image_type", "group_id_list"),
             ("max_face_num", "match_threshold", "max_user_num") + _V3_CONTROLS, summary="M:N search"),
    Endpoint("v3", "match", "match", body="list", summary="compare two faces"),
    Endpoint("v3", "faceverify", "faceverify", body="list", summary="single-photo liveness"),
    Endpoint("v3", "faceset/user/add", "addUser", ("image", "image_type", "group_id", "user_id"), _V3_REGISTER),
    Endpoint("v3", "faceset/user/update", "updateUser", ("image", "image_type", "group_id", "user_id"),
             _V3_REGISTER),
    Endpoint("v3", "faceset/face/delete", "faceDelete", ("user_id", "group_id", "face_token"), images=False),
    Endpoint("v3", "faceset/user/get", "getUser", ("user_id", "group_id"), images=False),
    Endpoint("v3", "faceset/face/getlist", "faceGetlist", ("user_id", "group_id"), images=False),
    Endpoint("v3", "faceset/group/getusers", "getGroupUsers", ("group_id",), ("start", "length"), images=False),
    Endpoint("v3", "faceset/user/copy", "userCopy", ("user_id",), ("src_group_id", "dst_group_id"),
             images=False),
    Endpoint("v3", "faceset/user/delete", "deleteUser", ("group_id", "user_id"), images=False),
    Endpoint("v3", "faceset/group/add", "groupAdd", ("group_id",), images=False),
    Endpoint("v3", "faceset/group/delete", "groupDelete", ("group_id",), images=False),
    Endpoint("v3", "faceset/group/getlist", "getGroupList", (), ("start", "length"), images=False),
    Endpoint("v3", "person/verify", "personVerify", ("image", "image_type", "id_card_number", "name"),
             _V3_CONTROLS, summary="identity-card check (not offered offline: 216102)"),
)

ENDPOINTS: dict[str, Endpoint] = {e.url: e for e in V2 + V3}

# v3 JSON fields that are numbers; every other field is a string.
V3_NUMBERS = {"max_face_num": "integer", "match_threshold": "number", "max_user_num": "integer",
              "face_sort_type": "integer", "start": "integer", "length": "integer"}
V3_LIST_ITEM = ("image", "image_type", "face_type", "face_field", "option") + _V3_CONTROLS

# Missing required field: v2 "not enough param", v3 "param[] is null".
MISSING_CODE = {"v2": 216101, "v3": 222001}
