"""Judge a whole page from a hub before anything is touched (docs/sync.md, "What a
terminal refuses"), then apply it with its cursor in one transaction.

A page is refused whole on the first thing wrong with it: a signature that is not the
secret's for this request's nonce, a body that is not the page's JSON (a truncated
answer), another app or library, a cursor that is not ours, a count or a sequence that
does not add up (a lost change), an unknown op, a group the terminal does not follow,
an id, token or user_info out of Baidu's rules, an embedding of the wrong dimension or
not finite or not unit length. Nothing of a refused page is stored and the cursor stays.
"""
from __future__ import annotations

import base64
import binascii
import json
import math
import re
from dataclasses import dataclass

import numpy as np

from edge import rules
from edge.library.store import REPLICA_OPS, FaceRecord, ReplicaChange
from edge.models.manifest import model_space
from edge.sync.protocol import PROTOCOL, SNAPSHOT_PHASES, signature_ok

_UUID_RE = re.compile(r"^[0-9a-f]{32}$")
_TOKEN_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_MODEL_MAX = 200
UNIT_TOLERANCE = 0.01   # the hub stores L2-normalised embeddings; float32 round-trips are exact
OTHER_MODEL_MAX_DIM = 4096
PAGE_KEYS = {"protocol", "app_id", "library_uuid", "since", "next", "head", "count", "skipped", "changes"}
CHANGE_KEYS = {"seq", "ts", "op", "group_id", "user_id", "face_token", "data"}
NEEDED_KEYS = {"protocol", "app_id", "library_uuid", "since", "floor", "snapshot_required"}
SNAPSHOT_KEYS = {"protocol", "app_id", "library_uuid", "seq", "phase", "after", "next", "count", "changes"}
PHASE_OP = {"groups": "group.add", "members": "user.add", "faces": "face.add"}


class PageRefused(Exception):
    """The page is not applied; the message says why (status, log)."""


class SnapshotNeeded(Exception):
    """The replica must be rebuilt from a snapshot (a signed, checked answer): the hub
    compacted its log past the cursor, its log is behind the cursor (restored from a
    backup), or its library is another (recovered)."""


@dataclass(frozen=True)
class SnapshotPage:
    library_uuid: str
    seq: int                                  # the hub's head when this page was read
    next: tuple[str, int] | None              # (phase, after) to ask for next; None: done
    changes: list[ReplicaChange]


@dataclass(frozen=True)
class Page:
    library_uuid: str
    since: int
    next: int
    head: int
    changes: list[ReplicaChange]
    last_ts: float | None           # the hub's commit time of the last change in the page


SEQ_MAX = 2**63 - 1  # SQLite's largest integer


def _int(value, name: str) -> int:
    if type(value) is not int or not 0 <= value <= SEQ_MAX:
        raise PageRefused(f"{name} is not an integer from 0 to 2^63-1")
    return value


def _id(value, name: str) -> str:
    if not isinstance(value, str) or not rules.ID_RE.match(value) or len(value.encode()) > rules.USER_ID_MAX_BYTES:
        raise PageRefused(f"{name} {str(value)[:40]!r} is not a valid id")
    return value


def _embedding(data: dict, dim: int | None) -> np.ndarray:
    """The face's vector: dim float32 values of unit length for the terminal's model;
    for another model (not stored, counted) any length up to OTHER_MODEL_MAX_DIM,
    finite: a hub moving to a wider model must not stall its older terminals."""
    text = data.get("embedding")
    longest = 4 * ((dim or OTHER_MODEL_MAX_DIM) * 4 + 2) // 3 + 4
    if not isinstance(text, str) or len(text) > longest:
        raise PageRefused("face.add: embedding missing or too long")
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise PageRefused("face.add: embedding is not base64") from None
    if (dim is not None and len(raw) != dim * 4) or not raw or len(raw) % 4:
        raise PageRefused(f"face.add: embedding of {len(raw) // 4} values, this terminal's embedder makes {dim}")
    vec = np.frombuffer(raw, dtype=np.float32)
    if not np.isfinite(vec).all():
        raise PageRefused("face.add: embedding holds NaN or infinity")
    if dim is not None and abs(float(np.linalg.norm(vec)) - 1.0) > UNIT_TOLERANCE:
        raise PageRefused("face.add: embedding is not unit length")
    return vec.copy()


def _change(raw, dim: int, model_id: str) -> ReplicaChange:
    if not isinstance(raw, dict) or set(raw) != CHANGE_KEYS:
        raise PageRefused("a change is not an object with seq, ts, op, group_id, user_id, face_token, data")
    op, seq = raw["op"], _int(raw["seq"], "seq")
    if op not in REPLICA_OPS:
        raise PageRefused(f"change {seq}: unknown op {str(op)[:40]!r}")
    ts = raw["ts"]
    if isinstance(ts, bool) or not isinstance(ts, (int, float)) or not math.isfinite(ts):
        raise PageRefused(f"change {seq}: ts is not a number")
    group_id, data = _id(raw["group_id"], "group_id"), raw["data"]
    if op.startswith("group."):
        return ReplicaChange(seq, op, group_id)
    user_id = _id(raw["user_id"], "user_id")
    if op in ("user.add", "user.update"):
        info = data.get("user_info") if isinstance(data, dict) else None
        if not isinstance(info, str) or len(info.encode()) > rules.USER_INFO_MAX_BYTES:
            raise PageRefused(f"change {seq}: user_info missing or over {rules.USER_INFO_MAX_BYTES} bytes")
        return ReplicaChange(seq, op, group_id, user_id, user_info=info)
    if op == "user.delete":
        return ReplicaChange(seq, op, group_id, user_id)
    token = raw["face_token"]
    if not isinstance(token, str) or not _TOKEN_RE.match(token):
        raise PageRefused(f"change {seq}: face_token is not a valid token")
    if op == "face.delete":
        return ReplicaChange(seq, op, group_id, user_id, token)
    if not isinstance(data, dict):
        raise PageRefused(f"change {seq}: face.add without data")
    model, quality = data.get("model"), data.get("quality")
    if not isinstance(model, str) or not 0 < len(model) <= _MODEL_MAX:
        raise PageRefused(f"change {seq}: face.add without a model id")
    if quality is not None and not isinstance(quality, dict):
        raise PageRefused(f"change {seq}: quality is not an object")
    try:
        vec = _embedding(data, dim if model_space(model) == model_space(model_id) else None)
    except PageRefused as exc:
        raise PageRefused(f"change {seq}: {exc}") from None
    return ReplicaChange(seq, op, group_id, user_id, token, face=FaceRecord(token, vec, model, quality))


def _header(page: dict, app_id: str, hub_uuid: str | None) -> str:
    """Check protocol, app and library of a page; returns its library uuid."""
    if page["protocol"] != PROTOCOL:
        raise PageRefused(f"feed protocol {str(page['protocol'])[:20]}, this terminal speaks {PROTOCOL}")
    if page["app_id"] != app_id:
        raise PageRefused(f"page of app {str(page['app_id'])[:64]!r}, this terminal follows {app_id!r}")
    uuid = page["library_uuid"]
    if not isinstance(uuid, str) or not _UUID_RE.match(uuid):
        raise PageRefused("library_uuid is not a library id")
    if hub_uuid is not None and uuid != hub_uuid:
        raise PageRefused(f"the hub's library is now {uuid}, this replica follows {hub_uuid} (recovered or "
                          f"replaced hub: the replica must be rebuilt, docs/sync.md)")
    return uuid


def _parse(body: bytes, signature: str | None, nonce: str, secret_key: str):
    if not signature_ok(secret_key, nonce, body, signature):
        raise PageRefused("page signature missing or wrong: not from a hub holding this terminal's secret")
    try:
        return json.loads(body)
    except (ValueError, RecursionError):
        raise PageRefused(f"page is not JSON ({len(body)} bytes; truncated?)") from None


def validate_snapshot(body: bytes, *, signature: str | None, nonce: str, secret_key: str, app_id: str, phase: str,
                      after: int, hub_uuid: str | None, groups: tuple[str, ...], dim: int,
                      model_id: str) -> SnapshotPage:
    """A snapshot page as typed changes (group.add, user.add, face.add), or PageRefused."""
    page = _parse(body, signature, nonce, secret_key)
    if not isinstance(page, dict) or set(page) != SNAPSHOT_KEYS:
        raise PageRefused("snapshot page is not an object with the snapshot's fields")
    uuid = _header(page, app_id, hub_uuid)
    if page["phase"] != phase or page["after"] != after:
        raise PageRefused(f"snapshot page of {str(page['phase'])[:20]} after {str(page['after'])[:20]}, "
                          f"asked for {phase} after {after}")
    seq, nxt = _int(page["seq"], "seq"), page["next"]
    if nxt is not None:
        if not isinstance(nxt, dict) or set(nxt) != {"phase", "after"} or nxt["phase"] not in SNAPSHOT_PHASES:
            raise PageRefused("snapshot next is not a phase and a rowid")
        order = SNAPSHOT_PHASES.index(nxt["phase"]) - SNAPSHOT_PHASES.index(phase)
        n_after = _int(nxt["after"], "next.after")
        if not ((order == 0 and n_after > after) or (order > 0 and n_after == 0)):
            raise PageRefused("snapshot next goes back")
        nxt = (nxt["phase"], n_after)
    raw = page["changes"]
    if not isinstance(raw, list) or len(raw) != _int(page["count"], "count"):
        raise PageRefused(f"snapshot page announces {page['count']} rows and holds "
                          f"{len(raw) if isinstance(raw, list) else 0}")
    changes = []
    for item in raw:
        change = _change(item, dim, model_id)
        if change.op != PHASE_OP[phase]:
            raise PageRefused(f"a {change.op} in the snapshot's {phase}")
        if groups and change.group_id not in groups:
            raise PageRefused(f"snapshot row of group {change.group_id!r}, not followed here")
        changes.append(change)
    return SnapshotPage(uuid, seq, nxt, changes)


def validate_page(body: bytes, *, signature: str | None, nonce: str, secret_key: str, app_id: str, cursor: int,
                  hub_uuid: str | None, groups: tuple[str, ...], dim: int, model_id: str) -> Page:
    """The page as typed changes, or PageRefused, or SnapshotNeeded. groups: those
    followed (() = all)."""
    page = _parse(body, signature, nonce, secret_key)
    if isinstance(page, dict) and set(page) == NEEDED_KEYS and page["snapshot_required"] is True:
        _header(page, app_id, None)
        if page["since"] != cursor:
            raise PageRefused("a snapshot asked for another cursor")
        raise SnapshotNeeded(f"the hub's log starts after {_int(page['floor'], 'floor')} and this terminal is at "
                             f"{cursor}: taking a snapshot")
    if not isinstance(page, dict) or set(page) != PAGE_KEYS:
        raise PageRefused("page is not an object with the feed's fields")
    uuid = _header(page, app_id, None)
    if hub_uuid is not None and uuid != hub_uuid:
        raise SnapshotNeeded(f"the hub's library is now {uuid}, this replica was of {hub_uuid} (a recovered or "
                             f"replaced hub): taking a snapshot")
    since, nxt, head = (_int(page[k], k) for k in ("since", "next", "head"))
    count, skipped = _int(page["count"], "count"), _int(page["skipped"], "skipped")
    if since != cursor:
        raise PageRefused(f"page starts after {since}, this terminal's cursor is {cursor}")
    if not since <= nxt <= head:
        raise PageRefused(f"since {since}, next {nxt}, head {head} are out of order")
    raw = page["changes"]
    if not isinstance(raw, list) or len(raw) != count:
        raise PageRefused(f"page announces {count} changes and holds {len(raw) if isinstance(raw, list) else 0}")
    if count + skipped != nxt - since or (skipped and not groups):
        raise PageRefused(f"sequence gap: {count} changes + {skipped} skipped do not cover ({since}, {nxt}]")
    changes, last = [], since
    for item in raw:
        change = _change(item, dim, model_id)
        if not last < change.seq <= nxt:
            raise PageRefused(f"change {change.seq} out of sequence after {last} (page ends at {nxt})")
        if groups and change.group_id not in groups:
            raise PageRefused(f"change {change.seq} is of group {change.group_id!r}, not followed here")
        changes.append(change)
        last = change.seq
    last_ts = float(raw[-1]["ts"]) if raw else None
    return Page(uuid, since, nxt, head, changes, last_ts)
