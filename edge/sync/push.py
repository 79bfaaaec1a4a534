"""The upstream push's wire format, shared by the terminal's pusher and the hub's
`POST /edge/sync/v1/push` (docs/sync.md, "Up"): one operation as JSON, and its
judgement on the hub before anything is written.

An operation carries the embedding, its model id and the face_token, never the photo:
the terminal already embedded it (the same checks and codes as its local API), a photo
would multiply the copies of biometric images on the wire and at the hub, and the hub
keeps embeddings, not photos, like Baidu's library.
"""
from __future__ import annotations

import base64
import binascii
import json
import re

import numpy as np

from edge import rules
from edge.errors import EdgeError
from edge.library.store import PUSH_ACTIONS, FaceRecord, PushOp
from edge.models.manifest import model_space

PUSH_PATH = "/edge/sync/v1/push"
PUSH_SIGNATURE_HEADER = "X-Edge-Push-Signature"   # HMAC of nonce + "\n" + body, keyed by the credential's secret
PUSH_MAX_OPS = 50                                  # operations per request
PUSH_MAX_BYTES = 1024 * 1024                       # request body
MODEL_MISMATCH = 223190                            # edge's own code (docs/api.md, Choices `push-codes`)
BAD_PARAM = 100
OP_ID_RE = re.compile(r"^[0-9a-f]{32}$")
_TOKEN_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_UUID_RE = re.compile(r"^[0-9a-f]{32}$")
OP_KEYS = {"op_id", "cursor", "hub_uuid", "action", "user_id", "group_ids", "user_info", "mode", "face",
           "src_group", "create_groups", "face_token"}
MODES = ("append", "replace", "update")
UNIT_TOLERANCE = 0.01


def op_to_wire(op: PushOp) -> dict:
    face = None
    if op.face is not None:
        face = {"face_token": op.face.face_token, "model": op.face.model, "quality": op.face.quality,
                "embedding": base64.b64encode(np.ascontiguousarray(op.face.embedding, np.float32).tobytes()).decode()}
    return {"op_id": op.op_id, "cursor": op.cursor, "hub_uuid": op.hub_uuid, "action": op.action,
            "user_id": op.user_id, "group_ids": None if op.group_ids is None else list(op.group_ids),
            "user_info": op.user_info, "mode": op.mode, "face": face, "src_group": op.src_group,
            "create_groups": op.create_groups, "face_token": op.face_token}


def op_id_of(raw) -> str:
    """The op_id of a raw operation, or EdgeError 100: without it nothing can be answered per op."""
    op_id = raw.get("op_id") if isinstance(raw, dict) else None
    if not isinstance(op_id, str) or not OP_ID_RE.match(op_id):
        raise EdgeError(BAD_PARAM, "each operation needs an op_id of 32 hex digits")
    return op_id


def _groups(value, action: str) -> tuple[str, ...] | None:
    if value is None and action == "delete_user":
        return None
    if not isinstance(value, list) or not 1 <= len(value) <= rules.GROUP_LIST_MAX:
        raise EdgeError(222006, "group_ids: a list of group ids")
    return tuple(rules.group_ids(",".join(g if isinstance(g, str) else "," for g in value), 222006))


def _face(raw, model_id: str, dim: int) -> FaceRecord:
    if not isinstance(raw, dict) or set(raw) != {"face_token", "model", "quality", "embedding"}:
        raise EdgeError(BAD_PARAM, "face: an object with face_token, model, quality, embedding")
    token, model, quality, text = raw["face_token"], raw["model"], raw["quality"], raw["embedding"]
    if not isinstance(token, str) or not _TOKEN_RE.match(token):
        raise EdgeError(222023, "face.face_token")
    if not isinstance(model, str) or not 0 < len(model) <= 200:
        raise EdgeError(BAD_PARAM, "face.model: the embedder's model id")
    if model_space(model) != model_space(model_id):   # an int8 build embeds in its fp32 model's space
        raise EdgeError(MODEL_MISMATCH, f"the embedding was made by {model[:80]}, this hub's library holds "
                                        f"{model_id}: upgrade the terminal or the hub so both run one model")
    if quality is not None and not isinstance(quality, dict):
        raise EdgeError(BAD_PARAM, "face.quality: an object or null")
    if not isinstance(text, str) or len(text) > 4 * (dim * 4 + 2) // 3 + 4:
        raise EdgeError(BAD_PARAM, "face.embedding: base64 float32 values")
    try:
        raw_bytes = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise EdgeError(BAD_PARAM, "face.embedding is not base64") from None
    if len(raw_bytes) != dim * 4:
        raise EdgeError(BAD_PARAM, f"face.embedding: {dim} float32 values expected, got {len(raw_bytes) / 4:g}")
    vec = np.frombuffer(raw_bytes, dtype=np.float32).copy()
    if not np.isfinite(vec).all() or abs(float(np.linalg.norm(vec)) - 1.0) > UNIT_TOLERANCE:
        raise EdgeError(BAD_PARAM, "face.embedding: not finite or not unit length")
    return FaceRecord(token, vec, model, quality)


def op_from_wire(raw: dict, model_id: str, dim: int) -> PushOp:
    """A pushed operation, judged as the hub's API judges its arguments (v3 codes), or EdgeError."""
    op_id = op_id_of(raw)
    if set(raw) != OP_KEYS:
        raise EdgeError(BAD_PARAM, f"an operation has exactly the fields {', '.join(sorted(OP_KEYS))}")
    cursor, hub_uuid, action = raw["cursor"], raw["hub_uuid"], raw["action"]
    if type(cursor) is not int or not 0 <= cursor < 2**63:
        raise EdgeError(222002, "cursor: the terminal's seq when it enrolled")
    if hub_uuid is not None and (not isinstance(hub_uuid, str) or not _UUID_RE.match(hub_uuid)):
        raise EdgeError(BAD_PARAM, "hub_uuid: the hub library the terminal followed, or null")
    if action not in PUSH_ACTIONS:
        raise EdgeError(BAD_PARAM, f"action: one of {', '.join(PUSH_ACTIONS)}")
    user_id = rules.user_id(raw["user_id"], 222018)
    groups = _groups(raw["group_ids"], action)
    fields: dict = {}
    if action == "register":
        if raw["mode"] not in MODES:
            raise EdgeError(222025, f"mode: one of {', '.join(MODES)}")
        info = None if raw["user_info"] is None else rules.user_info(raw["user_info"], 222010)
        fields = {"user_info": info, "mode": raw["mode"], "face": _face(raw["face"], model_id, dim)}
    elif action == "copy_user":
        (src,) = rules.group_ids(raw["src_group"], 222006)[:1]
        if not isinstance(raw["create_groups"], bool):
            raise EdgeError(BAD_PARAM, "create_groups: true or false")
        fields = {"src_group": src, "create_groups": raw["create_groups"]}
    elif action == "delete_face":
        if groups is None or len(groups) != 1:
            raise EdgeError(222006, "delete_face: one group_id")
        token = raw["face_token"]
        if not isinstance(token, str) or not _TOKEN_RE.match(token):
            raise EdgeError(222023, "face_token")
        fields = {"face_token": token}
    return PushOp(op_id, cursor, hub_uuid, action, user_id, groups, **fields)


def parse_body(body: bytes) -> tuple[str, list]:
    """(origin, raw operations) of a request, or EdgeError (the whole request is refused)."""
    if len(body) > PUSH_MAX_BYTES:
        raise EdgeError(BAD_PARAM, f"body over {PUSH_MAX_BYTES} bytes")
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):
        raise EdgeError(222200, "the body must be JSON: {\"origin\": ..., \"ops\": [...]}") from None
    if not isinstance(data, dict) or set(data) != {"origin", "ops"} or not isinstance(data["ops"], list):
        raise EdgeError(222200, "the body must be {\"origin\": ..., \"ops\": [...]}")
    if not isinstance(data["origin"], str) or not OP_ID_RE.match(data["origin"]):
        raise EdgeError(BAD_PARAM, "origin: the terminal outbox's id, 32 hex digits")
    if not 1 <= len(data["ops"]) <= PUSH_MAX_OPS:
        raise EdgeError(BAD_PARAM, f"ops: 1 to {PUSH_MAX_OPS} operations")
    ids = [op_id_of(raw) for raw in data["ops"]]
    if len(set(ids)) != len(ids):
        raise EdgeError(BAD_PARAM, "ops: an op_id appears twice")
    return data["origin"], data["ops"]
