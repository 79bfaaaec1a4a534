"""Baidu's v2 Python SDK (`aip.AipFace`, baidu-aip 2.2.x), offline.

    from edge.aip import AipFace          # instead of: from aip import AipFace
    client = AipFace(APP_ID, API_KEY, SECRET_KEY)
    client.addUser("u1", "Ann", "staff", open("ann.jpg", "rb").read())
    client.identifyUser("staff", open("door.jpg", "rb").read())

Same signatures, same JSON, same error codes as ../shared/docs/baidu-face-python-sdk-v2.txt
(choices where the doc contradicts itself: docs/api.md). Images are raw bytes, as with
the SDK. API_KEY and SECRET_KEY are not checked in-process (the HTTP service checks
them); APP_ID selects the face library.
"""
from __future__ import annotations

import itertools

from edge import rules
from edge.aip.calls import v2_call
from edge.aip.client import AipClient
from edge.aip.runtime import Photo
from edge.analysis import baidu
from edge.analysis.baidu import location, parse_face_fields
from edge.errors import EdgeError
from edge.imaging import check_request_size

INVALID = 216100
NO_FACE = 216402


def _ext_fields(options: dict) -> set[str]:
    return parse_face_fields(rules.text(options.get("ext_fields", ""), INVALID, "ext_fields"))


def _liveness_text(value: float) -> str:
    return f"{value:.6f}"


class AipFace(AipClient):
    def _photo(self, image, max_faces: int, stages) -> Photo:
        photo = self._rt.photo(image, "v2", max_faces, 0, stages)
        if not photo.faces:
            raise EdgeError(NO_FACE)
        return photo

    # -- detection and comparison ----------------------------------------------
    def detect(self, image, options=None):
        return self._rt.engine.detect(image, options or {})

    @v2_call
    def match(self, images, options=None):
        options = options or {}
        if isinstance(images, (bytes, str)) or len(images) < 2:
            raise EdgeError(216614)
        check_request_size(images, api="v2", method="match")  # "单次请求总共最大20M"
        ext = _ext_fields(options)
        live = [s.strip() == "faceliveness" for s in
                rules.text(options.get("image_liveness", ""), INVALID, "image_liveness").split(",")]
        faces = []
        for i, image in enumerate(images):
            stages = {"embedding"} | ({"landmarks", "quality", "face_type"} if "qualities" in ext else set()) \
                | ({"liveness"} if i < len(live) and live[i] else set())
            faces.append(self._photo(image, 1, stages).faces[0])
        result = [{"index_i": i, "index_j": j, "score": self._rt.scale.score(faces[i].embedding @ faces[j].embedding)}
                  for i, j in itertools.combinations(range(len(faces)), 2)]
        out = {"result_num": len(result), "result": result}
        if "qualities" in ext or any(live):
            out["ext_info"] = [self._ext_info(f, "qualities" in ext) for f in faces]
        return out

    @staticmethod
    def _ext_info(face, qualities: bool) -> dict:
        info = {}
        if qualities and face.quality is not None:
            info["qualities"] = baidu.qualities(face.quality, face.face_type)
        if face.liveness is not None:
            info["faceliveness"] = _liveness_text(face.liveness)
        return info

    # -- search in the library ----------------------------------------------------
    def _search_photo(self, image, options: dict, max_faces: int) -> tuple[Photo, bool]:
        live = "faceliveness" in _ext_fields(options)
        return self._photo(image, max_faces, {"embedding"} | ({"liveness"} if live else set())), live

    @v2_call
    def identifyUser(self, group_id, image, options=None):
        options = options or {}
        groups = rules.group_ids(group_id, INVALID)
        top = rules.integer(options, "user_top_num", 1, 1, rules.IDENTIFY_TOP_MAX, INVALID)
        photo, live = self._search_photo(image, options, 1)
        face = photo.faces[0]
        matches = self._lib.search(face.embedding, groups, top)
        if not matches:
            raise EdgeError(216618, f"no user in {groups}")
        result = [{"group_id": m.group_id, "uid": m.user_id, "user_info": m.user_info,
                   "scores": [self._rt.scale.score(s) for s in m.similarities]} for m in matches]
        out = {"result_num": len(result), "result": result}
        if live:
            out["ext_info"] = [{"faceliveness": _liveness_text(face.liveness)}]
        return out

    @v2_call
    def verifyUser(self, uid, group_id, image, options=None):
        options = options or {}
        uid = rules.user_id(uid, 216111, "uid")
        groups = rules.group_ids(group_id, INVALID)
        top = rules.integer(options, "top_num", 1, 1, rules.INT32_MAX, INVALID)  # no documented maximum
        photo, live = self._search_photo(image, options, 1)
        face = photo.faces[0]
        matches = self._lib.user_similarities(face.embedding, uid, groups)
        if not matches:
            raise EdgeError(216611, f"{uid} not in {groups}")
        sims = sorted((s for m in matches for s in m.similarities), reverse=True)[:top]
        out = {"result_num": len(sims), "result": [self._rt.scale.score(s) for s in sims]}
        if live:
            out["ext_info"] = [{"faceliveness": _liveness_text(face.liveness)}]
        return out

    @v2_call
    def multiIdentify(self, group_id, image, options=None):
        options = options or {}
        groups = rules.group_ids(group_id, INVALID)
        faces_n = rules.integer(options, "detect_top_num", 1, 1, rules.DETECT_TOP_MAX, INVALID)
        top = rules.integer(options, "user_top_num", 1, 1, rules.MULTI_IDENTIFY_TOP_MAX, INVALID)
        photo, live = self._search_photo(image, options, faces_n)
        if not self._lib.store.group_refs(groups):
            raise EdgeError(216618, f"no user in {groups}")
        result = []
        for face in photo.faces:
            position = {**location(face), "degree": int(round(face.roll)), "prob": round(face.score, 4)}
            for m in self._lib.search(face.embedding, groups, top):
                result.append({"group_id": m.group_id, "uid": m.user_id, "user_info": m.user_info,
                               "position": position, "scores": [self._rt.scale.score(m.similarity)]})
        out = {"result_num": len(result), "result": result}
        if live:
            out["ext_info"] = [{"faceliveness": _liveness_text(f.liveness)} for f in photo.faces]
        return out

    # -- the face library -----------------------------------------------------------
    def _register(self, uid, user_info, group_id, image, mode: str):
        uid = rules.user_id(uid, 216111, "uid")
        info = rules.user_info(user_info, INVALID)
        groups = rules.group_ids(group_id, INVALID)
        photo = self._photo(image, 1, {"embedding", "landmarks", "quality"})
        self._lib.register(groups, uid, info, self._rt.record(photo, photo.faces[0]), mode)
        return {}

    @v2_call
    def addUser(self, uid, user_info, group_id, image, options=None):
        action = (options or {}).get("action_type", "append")
        if action not in ("append", "replace"):
            raise EdgeError(INVALID, "action_type must be append or replace")
        return self._register(uid, user_info, group_id, image, action)

    @v2_call
    def updateUser(self, uid, user_info, group_id, image, options=None):
        action = (options or {}).get("action_type")
        if action not in (None, "", "replace"):
            raise EdgeError(INVALID, "action_type must be replace")
        return self._register(uid, user_info, group_id, image, "replace" if action == "replace" else "update")

    @v2_call
    def deleteUser(self, uid, options=None):
        options = options or {}
        uid = rules.user_id(uid, 216111, "uid")
        groups = rules.group_ids(options["group_id"], INVALID) if options.get("group_id") else None
        self._lib.delete_user(uid, groups)
        return {}

    @v2_call
    def getUser(self, uid, options=None):
        options = options or {}
        uid = rules.user_id(uid, 216111, "uid")
        groups = rules.group_ids(options["group_id"], INVALID) if options.get("group_id") else None
        rows = self._lib.store.user_groups(uid, groups)
        if not rows:
            raise EdgeError(216611, uid)
        by_info: dict[str, list[str]] = {}
        for group, info in rows:
            by_info.setdefault(info, []).append(group)
        result = [{"uid": uid, "user_info": info, "groups": gs} for info, gs in by_info.items()]
        return {"result_num": len(result), "result": result}

    def _page(self, options: dict) -> tuple[int, int]:
        start = rules.integer(options, "start", 0, 0, 2**31 - 1, INVALID)
        num = rules.integer(options, "num", rules.PAGE_DEFAULT, 1, rules.PAGE_MAX, INVALID)
        return start, num

    @v2_call
    def getGroupList(self, options=None):
        start, num = self._page(options or {})
        groups = self._lib.store.list_groups(start, num)
        return {"result_num": len(groups), "result": groups}

    @v2_call
    def getGroupUsers(self, group_id, options=None):
        (group,) = rules.group_ids(group_id, INVALID)[:1]
        start, num = self._page(options or {})
        if not self._lib.store.list_group_users(group, 0, 1):
            raise EdgeError(216618, group)
        users = [{"uid": u, "user_info": i} for u, i in self._lib.store.list_group_users(group, start, num)]
        return {"result_num": len(users), "result": users}

    @v2_call
    def addGroupUser(self, src_group_id, group_id, uid, options=None):
        (src,) = rules.group_ids(src_group_id, INVALID)[:1]
        groups = rules.group_ids(group_id, INVALID)
        uid = rules.user_id(uid, 216111, "uid")
        self._lib.copy_user(uid, src, groups, create_groups=True)
        return {}

    @v2_call
    def deleteGroupUser(self, group_id, uid, options=None):
        groups = rules.group_ids(group_id, INVALID)
        uid = rules.user_id(uid, 216111, "uid")
        self._lib.leave_groups(groups, uid)
        return {}

    # -- liveness and identity ------------------------------------------------------
    @v2_call
    def personVerify(self, image, id_card_number, name, options=None):
        """Needs the national ID photo database: not available offline (docs/api.md)."""
        raise EdgeError(216102, "personVerify checks against the public-security database; edge is offline")

    def faceverify(self, image, options=None):
        options = dict(options or {})
        fields = parse_face_fields(options.get("face_fields")) | {"faceliveness"}
        options["face_fields"] = ",".join(sorted(fields))
        return self._rt.engine.detect(image, options)
