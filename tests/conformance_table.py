"""The conformance table: every method and documented option of both SDK versions, and
what the documents say each answer must hold.

One row = one SDK call against a real `edge serve` (tests/test_conformance.py) and its
expectation: either `fields` (JSON path -> type and range, as the document declares) or
`error` (the documented code, or the documented codes one of which must come back).

Documents, cited in `doc` as "<doc>:<line> <text on that line>" (checked by a test):
- v2: ../shared/docs/baidu-face-python-sdk-v2.txt (baidu-aip 2.2.2.0)
- v3: ../shared/docs/baidu-face-v3-search.txt (baidu-aip 4.16.13, search)
- v3ref: Baidu's public v3 reference (ai.baidu.com/ai-doc/FACE: 人脸检测, 人脸对比,
  人脸库管理, 在线活体检测, M:N 搜索), for the methods the search doc does not cover;
  cited by page and field, as it is not stored in ../shared/docs.
Where the documents contradict each other or are silent, `choice` names the row of
docs/api.md's Choices table that settles it (checked by a test).

Types: INT is a JSON integer (the docs' uint32/int32/int64: an app slices pixels with
it), NUM any JSON number (double/float: an integer value is a valid double), STR, LIST,
DICT; NUMSTR a string holding a number (v2's ext_info faceliveness); NULL (v3 result of
calls without one). A path "a[].b" checks b in every element of the non-empty list a.
"""
from __future__ import annotations

from dataclasses import dataclass, field

INT, NUM, STR, LIST, DICT, NUMSTR, NULL = "int", "num", "str", "list", "dict", "numstr", "null"


@dataclass(frozen=True)
class F:
    """One field's expectation: its type, and optionally a closed range or the allowed values."""
    type: str
    lo: float | None = None
    hi: float | None = None
    one_of: tuple = ()
    length: int | None = None     # lists: exact length


@dataclass(frozen=True)
class Img:
    """A request image: a real photo (LFW person and index, or a path under ../shared/data),
    optionally transformed at test time (rotate=degrees clockwise, blur, pad, grow=MB)."""
    name: str
    index: int = 1
    rotate: float = 0.0
    blur: float = 0.0
    grow_mb: float = 0.0          # re-encode with noise padding to about this many MB of base64
    size: tuple | None = None     # resize to (width, height)
    tile: int = 0                 # a tile x tile grid of the photo (a crowd of faces)


GARBAGE = "garbage"               # bytes that are no image at all
EMPTY = "empty"                   # no bytes at all
GIF = "gif"                       # a GIF header: a format Baidu does not take
NO_FACE = Img("multiface/inspireface_view_noface.jpg")
TWO = Img("multiface/fr_two_people.jpg")
MANY = Img("multiface/deepface_selfie-many-people.jpg")
REPLAY = Img("spoof-dev/silentface_image_F2.jpg")    # a face replayed on a tablet screen (labels.csv)
A, B, C = "Paul_Wolfowitz", "Jennifer_Lopez", "Ricardo_Lagos"


class SetupToken:
    """The face_token of the row's last setup call (v3 addUser result)."""


class SeedToken:
    """A face_token the seeding step got from v3 detect of Img(A, 2) (valid 60 min)."""


@dataclass(frozen=True)
class Row:
    id: str
    sdk: str                      # "v2" | "v3" (the real SDK) | "http" (raw bytes on the socket)
    method: str
    args: tuple = ()
    options: dict | None = None
    fields: dict = field(default_factory=dict)
    error: int | tuple | None = None
    only: tuple | None = None     # v2: the exact keys of a success answer
    doc: str = ""
    choice: str = ""
    setup: tuple = ()             # (method, args, options) calls made first, each must succeed
    xfail: str = ""               # "fixed on branch h-NAME" while another branch owns the fix


# -- v2 field sets -------------------------------------------------------------------------
V2_LOCATION = {k: F(INT, 0) for k in ("left", "top", "width", "height")}
V2_FACE_BASE = {
    "result_num": F(INT, 0),
    **{f"result[].location.{k}": s for k, s in V2_LOCATION.items()},
    "result[].face_probability": F(NUM, 0, 1),
    "result[].rotation_angle": F(INT, -180, 180),
    "result[].yaw": F(NUM, -90, 90),
    "result[].pitch": F(NUM, -90, 90),
    "result[].roll": F(NUM, -180, 180),
}
V2_OCCLUSION = {f"result[].qualities.occlusion.{k}": F(NUM, 0, 1)
                for k in ("left_eye", "right_eye", "nose", "mouth", "left_cheek", "right_cheek", "chin")}
V2_QUALITIES = {**V2_OCCLUSION, "result[].qualities.blur": F(NUM, 0, 1),
                "result[].qualities.illumination": F(NUM, 0, 255),
                "result[].qualities.completeness": F(NUM, 0, 1)}
V2_ALL = {
    **V2_FACE_BASE,
    "result[].age": F(NUM, 0, 120),
    "result[].expression": F(INT, one_of=(0, 1, 2)),
    "result[].expression_probability": F(NUM, 0, 1),
    "result[].faceshape": F(LIST, length=5),
    "result[].faceshape[].type": F(STR, one_of=("square", "triangle", "oval", "heart", "round")),
    "result[].faceshape[].probability": F(NUM, 0, 1),
    "result[].gender": F(STR, one_of=("male", "female")),
    "result[].gender_probability": F(NUM, 0, 1),
    "result[].landmark": F(LIST, length=4),
    "result[].landmark[].x": F(INT, 0), "result[].landmark[].y": F(INT, 0),
    "result[].landmark72": F(LIST, length=72),
    "result[].landmark72[].x": F(INT, 0), "result[].landmark72[].y": F(INT, 0),
    **V2_QUALITIES,
}
V2_IDENTIFY = {"result_num": F(INT, 1), "result[].group_id": F(STR), "result[].uid": F(STR),
               "result[].user_info": F(STR), "result[].scores[]": F(NUM, 0, 100)}
V2_POSITION = {**{f"result[].position.{k}": F(INT, 0) for k in ("left", "top", "width", "height")},
               "result[].position.degree": F(INT, -180, 180), "result[].position.prob": F(NUM, 0, 1)}
LOG_ONLY = ("log_id",)

# -- v3 field sets -------------------------------------------------------------------------
TOKEN = F(STR, length=32)
V3_LOCATION = {**{k: F(NUM, 0) for k in ("left", "top", "width", "height")}, "rotation": F(INT, -180, 180)}
V3_FACE_BASE = {
    "result.face_num": F(INT, 1),
    "result.face_list[].face_token": TOKEN,
    **{f"result.face_list[].location.{k}": s for k, s in V3_LOCATION.items()},
    "result.face_list[].face_probability": F(NUM, 0, 1),
    "result.face_list[].angle.yaw": F(NUM, -90, 90),
    "result.face_list[].angle.pitch": F(NUM, -90, 90),
    "result.face_list[].angle.roll": F(NUM, -180, 180),
}
V3_ALL = {
    **V3_FACE_BASE,
    "result.face_list[].age": F(NUM, 0, 120),
    "result.face_list[].expression.type": F(STR, one_of=("none", "smile", "laugh")),
    "result.face_list[].expression.probability": F(NUM, 0, 1),
    "result.face_list[].face_shape.type": F(STR, one_of=("square", "triangle", "oval", "heart", "round")),
    "result.face_list[].face_shape.probability": F(NUM, 0, 1),
    "result.face_list[].gender.type": F(STR, one_of=("male", "female")),
    "result.face_list[].gender.probability": F(NUM, 0, 1),
    "result.face_list[].landmark": F(LIST, length=4),
    "result.face_list[].landmark[].x": F(NUM), "result.face_list[].landmark[].y": F(NUM),
    "result.face_list[].landmark72": F(LIST, length=72),
    "result.face_list[].landmark72[].x": F(NUM), "result.face_list[].landmark72[].y": F(NUM),
    **{f"result.face_list[].quality.occlusion.{k}": F(NUM, 0, 1)
       for k in ("left_eye", "right_eye", "nose", "mouth", "left_cheek", "right_cheek", "chin_contour")},
    "result.face_list[].quality.blur": F(NUM, 0, 1),
    "result.face_list[].quality.illumination": F(NUM, 0, 255),
    "result.face_list[].quality.completeness": F(INT, one_of=(0, 1)),
}
V3_USERS = {"result.user_list[].group_id": F(STR), "result.user_list[].user_id": F(STR),
            "result.user_list[].user_info": F(STR), "result.user_list[].score": F(NUM, 0, 100)}
V3_NULL = {"result": F(NULL)}
V3_ADDED = {"result.face_token": TOKEN, **{f"result.location.{k}": s for k, s in V3_LOCATION.items()}}

OPEN = "divergence not fixed yet"    # found by this table, outside the branches' scope
H_IMAGES, H_FIELDS, H_ROT, H_HTTP = ("fixed on branch h-images", "fixed on branch h-fields",
                                     "fixed on branch h-rotation", "fixed on branch h-http")

# Library state made by the seeding step (test_conformance.py::seeded):
#   v2 app: paul (A1) in c2_staff and c2_all, jlo (B1) in c2_staff.
#   v3 app: groups c3_staff (paul A1, jlo B1) and c3_empty.
ALL2 = "age,expression,faceshape,gender,landmark,qualities"
ALL3 = "age,expression,face_shape,gender,landmark,quality"

ROWS: tuple[Row, ...] = (
    # ==== v2 detect =========================================================================
    Row("v2-detect-default", "v2", "detect", (Img(A, 2),), None, V2_FACE_BASE,
        doc="v2:++left uint32"),
    Row("v2-detect-every-field", "v2", "detect", (Img(A, 2),), {"face_fields": ALL2}, V2_ALL,
        doc="v2:++x uint32", choice="v2-integer-fields"),
    Row("v2-detect-two-faces", "v2", "detect", (TWO,), {"max_face_num": 2},
        {"result_num": F(INT, 2, 2), **V2_FACE_BASE}, doc="v2:max_face_num string 1"),
    Row("v2-detect-max-face-num-20", "v2", "detect", (MANY,), {"max_face_num": 20},
        {"result_num": F(INT, 5, 20), **V2_FACE_BASE}, doc="v2:max_face_num string 1",
        choice="max-face-num"),
    Row("v2-detect-max-face-num-huge", "v2", "detect", (TWO,), {"max_face_num": 100000},
        {"result_num": F(INT, 2, 2)}, doc="v2:max_face_num string 1", choice="max-face-num"),
    Row("v2-detect-max-face-num-cap", "v2", "detect", (Img(A, 2, tile=8),), {"max_face_num": 64},
        {"result_num": F(INT, 50, 50)}, doc="v2:max_face_num string 1", choice="max-face-num"),
    Row("v2-detect-max-face-num-0", "v2", "detect", (Img(A, 2),), {"max_face_num": 0}, error=216100,
        doc="v2:216100 invalid param"),
    Row("v2-detect-max-face-num-text", "v2", "detect", (Img(A, 2),), {"max_face_num": "two"}, error=216100,
        doc="v2:216100 invalid param"),
    Row("v2-detect-no-face", "v2", "detect", (NO_FACE,), None, {"result_num": F(INT, 0, 0), "result": F(LIST)},
        doc="v2:result_num uint32", choice="v2-detect-no-face"),
    Row("v2-detect-glasses", "v2", "detect", (Img(A, 2),), {"face_fields": "glasses"},
        {"result[].glasses": F(INT, one_of=(0, 1, 2)), "result[].glasses_probability": F(NUM, 0, 1)},
        doc="v2:+glasses uint32", choice="glasses"),
    Row("v2-detect-beauty", "v2", "detect", (Img(A, 2),), {"face_fields": "beauty"},
        {"result[].beauty": F(NULL)}, doc="v2:+beauty double", choice="fields-not-measured"),
    Row("v2-detect-qualities-type", "v2", "detect", (Img(A, 2),), {"face_fields": "qualities"},
        {"result[].qualities.type.human": F(NUM, 0, 1), "result[].qualities.type.cartoon": F(NUM, 0, 1)},
        doc="v2:++type object", choice="face-type"),
    Row("v2-detect-rotated-30", "v2", "detect", (Img(C, 2, rotate=30),), None,
        {"result[].rotation_angle": F(INT, 20, 40), "result[].roll": F(NUM, 20, 40)},
        doc="v2:+rotation_angle int32"),
    Row("v2-detect-rotated-90", "v2", "detect", (Img(C, 2, rotate=90),), None,
        {"result[].rotation_angle": F(INT, 70, 110), "result[].roll": F(NUM, 70, 110)},
        doc="v2:+rotation_angle int32"),
    Row("v2-detect-rotated-minus-90", "v2", "detect", (Img(C, 2, rotate=-90),), None,
        {"result[].rotation_angle": F(INT, -110, -70)}, doc="v2:+rotation_angle int32"),
    Row("v2-detect-empty-image", "v2", "detect", (EMPTY,), None, error=216200, doc="v2:216200 empty image"),
    Row("v2-detect-expression", "v2", "detect", (Img(A, 2),), {"face_fields": "expression"},
        {"result[].expression": F(INT, one_of=(0, 1, 2)), "result[].expression_probability": F(NUM, 0, 1)},
        doc="v2:+expression_probability double", choice="v2-field-names"),
    Row("v2-detect-gif", "v2", "detect", (GIF,), None, error=216201, doc="v2:支持jpg/png/bmp格式"),
    Row("v2-detect-garbage", "v2", "detect", (GARBAGE,), None, error=216201, doc="v2:216201 image format error"),
    Row("v2-detect-too-small", "v2", "detect", (Img(A, 2, size=(12, 12)),), None, error=216202,
        doc="v2:最短边至少15px"),
    Row("v2-detect-too-large", "v2", "detect", (Img(A, 2, size=(4200, 300)),), None, error=216202,
        doc="v2:最长边最大4096px"),
    # ==== v2 faceverify (在线活体检测) ==========================================================
    Row("v2-faceverify", "v2", "faceverify", (Img(A, 2),), {"face_fields": "qualities"},
        {**V2_FACE_BASE, **V2_QUALITIES, "result[].faceliveness": F(NUM, 0, 1)},
        doc="v2:+faceliveness float", choice="v2-faceverify"),
    Row("v2-faceverify-two", "v2", "faceverify", (TWO,), {"max_face_num": 2},
        {"result_num": F(INT, 2, 2), "result[].faceliveness": F(NUM, 0, 1)}, doc="v2:max_face_num string 1"),
    Row("v2-faceverify-garbage", "v2", "faceverify", (GARBAGE,), None, error=216201,
        doc="v2:216201 image format error"),
    # ==== v2 match ===========================================================================
    Row("v2-match", "v2", "match", ([Img(A, 2), Img(A, 3), Img(B, 2)],), None,
        {"result_num": F(INT, 3, 3), "result[].index_i": F(INT, 0, 2), "result[].index_j": F(INT, 0, 2),
         "result[].score": F(NUM, 0, 100)}, doc="v2:+index_i uint32"),
    Row("v2-match-ext", "v2", "match", ([Img(A, 2), Img(A, 3)],),
        {"ext_fields": "qualities", "image_liveness": ",faceliveness", "types": "7,13"},
        {"ext_info": F(LIST, length=2), "ext_info[].qualities": F(DICT),
         "ext_info[].qualities.blur": F(NUM, 0, 1)}, doc="v2:+qualities string", choice="v2-ext-qualities"),
    Row("v2-match-liveness", "v2", "match", ([Img(A, 2), Img(A, 3)],), {"image_liveness": "faceliveness,faceliveness"},
        {"ext_info[].faceliveness": F(NUMSTR, 0, 1)}, doc="v2:+faceliveness string"),
    Row("v2-match-12mb", "v2", "match", ([Img(A, 2, grow_mb=3.9), Img(A, 3, grow_mb=3.9), Img(B, 2, grow_mb=3.9)],),
        None, {"result_num": F(INT, 3, 3)}, doc="v2:单次请求总共最大20M"),
    Row("v2-match-one-image", "v2", "match", ([Img(A, 2)],), None, error=216614,
        doc="v2:216614 not enough images"),
    Row("v2-match-no-face", "v2", "match", ([Img(A, 2), NO_FACE],), None, error=216402,
        doc="v2:216402 face not found", choice="v2-match"),
    # ==== v2 identifyUser ==============================================================
    Row("v2-identify", "v2", "identifyUser", ("c2_staff", Img(A, 2)), {"user_top_num": 2},
        {**V2_IDENTIFY, "result_num": F(INT, 2, 2)}, doc="v2:+scores array(double)",
        choice="v2-identify-scores"),
    Row("v2-identify-two-groups", "v2", "identifyUser", ("c2_staff,c2_all", Img(A, 2)), {"user_top_num": 5},
        V2_IDENTIFY, doc="v2:group_id string"),
    Row("v2-identify-liveness", "v2", "identifyUser", ("c2_staff", Img(A, 2)), {"ext_fields": "faceliveness"},
        {**V2_IDENTIFY, "ext_info[].faceliveness": F(NUMSTR, 0, 1)}, doc="v2:+faceliveness string"),
    Row("v2-identify-top-6", "v2", "identifyUser", ("c2_staff", Img(A, 2)), {"user_top_num": 6}, error=216100,
        doc="v2:最多返回5个"),
    Row("v2-identify-unknown-group", "v2", "identifyUser", ("c2_nobody", Img(A, 2)), None, error=216618,
        doc="v2:216618 no user in group"),
    Row("v2-identify-bad-group-id", "v2", "identifyUser", ("c2-staff", Img(A, 2)), None, error=216100,
        doc="v2:由数字、字母、下划线组成"),
    Row("v2-identify-no-face", "v2", "identifyUser", ("c2_staff", NO_FACE), None, error=216402,
        doc="v2:216402 face not found"),
    Row("v2-identify-garbage", "v2", "identifyUser", ("c2_staff", GARBAGE), None, error=216201,
        doc="v2:216201 image format error"),
    # ==== v2 verifyUser ====================================================================
    Row("v2-verify", "v2", "verifyUser", ("paul", "c2_staff", Img(A, 2)), {"top_num": 3, "ext_fields": "faceliveness"},
        {"result_num": F(INT, 1), "result[]": F(NUM, 0, 100), "ext_info[].faceliveness": F(NUMSTR, 0, 1)},
        doc="v2:result array(double)"),
    Row("v2-verify-top-num-5000", "v2", "verifyUser", ("paul", "c2_staff", Img(A, 2)), {"top_num": 5000},
        {"result_num": F(INT, 1, 1)}, doc="v2:top_num string 1 返回用户top数,默认为1", choice="max-face-num"),
    Row("v2-verify-top-num-0", "v2", "verifyUser", ("paul", "c2_staff", Img(A, 2)), {"top_num": 0}, error=216100,
        doc="v2:top_num string 1 返回用户top数,默认为1"),
    Row("v2-verify-bad-uid", "v2", "verifyUser", ("pa ul", "c2_staff", Img(A, 2)), None, error=216111,
        doc="v2:216111 invalid userid"),
    Row("v2-verify-unknown-user", "v2", "verifyUser", ("nobody", "c2_staff", Img(A, 2)), None, error=216611,
        doc="v2:216611 user not exist", choice="user-not-exist"),
    # ==== v2 multiIdentify =================================================================
    Row("v2-multi-identify", "v2", "multiIdentify", ("c2_staff", TWO),
        {"detect_top_num": 2, "user_top_num": 2, "ext_fields": "faceliveness"},
        {"result_num": F(INT, 1), **V2_POSITION, "result[].uid": F(STR), "result[].group_id": F(STR),
         "result[].user_info": F(STR), "result[].scores": F(LIST, length=1), "result[].scores[]": F(NUM, 0, 100),
         "ext_info[].faceliveness": F(NUMSTR, 0, 1)},
        doc="v2:- position object", choice="v2-integer-fields"),
    Row("v2-multi-identify-detect-11", "v2", "multiIdentify", ("c2_staff", TWO), {"detect_top_num": 11},
        error=216100, doc="v2:最对返回10个"),
    Row("v2-multi-identify-user-21", "v2", "multiIdentify", ("c2_staff", TWO), {"user_top_num": 21},
        error=216100, doc="v2:最多返回20个"),
    # ==== v2 library =========================================================================
    Row("v2-add-user", "v2", "addUser", ("add2", "Add Two", "c2_add,c2_add_b", Img(C, 1)), None, only=LOG_ONLY,
        doc="v2:log_id uint64"),
    Row("v2-add-user-replace", "v2", "addUser", ("rep2", "Rep", "c2_rep", Img(C, 3)), {"action_type": "replace"},
        only=LOG_ONLY, doc="v2:action_type string append",
        setup=(("addUser", ("rep2", "Rep", "c2_rep", Img(C, 2)), None),)),
    Row("v2-add-user-existing-image", "v2", "addUser", ("paul", "Paul", "c2_staff", Img(A, 1)), None, error=216616,
        doc="v2:216616 image existed"),
    Row("v2-add-user-bad-uid", "v2", "addUser", ("a-b", "x", "c2_staff", Img(C, 1)), None, error=216111,
        doc="v2:uid string"),
    Row("v2-add-user-long-info", "v2", "addUser", ("info2", "x" * 257, "c2_staff", Img(C, 1)), None, error=216100,
        doc="v2:user_info string"),
    Row("v2-add-user-uid-129", "v2", "addUser", ("u" * 129, "x", "c2_staff", Img(C, 1)), None, error=216111,
        doc="v2:uid string 用户id(由数字、字母、下划线组成),长度限制128B"),
    Row("v2-add-user-info-utf8", "v2", "addUser", ("info2", "张" * 86, "c2_staff", Img(C, 1)), None, error=216100,
        doc="v2:user_info string 用户资料,长度限制256B"),
    Row("v2-add-user-group-49-in-list", "v2", "addUser", ("grp2", "x", "c2_a," + "g" * 49, Img(C, 1)), None,
        error=216100, doc="v2:每个group_id长度限制为48个英文字符"),
    Row("v2-add-user-long-group", "v2", "addUser", ("grp2", "x", "g" * 129, Img(C, 1)), None, error=216100,
        doc="v2:长度限制128B"),
    Row("v2-add-user-bad-action", "v2", "addUser", ("act2", "x", "c2_staff", Img(C, 1)), {"action_type": "merge"},
        error=216100, doc="v2:参数包含append、replace"),
    Row("v2-add-user-8mb-image", "v2", "addUser", ("big2", "x", "c2_big", Img(C, 1, grow_mb=6)), None, only=LOG_ONLY,
        doc="v2:图片编码后大小不超过10M"),
    Row("v2-add-user-no-face", "v2", "addUser", ("nf2", "x", "c2_staff", NO_FACE), None, error=216402,
        doc="v2:216402 face not found"),
    Row("v2-update-user", "v2", "updateUser", ("upd2", "Updated", "c2_upd", Img(C, 3)), None, only=LOG_ONLY,
        doc="v2:log_id uint64", setup=(("addUser", ("upd2", "U", "c2_upd", Img(C, 2)), None),)),
    Row("v2-update-user-replace-new", "v2", "updateUser", ("updnew2", "New", "c2_upd", Img(C, 3)),
        {"action_type": "replace"}, only=LOG_ONLY, doc="v2:目前仅支持replace", choice="v2-update-user"),
    Row("v2-update-user-missing", "v2", "updateUser", ("ghost2", "x", "c2_staff", Img(C, 1)), None, error=216611,
        doc="v2:\"error_code\": 216612", choice="user-not-exist"),
    Row("v2-update-user-bad-action", "v2", "updateUser", ("paul", "x", "c2_staff", Img(A, 3)),
        {"action_type": "append"}, error=216100, doc="v2:目前仅支持replace"),
    Row("v2-delete-user", "v2", "deleteUser", ("del2",), None, only=LOG_ONLY, doc="v2:log_id uint64",
        setup=(("addUser", ("del2", "D", "c2_del", Img(C, 2)), None),)),
    Row("v2-delete-user-in-group", "v2", "deleteUser", ("delg2",), {"group_id": "c2_delg"}, only=LOG_ONLY,
        doc="v2:group_id string", setup=(("addUser", ("delg2", "D", "c2_delg,c2_delg_b", Img(C, 2)), None),)),
    Row("v2-delete-user-missing", "v2", "deleteUser", ("ghost2",), None, error=216611,
        doc="v2:\"error_code\": 216612", choice="user-not-exist"),
    Row("v2-get-user", "v2", "getUser", ("paul",), None,
        {"result_num": F(INT, 1, 1), "result[].uid": F(STR), "result[].user_info": F(STR),
         "result[].groups": F(LIST, length=2), "result[].groups[]": F(STR)},
        doc="v2:+groups array(string)", choice="v2-get-user"),
    Row("v2-get-user-in-group", "v2", "getUser", ("paul",), {"group_id": "c2_all"},
        {"result[].groups": F(LIST, length=1)}, doc="v2:group_id string"),
    Row("v2-get-user-missing", "v2", "getUser", ("ghost2",), None, error=216611,
        doc="v2:216611 user not exist", choice="user-not-exist"),
    Row("v2-get-group-list", "v2", "getGroupList", (), {"start": 0, "num": 1000},
        {"result_num": F(INT, 2), "result[]": F(STR)}, doc="v2:result_num number"),
    Row("v2-get-group-list-num-1001", "v2", "getGroupList", (), {"num": 1001}, error=216100,
        doc="v2:最大值1000"),
    Row("v2-get-group-list-start-negative", "v2", "getGroupList", (), {"start": -1}, error=216100,
        doc="v2:start string 0"),
    Row("v2-get-group-users", "v2", "getGroupUsers", ("c2_staff",), {"start": 0, "num": 50},
        {"result_num": F(INT, 2, 2), "result[].uid": F(STR), "result[].user_info": F(STR)},
        doc="v2:+uid string"),
    Row("v2-get-group-users-missing", "v2", "getGroupUsers", ("c2_nobody",), None, error=216618,
        doc="v2:216618 no user in group", choice="v2-get-group-users"),
    Row("v2-get-group-users-num-0", "v2", "getGroupUsers", ("c2_staff",), {"num": 0}, error=216100,
        doc="v2:num string 100"),
    Row("v2-add-group-user", "v2", "addGroupUser", ("c2_staff", "c2_copy,c2_copy_b", "jlo"), None, only=LOG_ONLY,
        doc="v2:log_id uint64"),
    Row("v2-add-group-user-again", "v2", "addGroupUser", ("c2_staff", "c2_all", "paul"), None, error=216100,
        doc="v2:\"error_msg\": \"already add\"", choice="error-msg"),
    Row("v2-add-group-user-missing", "v2", "addGroupUser", ("c2_staff", "c2_copy", "ghost2"), None, error=216611,
        doc="v2:216611 user not exist", choice="user-not-exist"),
    Row("v2-delete-group-user", "v2", "deleteGroupUser", ("c2_dg", "dg2"), None, only=LOG_ONLY,
        doc="v2:log_id uint64", setup=(("addUser", ("dg2", "D", "c2_dg,c2_dg_b", Img(C, 2)), None),)),
    Row("v2-delete-group-user-last-group", "v2", "deleteGroupUser", ("c2_last", "last2"), None, error=216619,
        doc="v2:\"error_code\": 216619", choice="error-msg",
        setup=(("addUser", ("last2", "L", "c2_last", Img(C, 2)), None),)),
    Row("v2-person-verify", "v2", "personVerify", (Img(A, 2), "110233112299822211", "Ann"),
        {"quality": "use", "quality_conf": '{"left_eye": 0.6}', "faceliveness": "use",
         "faceliveness_conf": '{"faceliveness": 0.834963}', "ext_fields": "qualities"}, error=216102,
        doc="v2:216102 service not support", choice="person-verify"),

    # ==== v3 detect (v3ref 人脸检测) ==========================================================
    Row("v3-detect-default", "v3", "detect", (Img(A, 2), "BASE64"), None, V3_FACE_BASE,
        doc="v3ref:人脸检测 location left double, rotation int64"),
    Row("v3-detect-every-field", "v3", "detect", (Img(A, 2), "BASE64"),
        {"face_field": ALL3, "face_type": "LIVE", "face_sort_type": 1}, V3_ALL,
        doc="v3ref:人脸检测 quality.completeness int64", choice="completeness"),
    Row("v3-detect-landmark72", "v3", "detect", (Img(A, 2), "BASE64"), {"face_field": "landmark72"},
        {"result.face_list[].landmark72": F(LIST, length=72)}, doc="v3ref:人脸检测 landmark72 array"),
    Row("v3-detect-liveness-field", "v3", "detect", (Img(A, 2), "BASE64"), {"face_field": "liveness"},
        {"result.face_list[].liveness.livemapscore": F(NUM, 0, 1)},
        doc="v3ref:人脸检测 liveness.livemapscore double"),
    Row("v3-detect-two-faces", "v3", "detect", (TWO, "BASE64"), {"max_face_num": 2},
        {**V3_FACE_BASE, "result.face_num": F(INT, 2, 2)}, doc="v3ref:人脸检测 max_face_num 最大值10"),
    Row("v3-detect-liveness-control", "v3", "detect", (Img(A, 2), "BASE64"), {"liveness_control": "NONE"},
        V3_FACE_BASE, doc="v3ref:人脸检测 liveness_control"),
    Row("v3-detect-glasses", "v3", "detect", (Img(A, 2), "BASE64"), {"face_field": "glasses"},
        {"result.face_list[].glasses.type": F(STR, one_of=("none", "common", "sun")),
         "result.face_list[].glasses.probability": F(NUM, 0, 1)}, doc="v3ref:人脸检测 glasses.type",
        choice="glasses"),
    Row("v3-detect-beauty", "v3", "detect", (Img(A, 2), "BASE64"), {"face_field": "beauty"},
        {"result.face_list[].beauty": F(NULL)}, doc="v3ref:人脸检测 beauty double 0-100",
        choice="fields-not-measured"),
    Row("v3-detect-face-type", "v3", "detect", (Img(A, 2), "BASE64"), {"face_field": "face_type"},
        {"result.face_list[].face_type.type": F(STR, one_of=("human", "cartoon")),
         "result.face_list[].face_type.probability": F(NUM, 0, 1)}, doc="v3ref:人脸检测 face_type.type",
        choice="face-type"),
    Row("v3-detect-rotated-30", "v3", "detect", (Img(C, 2, rotate=30), "BASE64"), None,
        {"result.face_list[].location.rotation": F(INT, 20, 40), "result.face_list[].angle.roll": F(NUM, 20, 40)},
        doc="v3ref:人脸检测 location.rotation int64"),
    Row("v3-detect-rotated-90", "v3", "detect", (Img(C, 2, rotate=90), "BASE64"), None,
        {"result.face_list[].location.rotation": F(INT, 70, 110)}, doc="v3ref:人脸检测 location.rotation int64",
        ),
    Row("v3-detect-liveness-high-replay", "v3", "detect", (REPLAY, "BASE64"), {"liveness_control": "HIGH"},
        error=223120, doc="v3:223120 liveness check fail"),
    Row("v3-detect-max-face-num-11", "v3", "detect", (Img(A, 2), "BASE64"), {"max_face_num": 11}, error=222016,
        doc="v3ref:人脸检测 max_face_num 最大值10", choice="v3-codes"),
    Row("v3-detect-bad-face-field", "v3", "detect", (Img(A, 2), "BASE64"), {"face_field": "age,hair"},
        error=222017, doc="v3ref:错误码 222017 param[face_field] format error", choice="v3-codes"),
    Row("v3-detect-bad-face-type", "v3", "detect", (Img(A, 2), "BASE64"), {"face_type": "SELFIE"}, error=222024,
        doc="v3ref:错误码 222024 param[face_type] format error", choice="v3-codes"),
    Row("v3-detect-bad-liveness", "v3", "detect", (Img(A, 2), "BASE64"), {"liveness_control": "MAX"}, error=222020,
        doc="v3:222020 param[liveness_control] format error"),
    Row("v3-detect-bad-sort", "v3", "detect", (Img(A, 2), "BASE64"), {"face_sort_type": 2}, error=222039,
        doc="v3:222039 param[face_sort_type] format error"),
    Row("v3-detect-bad-image-type", "v3", "detect", (Img(A, 2), "FILE"), None, error=222015,
        doc="v3:222015 param[image_type] format error"),
    Row("v3-detect-url", "v3", "detect", ("http://example.com/a.jpg", "URL"), None, error=222204,
        doc="v3:222204 image download fail", choice="image-url"),
    Row("v3-detect-face-token", "v3", "detect", (SeedToken(), "FACE_TOKEN"), None, error=222015,
        doc="v3:FACE_TOKEN: 人脸图片的唯一标识", choice="face-token"),
    Row("v3-detect-no-face", "v3", "detect", (NO_FACE, "BASE64"), None, error=222202,
        doc="v3:222202 pic not has face"),
    Row("v3-detect-empty-image", "v3", "detect", (EMPTY, "BASE64"), None, error=222001,
        doc="v3ref:错误码 222001 param[] is null", choice="v3-codes"),
    Row("v3-detect-gif", "v3", "detect", (GIF, "BASE64"), None, error=(222013, 222203),
        doc="v3:现支持PNG、JPG、JPEG、BMP,不支持GIF图片"),
    Row("v3-detect-garbage", "v3", "detect", (GARBAGE, "BASE64"), None, error=(222013, 222203),
        doc="v3:222203 image check fail"),
    Row("v3-detect-too-small", "v3", "detect", (Img(A, 2, size=(12, 12)), "BASE64"), None, error=(222013, 222203),
        doc="v3:222203 image check fail"),
    Row("v3-detect-too-wide", "v3", "detect", (Img(A, 2, size=(6100, 200)), "BASE64"), None, error=222304,
        doc="v3:222304 image size is too large"),
    # ==== v3 search (the search doc) =======================================================
    Row("v3-search", "v3", "search", (Img(A, 2), "BASE64", "c3_staff"),
        {"max_user_num": 2, "match_threshold": 0, "face_sort_type": 1, "quality_control": "LOW",
         "liveness_control": "NONE", "spoofing_control": "NONE"},
        {"result.face_token": TOKEN, **V3_USERS, "result.user_list": F(LIST, length=2)},
        doc="v3:+score float"),
    Row("v3-search-face-token", "v3", "search", (SeedToken(), "FACE_TOKEN", "c3_staff"), None,
        {"result.face_token": TOKEN, **V3_USERS}, doc="v3:FACE_TOKEN: 人脸图片的唯一标识"),
    Row("v3-search-user-id", "v3", "search", (Img(A, 2), "BASE64", "c3_staff"), {"user_id": "paul"},
        {**V3_USERS, "result.user_list": F(LIST, length=1)}, doc="v3:user_id string"),
    Row("v3-search-two-groups", "v3", "search", (Img(A, 2), "BASE64", "c3_staff,c3_empty"), None, V3_USERS,
        doc="v3:group_id_list string"),
    Row("v3-search-spoofing-low", "v3", "search", (Img(A, 2), "BASE64", "c3_staff"), {"spoofing_control": "LOW"},
        error=216102, doc="v3:spoofing_control string", choice="spoofing-control"),
    Row("v3-search-spoofing-high", "v3", "search", (Img(A, 2), "BASE64", "c3_staff"), {"spoofing_control": "HIGH"},
        error=216102, doc="v3:spoofing_control string", choice="spoofing-control"),
    Row("v3-search-spoofing-bad", "v3", "search", (Img(A, 2), "BASE64", "c3_staff"), {"spoofing_control": "MAX"},
        error=222026, doc="v3:spoofing_control string", choice="v3-codes"),
    Row("v3-search-no-match", "v3", "search", (Img(C, 2), "BASE64", "c3_staff"), {"match_threshold": 80},
        error=222207, doc="v3:222207 match user is not found"),
    Row("v3-search-bad-group", "v3", "search", (Img(A, 2), "BASE64", "c3-staff"), None, error=222013,
        doc="v3:222013 param[group_id_list] format error", choice="group-id-list"),
    Row("v3-search-eleven-groups", "v3", "search", (Img(A, 2), "BASE64", ",".join(f"g{i}" for i in range(11))),
        None, error=222013, doc="v3:上限10个", choice="group-id-list"),
    Row("v3-search-group-49-in-list", "v3", "search", (Img(A, 2), "BASE64", "c3_staff," + "g" * 49), None,
        error=222013, doc="v3:222013 param[group_id_list] format error", choice="group-id-list"),
    Row("v3-search-liveness-high-replay", "v3", "search", (REPLAY, "BASE64", "c3_staff"), {"liveness_control": "HIGH"},
        error=223120, doc="v3:223120 liveness check fail"),
    Row("v3-search-bad-quality", "v3", "search", (Img(A, 2), "BASE64", "c3_staff"), {"quality_control": "BEST"},
        error=222019, doc="v3:222019 param[quality_control] format error"),
    Row("v3-search-bad-liveness", "v3", "search", (Img(A, 2), "BASE64", "c3_staff"), {"liveness_control": "BEST"},
        error=222020, doc="v3:222020 param[liveness_control] format error"),
    Row("v3-search-max-user-51", "v3", "search", (Img(A, 2), "BASE64", "c3_staff"), {"max_user_num": 51},
        error=222021, doc="v3:222021 param[max_user_num] format error"),
    Row("v3-search-threshold-101", "v3", "search", (Img(A, 2), "BASE64", "c3_staff"), {"match_threshold": 101},
        error=222030, doc="v3:222030 param[match_threshold] format error"),
    Row("v3-search-bad-sort", "v3", "search", (Img(A, 2), "BASE64", "c3_staff"), {"face_sort_type": 3},
        error=222039, doc="v3:222039 param[face_sort_type] format error"),
    Row("v3-search-bad-user-id", "v3", "search", (Img(A, 2), "BASE64", "c3_staff"), {"user_id": "a b"},
        error=222018, doc="v3:222018 param[user_id] format error"),
    Row("v3-search-bad-image-type", "v3", "search", (Img(A, 2), "PNG", "c3_staff"), None, error=222015,
        doc="v3:222015 param[image_type] format error"),
    Row("v3-search-unknown-token", "v3", "search", ("0" * 32, "FACE_TOKEN", "c3_staff"), None, error=222209,
        doc="v3:222209 face token not exist"),
    Row("v3-search-bad-token", "v3", "search", ("not-a-token", "FACE_TOKEN", "c3_staff"), None, error=222013,
        doc="v3:222013 param[image] format error"),
    Row("v3-search-no-face", "v3", "search", (NO_FACE, "BASE64", "c3_staff"), None, error=222202,
        doc="v3:222202 pic not has face"),
    Row("v3-search-fuzzy", "v3", "search", (Img(A, 2, blur=5), "BASE64", "c3_staff"), {"quality_control": "NORMAL"},
        error=223114, doc="v3:223114 face is fuzzy", choice="quality-order"),
    Row("v3-search-garbage", "v3", "search", (GARBAGE, "BASE64", "c3_staff"), None, error=(222013, 222203),
        doc="v3:222203 image check fail"),
    Row("v3-search-oversize", "v3", "search", (Img(A, 2, grow_mb=2.5), "BASE64", "c3_staff"), None,
        error=(222013, 222203, 222304), doc="v3:编码后图片大小不超过2M"),
    # ==== v3 multiSearch (v3ref M:N 搜索) =====================================================
    Row("v3-multi-search", "v3", "multiSearch", (TWO, "BASE64", "c3_staff"),
        {"max_face_num": 2, "max_user_num": 2, "match_threshold": 0, "quality_control": "NONE",
         "liveness_control": "NONE", "spoofing_control": "NONE"},
        {"result.face_num": F(INT, 2, 2), "result.face_list[].face_token": TOKEN,
         **{f"result.face_list[].location.{k}": s for k, s in V3_LOCATION.items()},
         "result.face_list[].user_list": F(LIST, length=2),
         **{k.replace("result.", "result.face_list[]."): v for k, v in V3_USERS.items()}},
        doc="v3ref:M:N 搜索 face_list location", choice="v3-multi-search"),
    Row("v3-multi-search-max-11", "v3", "multiSearch", (TWO, "BASE64", "c3_staff"), {"max_face_num": 11},
        error=222016, doc="v3ref:M:N 搜索 max_face_num 最大10", choice="v3-codes"),
    Row("v3-multi-search-no-match", "v3", "multiSearch", (TWO, "BASE64", "c3_empty"), None, error=222207,
        doc="v3:222207 match user is not found", choice="v3-multi-search"),
    # ==== v3 match / faceverify (v3ref 人脸对比, 在线活体检测) =================================
    Row("v3-match", "v3", "match", ([{"image": Img(A, 2), "image_type": "BASE64", "face_type": "LIVE",
                                      "quality_control": "LOW", "liveness_control": "NONE"},
                                     {"image": Img(A, 3), "image_type": "BASE64"}],), None,
        {"result.score": F(NUM, 0, 100), "result.face_list": F(LIST, length=2), "result.face_list[].face_token": TOKEN},
        doc="v3ref:人脸对比 score double"),
    Row("v3-match-face-token", "v3", "match", ([{"image": SeedToken(), "image_type": "FACE_TOKEN"},
                                                {"image": Img(A, 3), "image_type": "BASE64"}],), None,
        {"result.score": F(NUM, 80, 100)}, doc="v3:FACE_TOKEN: 人脸图片的唯一标识", choice="face-token"),
    Row("v3-match-one-image", "v3", "match", ([{"image": Img(A, 2), "image_type": "BASE64"}],), None,
        error=222208, doc="v3ref:错误码 222208 the number of image is incorrect", choice="v3-codes"),
    Row("v3-match-bad-face-type", "v3", "match", ([{"image": Img(A, 2), "image_type": "BASE64", "face_type": "X"},
                                                   {"image": Img(A, 3), "image_type": "BASE64"}],), None,
        error=222024, doc="v3ref:错误码 222024 param[face_type] format error", choice="v3-codes"),
    Row("v3-faceverify", "v3", "faceverify",
        ([{"image": Img(A, 2), "image_type": "BASE64", "face_field": "age,quality"}],),
        None, {"result.face_liveness": F(NUM, 0, 1), "result.thresholds.frr_1e-4": F(NUM, 0, 1),
               "result.thresholds.frr_1e-3": F(NUM, 0, 1), "result.thresholds.frr_1e-2": F(NUM, 0, 1),
               "result.face_list[].face_token": TOKEN, "result.face_list[].liveness.livemapscore": F(NUM, 0, 1),
               "result.face_list[].age": F(NUM, 0, 120), "result.face_list[].quality.blur": F(NUM, 0, 1),
               "result.face_list[].location.rotation": F(INT, -180, 180)},
        doc="v3ref:在线活体检测 face_liveness double", choice="v3-faceverify"),
    Row("v3-faceverify-bad-field", "v3", "faceverify", ([{"image": Img(A, 2), "image_type": "BASE64",
                                                          "face_field": "hair"}],), None, error=222017,
        doc="v3ref:错误码 222017 param[face_field] format error", choice="v3-codes"),
    # ==== v3 library (v3ref 人脸库管理) ============================================================
    Row("v3-add-user", "v3", "addUser", (Img(C, 1), "BASE64", "c3_add", "add3"),
        {"user_info": "Add Three", "quality_control": "LOW", "liveness_control": "NONE", "action_type": "APPEND",
         "face_sort_type": 0},
        V3_ADDED, doc="v3ref:人脸注册 location rotation int64", choice="v3-add-update"),
    Row("v3-add-user-face-token", "v3", "addUser", (SeedToken(), "FACE_TOKEN", "c3_tok", "tok3"), None,
        {"result.face_token": TOKEN}, doc="v3ref:人脸注册 image_type FACE_TOKEN", choice="face-token"),
    Row("v3-add-user-existing", "v3", "addUser", (Img(A, 1), "BASE64", "c3_staff", "paul"), None, error=223105,
        doc="v3ref:错误码 223105 face is already exist", choice="v3-codes"),
    Row("v3-add-user-bad-user", "v3", "addUser", (Img(C, 1), "BASE64", "c3_staff", "a-b"), None, error=222018,
        doc="v3:222018 param[user_id] format error"),
    Row("v3-add-user-user-id-129", "v3", "addUser", (Img(C, 1), "BASE64", "c3_staff", "u" * 129), None,
        error=222018, doc="v3:222018 param[user_id] format error"),
    Row("v3-add-user-bad-group", "v3", "addUser", (Img(C, 1), "BASE64", "c3 staff", "u3"), None, error=222006,
        doc="v3ref:错误码 222006 param[group_id] format error", choice="v3-codes"),
    Row("v3-add-user-long-info", "v3", "addUser", (Img(C, 1), "BASE64", "c3_staff", "u3"), {"user_info": "x" * 257},
        error=222010, doc="v3ref:错误码 222010 param[user_info] format error", choice="v3-codes"),
    Row("v3-add-user-bad-action", "v3", "addUser", (Img(C, 1), "BASE64", "c3_staff", "u3"), {"action_type": "UPDATE"},
        error=222025, doc="v3ref:错误码 222025 param[action_type] format error", choice="v3-add-update"),
    Row("v3-add-user-spoofing-normal", "v3", "addUser", (Img(C, 1), "BASE64", "c3_staff", "u3"),
        {"spoofing_control": "NORMAL"}, error=216102, doc="v3:spoofing_control string", choice="spoofing-control"),
    Row("v3-update-user", "v3", "updateUser", (Img(C, 3), "BASE64", "c3_upd", "upd3"),
        {"user_info": "U3", "quality_control": "LOW", "liveness_control": "NONE", "spoofing_control": "NONE",
         "face_sort_type": 0},
        V3_ADDED, doc="v3ref:人脸更新 face_token, location",
        setup=(("addUser", (Img(C, 2), "BASE64", "c3_upd", "upd3"), None),)),
    Row("v3-update-user-replace-new", "v3", "updateUser", (Img(C, 3), "BASE64", "c3_upd", "updnew3"),
        {"action_type": "REPLACE"}, V3_ADDED, doc="v3ref:人脸更新 action_type REPLACE", choice="v3-add-update"),
    Row("v3-update-user-missing", "v3", "updateUser", (Img(C, 3), "BASE64", "c3_staff", "ghost3"), None,
        error=223103, doc="v3ref:错误码 223103 user is not exist", choice="v3-codes"),
    Row("v3-update-user-bad-action", "v3", "updateUser", (Img(C, 3), "BASE64", "c3_staff", "paul"),
        {"action_type": "APPEND"}, error=222025, doc="v3ref:人脸更新 action_type", choice="v3-add-update"),
    Row("v3-face-delete", "v3", "faceDelete", ("fd3", "c3_fd", SetupToken()), None, V3_NULL,
        doc="v3ref:人脸删除 返回 result null", setup=(("addUser", (Img(C, 2), "BASE64", "c3_fd", "fd3"), None),)),
    Row("v3-face-delete-bad-token", "v3", "faceDelete", ("paul", "c3_staff", "xyz"), None, error=222023,
        doc="v3ref:错误码 222023 param[face_token] format error", choice="v3-codes"),
    Row("v3-face-delete-unknown-token", "v3", "faceDelete", ("paul", "c3_staff", "f" * 32), None, error=223106,
        doc="v3ref:错误码 223106 face is not exist", choice="v3-codes"),
    Row("v3-face-delete-unknown-group", "v3", "faceDelete", ("paul", "c3_nobody", "f" * 32), None, error=223100,
        doc="v3ref:错误码 223100 group is not exist", choice="v3-codes"),
    Row("v3-get-user", "v3", "getUser", ("paul", "c3_staff"), None,
        {"result.user_list": F(LIST, length=1), "result.user_list[].user_info": F(STR),
         "result.user_list[].group_id": F(STR)}, doc="v3ref:用户信息查询 user_list"),
    Row("v3-get-user-all-groups", "v3", "getUser", ("paul", "@ALL"), None, {"result.user_list[].group_id": F(STR)},
        doc="v3ref:用户信息查询 group_id @ALL", choice="v3-get-user"),
    Row("v3-get-user-missing", "v3", "getUser", ("ghost3", "c3_staff"), None, error=223103,
        doc="v3ref:错误码 223103 user is not exist", choice="v3-codes"),
    Row("v3-get-user-bad-id", "v3", "getUser", ("a b", "c3_staff"), None, error=222018,
        doc="v3:222018 param[user_id] format error"),
    Row("v3-face-getlist", "v3", "faceGetlist", ("paul", "c3_staff"), None,
        {"result.face_list": F(LIST, length=1), "result.face_list[].face_token": TOKEN,
         "result.face_list[].ctime": F(STR, length=19)}, doc="v3ref:获取用户人脸列表 ctime string"),
    Row("v3-face-getlist-missing", "v3", "faceGetlist", ("ghost3", "c3_staff"), None, error=223103,
        doc="v3ref:错误码 223103 user is not exist", choice="v3-codes"),
    Row("v3-get-group-users", "v3", "getGroupUsers", ("c3_staff",), {"start": 0, "length": 100},
        {"result.user_id_list": F(LIST), "result.user_id_list[]": F(STR)}, doc="v3ref:获取用户列表 user_id_list"),
    Row("v3-get-group-users-missing", "v3", "getGroupUsers", ("c3_nobody",), None, error=223100,
        doc="v3ref:错误码 223100 group is not exist", choice="v3-codes"),
    Row("v3-get-group-users-length-1001", "v3", "getGroupUsers", ("c3_staff",), {"length": 1001}, error=222003,
        doc="v3ref:错误码 222003 param[length] format error", choice="v3-codes"),
    Row("v3-get-group-users-start-negative", "v3", "getGroupUsers", ("c3_staff",), {"start": -1}, error=222002,
        doc="v3ref:错误码 222002 param[start] format error", choice="v3-codes"),
    Row("v3-user-copy", "v3", "userCopy", ("jlo",), {"src_group_id": "c3_staff", "dst_group_id": "c3_copy"}, V3_NULL,
        doc="v3ref:复制用户 result null", choice="v3-user-copy", setup=(("groupAdd", ("c3_copy",), None),)),
    Row("v3-user-copy-missing-dst", "v3", "userCopy", ("jlo",), {"src_group_id": "c3_staff"}, error=222001,
        doc="v3ref:错误码 222001 param[] is null", choice="v3-codes"),
    Row("v3-user-copy-unknown-dst", "v3", "userCopy", ("jlo",), {"src_group_id": "c3_staff", "dst_group_id": "c3_no"},
        error=223100, doc="v3ref:错误码 223100 group is not exist", choice="v3-user-copy"),
    Row("v3-user-copy-missing-user", "v3", "userCopy", ("ghost3",),
        {"src_group_id": "c3_staff", "dst_group_id": "c3_empty"}, error=223103,
        doc="v3ref:错误码 223103 user is not exist", choice="v3-codes"),
    Row("v3-delete-user", "v3", "deleteUser", ("c3_del", "del3"), None, V3_NULL, doc="v3ref:删除用户 result null",
        setup=(("addUser", (Img(C, 2), "BASE64", "c3_del", "del3"), None),)),
    Row("v3-delete-user-missing", "v3", "deleteUser", ("c3_staff", "ghost3"), None, error=223103,
        doc="v3ref:错误码 223103 user is not exist", choice="v3-codes"),
    Row("v3-group-add", "v3", "groupAdd", ("c3_new",), None, V3_NULL, doc="v3ref:创建用户组 result null"),
    Row("v3-group-add-existing", "v3", "groupAdd", ("c3_staff",), None, error=223101,
        doc="v3ref:错误码 223101 group is already exist", choice="v3-codes"),
    Row("v3-group-add-bad-id", "v3", "groupAdd", ("c3-x",), None, error=222006,
        doc="v3ref:错误码 222006 param[group_id] format error", choice="v3-codes"),
    Row("v3-group-delete", "v3", "groupDelete", ("c3_gone",), None, V3_NULL, doc="v3ref:删除用户组 result null",
        setup=(("groupAdd", ("c3_gone",), None),)),
    Row("v3-group-delete-missing", "v3", "groupDelete", ("c3_nobody",), None, error=223100,
        doc="v3ref:错误码 223100 group is not exist", choice="v3-codes"),
    Row("v3-get-group-list", "v3", "getGroupList", (), {"start": 0, "length": 1000},
        {"result.group_id_list": F(LIST), "result.group_id_list[]": F(STR)}, doc="v3ref:组列表查询 group_id_list"),
    Row("v3-get-group-list-length-0", "v3", "getGroupList", (), {"length": 0}, error=222003,
        doc="v3ref:错误码 222003 param[length] format error", choice="v3-codes"),
    Row("v3-person-verify", "v3", "personVerify", (Img(A, 2), "BASE64", "110233112299822211", "Ann"),
        {"quality_control": "LOW", "liveness_control": "NONE", "spoofing_control": "NONE"}, error=216102,
        doc="v2:216102 service not support", choice="person-verify"),
    # the SDK's other methods (v1/v4 paths, video liveness): not offered here
    Row("v3-video-sessioncode", "v3", "videoSessioncode", (), None, error=3,
        doc="v3ref:错误码 3 Unsupported openapi method"),
    Row("v3-landmark-v1", "v3", "faceLandmarkV1", (Img(A, 2), "BASE64"), None, error=3,
        doc="v3ref:错误码 3 Unsupported openapi method"),
    Row("v3-idmatch", "v3", "facePersonIdmatchV3", ("110233112299822211", "Ann"), None, error=3,
        doc="v3ref:错误码 3 Unsupported openapi method"),

    # ==== malformed HTTP (raw bytes; the answer must still be a Baidu error body) ==========
    Row("http-bad-content-length", "http", "v3/detect",
        (b"POST /rest/2.0/face/v3/detect?access_token={token} HTTP/1.1\r\nHost: x\r\n"
         b"Content-Type: application/json\r\nContent-Length: abc\r\n\r\n{}",),
        error=100, doc="v3:100 Invalid parameter", choice="malformed-http"),
    Row("http-v2-bad-content-length", "http", "v2/detect",
        (b"POST /rest/2.0/face/v2/detect?access_token={token} HTTP/1.1\r\nHost: x\r\n"
         b"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 1x\r\n\r\nimage=",),
        error=100, doc="v2:100 Invalid parameter", choice="malformed-http"),
    Row("http-header-too-long", "http", "v3/detect",
        (b"POST /rest/2.0/face/v3/detect?access_token={token} HTTP/1.1\r\nHost: x\r\nX-Pad: " + b"a" * 20000 +
         b"\r\nContent-Length: 2\r\n\r\n{}",),
        error=100, doc="v3:100 Invalid parameter", choice="malformed-http"),
    Row("http-bad-chunked", "http", "v3/detect",
        (b"POST /rest/2.0/face/v3/detect?access_token={token} HTTP/1.1\r\nHost: x\r\n"
         b"Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n",),
        error=100, doc="v3:100 Invalid parameter", choice="malformed-http"),
)
