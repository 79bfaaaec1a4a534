"""Baidu's current Python SDK (baidu-aip 4.16.x, v3 face paths), offline.

    from edge.aip.v3 import AipFace       # instead of: from aip import AipFace
    client = AipFace(APP_ID, API_KEY, SECRET_KEY)
    client.addUser(b64, "BASE64", "staff", "u1", {"user_info": "Ann"})
    client.search(b64, "BASE64", "staff", {"liveness_control": "NORMAL"})

Every answer has v3's envelope: error_code (0 on success), error_msg, log_id,
timestamp, cached and result. Search follows ../shared/docs/baidu-face-v3-search.txt;
the rest follows Baidu's public v3 reference (choices: docs/api.md).
"""
from __future__ import annotations

import datetime as dt
import functools
import logging
import re
import statistics

from edge import rules
from edge.aip.calls import v3_call
from edge.aip.client import AipClient
from edge.aip.runtime import TOKEN_TTL_S
from edge.analysis.baidu import V3_FACE_FIELDS, face_to_v3, v3_location, v3_stages_for
from edge.analysis.gating import liveness_failure, quality_failure
from edge.errors import EdgeError
from edge.image_limits import V3_FACEVERIFY_MAX_IMAGES
from edge.library.store import FaceRecord
from edge.thresholds import LIVENESS

IMAGE_TYPES = ("BASE64", "FACE_TOKEN", "URL")
FACE_TYPES = ("LIVE", "IDCARD", "WATERMARK", "CERT", "INFRARED")
TOKEN_RE = re.compile(r"^[0-9a-f]{32}$")
NO_FACE, NO_MATCH, NO_TOKEN = 222202, 222207, 222209
ALL_GROUPS = "@ALL"
NOT_SUPPORTED = 216102

log = logging.getLogger(__name__)


@functools.lru_cache(maxsize=1)
def _log_spoofing_ignored() -> None:
    """Once per process: the operator chose to accept spoofing_control without a check."""
    log.warning("spoofing_control above NONE accepted and NOT evaluated (api.spoofing_control: ignore): "
                "no synthetic-image detector on this device")


def _opts(options) -> dict:
    if options is None:
        return {}
    if not isinstance(options, dict):
        raise EdgeError(222200, "options must be an object")
    return options


class AipFace(AipClient):
    # -- request images -----------------------------------------------------------
    def _faces(self, image, image_type, *, max_faces=1, sort_type=0, stages=frozenset(),
               quality="NONE", liveness="NONE", keep_failed=False):
        """Faces of a BASE64 image, with tokens remembered for 60 min; controls applied.

        Returns [(face, token)] in order; a face failing a control raises its code
        (or, with keep_failed, is dropped while others pass)."""
        image_type = self._image_type(image_type)
        if image_type == "URL":
            raise EdgeError(222204, "edge is offline: pass the image as BASE64")
        if image_type == "FACE_TOKEN":
            raise EdgeError(222015, "this call needs the picture itself (BASE64)")
        if not isinstance(image, (str, bytes)) or not image:
            raise EdgeError(222001 if not image else 222013, "image")
        stages = set(stages) | {"embedding"}
        if quality != "NONE":
            stages |= {"landmarks", "quality"}
        if liveness != "NONE":
            stages.add("liveness")
        photo = self._rt.photo(image, "v3", max_faces, sort_type, stages)
        if not photo.faces:
            raise EdgeError(NO_FACE)
        out, first_failure = [], None
        for face in photo.faces:
            code = quality_failure(face, quality) or liveness_failure(face, liveness)
            if code:
                first_failure = first_failure or code
                if not keep_failed:
                    raise EdgeError(code)
                continue
            out.append((face, self._rt.record(photo, face)))
        if not out:
            raise EdgeError(first_failure)
        self._lib.store.put_tokens([record for _, record in out], TOKEN_TTL_S)
        return out

    @staticmethod
    def _image_type(value) -> str:
        if value not in IMAGE_TYPES:
            raise EdgeError(222015, f"image_type must be one of {', '.join(IMAGE_TYPES)}")
        return value

    def _embedding(self, image, image_type, options: dict, quality: str, liveness: str):
        """(embedding, face_token, face or None) of the request's face."""
        if self._image_type(image_type) == "FACE_TOKEN":
            token = rules.text(image, 222013, "image")
            if not TOKEN_RE.match(token):
                raise EdgeError(222013, "not a face_token")
            emb = self._lib.store.token_embedding(token, TOKEN_TTL_S)
            if emb is None:
                raise EdgeError(NO_TOKEN, token)
            return emb, token, None
        sort_type = rules.integer(options, "face_sort_type", 0, 0, 1, 222039)
        face, record = self._faces(image, image_type, sort_type=sort_type, quality=quality, liveness=liveness)[0]
        return record.embedding, record.face_token, face

    def _controls(self, options: dict) -> tuple[str, str]:
        quality = rules.level(options, "quality_control", 222019)
        liveness = rules.level(options, "liveness_control", 222020)
        self._spoofing(rules.level(options, "spoofing_control", 222026))
        return quality, liveness

    def _spoofing(self, level: str) -> None:
        """No synthetic-image detector ships: a level above NONE is refused, so a caller never
        believes a check ran, unless the operator opted in to ignoring it (docs/api.md)."""
        if level == "NONE":
            return
        if self._api.spoofing_control != "ignore":
            raise EdgeError(NOT_SUPPORTED, f"spoofing_control {level}: no synthetic-image detector on this device "
                                           "(set api.spoofing_control: ignore to accept and skip it)")
        _log_spoofing_ignored()

    # -- detection and comparison ----------------------------------------------------
    @v3_call
    def detect(self, image, image_type, options=None):
        options = _opts(options)
        fields = {f.strip() for f in rules.text(options.get("face_field", ""), 222017, "face_field").split(",")
                  if f.strip()}
        if fields - set(V3_FACE_FIELDS):
            raise EdgeError(222017, f"unknown face_field {sorted(fields - set(V3_FACE_FIELDS))}")
        max_faces = rules.integer(options, "max_face_num", 1, 1, rules.DETECT_TOP_MAX, 222016)
        sort_type = rules.integer(options, "face_sort_type", 0, 0, 1, 222039)
        if options.get("face_type", "LIVE") not in FACE_TYPES:
            raise EdgeError(222024)
        liveness = rules.level(options, "liveness_control", 222020)
        found = self._faces(image, image_type, max_faces=max_faces, sort_type=sort_type,
                            stages=v3_stages_for(fields), liveness=liveness)
        faces = [face_to_v3(face, fields, record.face_token) for face, record in found]
        return {"face_num": len(faces), "face_list": faces}

    def _match_item(self, item):
        if not isinstance(item, dict):
            raise EdgeError(222200, "each image must be an object")
        rules.required(item, ("image", "image_type"), 222001)
        if item.get("face_type", "LIVE") not in FACE_TYPES:
            raise EdgeError(222024)
        quality, liveness = self._controls(item)
        return self._embedding(item["image"], item["image_type"], item, quality, liveness)

    @v3_call
    def match(self, images):
        if not isinstance(images, list):
            raise EdgeError(222200, "the body must be a list of images")
        if len(images) != 2:
            raise EdgeError(222208, "match compares exactly two images")
        (e1, t1, _), (e2, t2, _) = (self._match_item(item) for item in images)
        return {"score": self._rt.scale.score(e1 @ e2), "face_list": [{"face_token": t1}, {"face_token": t2}]}

    @v3_call
    def faceverify(self, images):
        if not isinstance(images, list) or not images:
            raise EdgeError(222200, "the body must be a list of images")
        if len(images) > V3_FACEVERIFY_MAX_IMAGES:
            raise EdgeError(222208, f"at most {V3_FACEVERIFY_MAX_IMAGES} images")
        face_list, scores = [], []
        for item in images:
            if not isinstance(item, dict):
                raise EdgeError(222200, "each image must be an object")
            rules.required(item, ("image", "image_type"), 222001)
            fields = {f.strip() for f in rules.text(item.get("face_field", ""), 222017, "face_field").split(",")
                      if f.strip()}
            if fields - set(V3_FACE_FIELDS):
                raise EdgeError(222017)
            found = self._faces(item["image"], item["image_type"], stages=v3_stages_for(fields) | {"liveness"})
            face, record = found[0]
            scores.append(face.liveness)
            face_list.append(face_to_v3(face, fields | {"liveness"}, record.face_token))
        return {"face_liveness": float(statistics.median(scores)),
                "thresholds": {"frr_1e-4": LIVENESS["LOW"], "frr_1e-3": LIVENESS["NORMAL"],
                               "frr_1e-2": LIVENESS["HIGH"]},
                "face_list": face_list}

    # -- search --------------------------------------------------------------------------
    def _search_request(self, group_id_list, options) -> tuple[dict, list[str], str, str, int, float]:
        """(options, groups, quality, liveness, max_user_num, match_threshold) of a search."""
        options = _opts(options)
        groups = rules.group_ids(group_id_list, 222013, max_groups=rules.GROUP_LIST_MAX, name="group_id_list")
        quality, liveness = self._controls(options)
        max_users = rules.integer(options, "max_user_num", 1, 1, rules.MAX_USER_NUM, 222021)
        threshold = rules.number(options, "match_threshold", 0, 0, 100, 222030)
        return options, groups, quality, liveness, max_users, threshold

    def _user_list(self, embedding, groups, max_users, threshold, user_id=None) -> list[dict]:
        min_sim = float(self._rt.scale.score_to_similarity(threshold)) - 1e-6 if threshold > 0 else -1.0
        if user_id is None:
            matches = self._lib.search(embedding, groups, max_users, min_sim)
        else:
            matches = self._lib.user_similarities(embedding, user_id, groups)[:max_users]
        out = [{"group_id": m.group_id, "user_id": m.user_id, "user_info": m.user_info,
                "score": self._rt.scale.score(m.similarity)} for m in matches]
        return [u for u in out if u["score"] >= threshold]

    @v3_call
    def search(self, image, image_type, group_id_list, options=None):
        options, groups, quality, liveness, max_users, threshold = self._search_request(group_id_list, options)
        user_id = rules.user_id(options["user_id"], 222018) if options.get("user_id") not in (None, "") else None
        embedding, token, _ = self._embedding(image, image_type, options, quality, liveness)
        users = self._user_list(embedding, groups, max_users, threshold, user_id)
        if not users:
            raise EdgeError(NO_MATCH)
        return {"face_token": token, "user_list": users}

    @v3_call
    def multiSearch(self, image, image_type, group_id_list, options=None):
        options, groups, quality, liveness, max_users, threshold = self._search_request(group_id_list, options)
        max_faces = rules.integer(options, "max_face_num", 1, 1, rules.DETECT_TOP_MAX, 222016)
        found = self._faces(image, image_type, max_faces=max_faces, quality=quality, liveness=liveness,
                            keep_failed=True)
        face_list = [{"face_token": record.face_token, "location": v3_location(face),
                      "user_list": self._user_list(record.embedding, groups, max_users, threshold)}
                     for face, record in found]
        if not any(f["user_list"] for f in face_list):
            raise EdgeError(NO_MATCH)
        return {"face_num": len(face_list), "face_list": face_list}

    # -- the face library ---------------------------------------------------------------
    def _register(self, image, image_type, group_id, user_id, options, modes):
        options = _opts(options)
        groups = rules.group_ids(group_id, 222006)
        user_id = rules.user_id(user_id, 222018)
        info = rules.user_info(options["user_info"], 222010) if "user_info" in options else None
        action = str(options.get("action_type", modes[0])).upper()
        if action not in modes:
            raise EdgeError(222025, f"action_type must be one of {', '.join(modes)}")
        quality, liveness = self._controls(options)
        if self._image_type(image_type) == "FACE_TOKEN":
            embedding, token, face = self._embedding(image, image_type, options, quality, liveness)
            record = FaceRecord(token, embedding, self._rt.model_id)
        else:
            face, record = self._faces(image, image_type, stages={"landmarks", "quality"},
                                       quality=quality, liveness=liveness)[0]
        mode = {"APPEND": "append", "REPLACE": "replace", "UPDATE": "update"}[action]
        self._lib.register(groups, user_id, info, record, mode)
        return {"face_token": record.face_token, "location": v3_location(face) if face is not None else None}

    @v3_call
    def addUser(self, image, image_type, group_id, user_id, options=None):
        return self._register(image, image_type, group_id, user_id, options, ("APPEND", "REPLACE"))

    @v3_call
    def updateUser(self, image, image_type, group_id, user_id, options=None):
        return self._register(image, image_type, group_id, user_id, options, ("UPDATE", "REPLACE"))

    def _group(self, group_id, must_exist=True) -> str:
        (group,) = rules.group_ids(group_id, 222006)[:1]
        if "," in str(group_id):
            raise EdgeError(222006, "one group_id")
        if must_exist and not self._lib.store.group_exists(group):
            raise EdgeError(223100, group)
        return group

    @v3_call
    def faceDelete(self, user_id, group_id, face_token, options=None):
        user_id = rules.user_id(user_id, 222018)
        group = self._group(group_id)
        if not isinstance(face_token, str) or not TOKEN_RE.match(face_token):
            raise EdgeError(222023)
        self._lib.delete_face(user_id, group, face_token)
        return None

    @v3_call
    def getUser(self, user_id, group_id, options=None):
        user_id = rules.user_id(user_id, 222018)
        groups = None if group_id == ALL_GROUPS else [self._group(group_id)]
        rows = self._lib.store.user_groups(user_id, groups)
        if not rows:
            raise EdgeError(223103, user_id)
        return {"user_list": [{"user_info": info, "group_id": g} for g, info in rows]}

    @v3_call
    def faceGetlist(self, user_id, group_id, options=None):
        user_id = rules.user_id(user_id, 222018)
        group = self._group(group_id)
        faces = self._lib.store.list_faces(user_id, group)
        if not faces:
            raise EdgeError(223103, user_id)
        return {"face_list": [{"face_token": t, "ctime": dt.datetime.fromtimestamp(c).strftime("%Y-%m-%d %H:%M:%S")}
                              for t, c in faces]}

    def _page(self, options: dict) -> tuple[int, int]:
        start = rules.integer(options, "start", 0, 0, 2**31 - 1, 222002)
        length = rules.integer(options, "length", rules.PAGE_DEFAULT, 1, rules.PAGE_MAX, 222003)
        return start, length

    @v3_call
    def getGroupUsers(self, group_id, options=None):
        group = self._group(group_id)
        start, length = self._page(_opts(options))
        return {"user_id_list": [u for u, _ in self._lib.store.list_group_users(group, start, length)]}

    @v3_call
    def userCopy(self, user_id, options=None):
        options = _opts(options)
        user_id = rules.user_id(user_id, 222018)
        rules.required(options, ("src_group_id", "dst_group_id"), 222001)
        src = self._group(options["src_group_id"])
        dst = [self._group(g) for g in rules.group_ids(options["dst_group_id"], 222006)]
        self._lib.copy_user(user_id, src, dst, create_groups=False)
        return None

    @v3_call
    def deleteUser(self, group_id, user_id, options=None):
        group = self._group(group_id)
        self._lib.delete_user(rules.user_id(user_id, 222018), [group])
        return None

    @v3_call
    def groupAdd(self, group_id, options=None):
        self._lib.add_group(self._group(group_id, must_exist=False))
        return None

    @v3_call
    def groupDelete(self, group_id, options=None):
        self._lib.delete_group(self._group(group_id))
        return None

    @v3_call
    def getGroupList(self, options=None):
        start, length = self._page(_opts(options))
        return {"group_id_list": self._lib.store.list_groups(start, length)}

    @v3_call
    def personVerify(self, image, image_type, id_card_number, name, options=None):
        """Needs the national ID photo database: not available offline (docs/api.md)."""
        raise EdgeError(NOT_SUPPORTED, "personVerify checks against the public-security database; edge is offline")
