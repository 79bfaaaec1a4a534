"""The change feed's wire format, shared by the hub (edge/server/feed.py) and the
follower (edge/sync/): path, bounds, page layout and the page signature (docs/sync.md).

A page is built from the hub's change log rows as they are (face.add rows already hold
the base64 embedding and the model id), so a change needs no other request to apply.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import json

FEED_PATH = "/edge/sync/v1/changes"
SNAPSHOT_PATH = "/edge/sync/v1/snapshot"
PROTOCOL = 1
LIMIT_DEFAULT, LIMIT_MAX = 500, 5000      # changes per page
SNAPSHOT_PHASES = ("groups", "members", "faces")
PAGE_MAX_BYTES = 2 * 1024 * 1024          # a page stops growing past this (one change at least)
WAIT_MAX_S = 30.0                         # the longest long-poll the hub holds
GROUPS_MAX = 100                          # groups one follower may name
SIGNATURE_HEADER = "X-Edge-Feed-Signature"
# Feed parameter errors, chosen to match the v3 codes of the same meaning (docs/sync.md):
# since is a start position (222002), limit a length (222003), groups group ids (222006),
# anything else about the request 100; a credential that may not read this feed 6.
BAD_SINCE, BAD_LIMIT, BAD_GROUPS, BAD_PARAM, NO_PERMISSION = 222002, 222003, 222006, 100, 6
_dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


def change_dict(row: tuple) -> dict:
    """One log row (seq, ts, op, group_id, user_id, face_token, data text) on the wire."""
    seq, ts, op, group_id, user_id, face_token, data = row
    return {"seq": seq, "ts": ts, "op": op, "group_id": group_id, "user_id": user_id,
            "face_token": face_token, "data": json.loads(data) if data else None}


def build_page(app_id: str, library_uuid: str, since: int, head: int, rows: list[tuple], limit: int,
               max_bytes: int = PAGE_MAX_BYTES) -> bytes:
    """The page's JSON body. `next` is the cursor after this page: the last change sent
    when the page was cut by count or bytes, else head (a filtered feed skips the other
    groups' changes, counted in `skipped`, so count + skipped == next - since)."""
    changes, size, cut = [], 0, False
    for row in rows:
        text = _dumps(change_dict(row))
        if changes and size + len(text) > max_bytes:
            cut = True
            break
        changes.append(text)
        size += len(text) + 1
    cut = cut or len(rows) >= limit  # more may follow the last row read
    nxt = rows[len(changes) - 1][0] if cut and changes else head
    page = {"protocol": PROTOCOL, "app_id": app_id, "library_uuid": library_uuid, "since": since, "next": nxt,
            "head": head, "count": len(changes), "skipped": nxt - since - len(changes)}
    head_text = _dumps(page)[:-1]
    return (head_text + ',"changes":[' + ",".join(changes) + "]}").encode()


def snapshot_needed(app_id: str, library_uuid: str, since: int, floor: int) -> bytes:
    """The feed's answer to a follower behind the compacted log: take a snapshot."""
    return _dumps({"protocol": PROTOCOL, "app_id": app_id, "library_uuid": library_uuid, "since": since,
                   "floor": floor, "snapshot_required": True}).encode()


def _snapshot_change(phase: str, seq: int, row: tuple) -> dict:
    """A snapshot row as the change that creates it (the follower applies both alike)."""
    if phase == "groups":
        _, ctime, group_id = row
        return {"seq": seq, "ts": ctime, "op": "group.add", "group_id": group_id, "user_id": None,
                "face_token": None, "data": None}
    if phase == "members":
        _, ctime, group_id, user_id, user_info = row
        return {"seq": seq, "ts": ctime, "op": "user.add", "group_id": group_id, "user_id": user_id,
                "face_token": None, "data": {"user_info": user_info}}
    _, ctime, group_id, user_id, token, blob, model, quality = row
    return {"seq": seq, "ts": ctime, "op": "face.add", "group_id": group_id, "user_id": user_id, "face_token": token,
            "data": {"embedding": base64.b64encode(blob).decode(), "model": model,
                     "quality": json.loads(quality) if quality else None}}


def build_snapshot_page(app_id: str, library_uuid: str, phase: str, after: int, head: int, rows: list[tuple],
                        limit: int, max_bytes: int = PAGE_MAX_BYTES) -> bytes:
    """A snapshot page: groups, then members, then faces, each by rowid. `next` is the
    (phase, after) to ask for next, null after the last face; `seq` the hub's head
    when the page was read (the follower replays the log from its first page's)."""
    changes, size, last = [], 0, after
    for row in rows:
        text = _dumps(_snapshot_change(phase, head, row))
        if changes and size + len(text) > max_bytes:
            break
        changes.append(text)
        size += len(text) + 1
        last = row[0]
    if len(changes) < len(rows) or len(rows) >= limit:
        nxt = {"phase": phase, "after": last}
    else:
        later = SNAPSHOT_PHASES[SNAPSHOT_PHASES.index(phase) + 1:]
        nxt = {"phase": later[0], "after": 0} if later else None
    page = {"protocol": PROTOCOL, "app_id": app_id, "library_uuid": library_uuid, "seq": head, "phase": phase,
            "after": after, "next": nxt, "count": len(changes)}
    return (_dumps(page)[:-1] + ',"changes":[' + ",".join(changes) + "]}").encode()


def sign_page(secret_key: str, nonce: str, body: bytes) -> str:
    """HMAC-SHA256 of the follower's nonce and the body, keyed by the credential's
    secret: the follower knows the page came from a hub holding its secret, unaltered
    and for this request (a replayed answer carries another nonce)."""
    mac = hmac.new(secret_key.encode(), nonce.encode() + b"\n" + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def signature_ok(secret_key: str, nonce: str, body: bytes, header: str | None) -> bool:
    return bool(header) and hmac.compare_digest(sign_page(secret_key, nonce, body), header)
