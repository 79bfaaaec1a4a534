"""edge.aip.v3.AipFace: v3 envelope, search controls, FACE_TOKEN, library calls."""
from __future__ import annotations

import base64
import itertools

import cv2
import numpy as np
import pytest

from conftest import MULTIFACE
from edge.aip.v3 import AipFace
from test_aip_v2 import A, B, C, photo

_apps = itertools.count()


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def jpeg(img: np.ndarray) -> str:
    return b64(cv2.imencode(".jpg", img)[1].tobytes())


def pixels(name: str, i: int, scale: float = 2.0) -> np.ndarray:
    img = cv2.imdecode(np.frombuffer(photo(name, i), np.uint8), cv2.IMREAD_COLOR)
    return cv2.resize(img, None, fx=scale, fy=scale)


@pytest.fixture
def client(edge_config):
    return AipFace(f"v3app{next(_apps)}", "key", "secret", config=edge_config)


def ok(resp: dict):
    assert resp["error_code"] == 0 and resp["error_msg"] == "SUCCESS", resp
    assert isinstance(resp["log_id"], int) and isinstance(resp["timestamp"], int) and resp["cached"] == 0
    return resp["result"]


def code(resp: dict) -> int:
    assert resp["result"] is None and isinstance(resp["log_id"], int), resp
    return resp["error_code"]


@pytest.fixture
def staff(client):
    """A library with Paul and Jennifer in group staff, Ricardo in group visitors."""
    ok(client.addUser(b64(photo(A, 1)), "BASE64", "staff", "paul", {"user_info": "Paul"}))
    ok(client.addUser(b64(photo(B, 1)), "BASE64", "staff", "jlo", {"user_info": "Jennifer"}))
    ok(client.addUser(b64(photo(C, 1)), "BASE64", "visitors", "ricardo", {"user_info": "Ricardo"}))
    return client


def test_detect_fields_and_stable_face_token(client):
    img = b64(photo(A, 2))
    out = ok(client.detect(img, "BASE64", {"face_field": "age,gender,expression,face_shape,landmark,quality"}))
    assert out["face_num"] == 1
    face = out["face_list"][0]
    assert set(face["location"]) == {"left", "top", "width", "height", "rotation"}
    assert set(face["angle"]) == {"yaw", "pitch", "roll"}
    assert face["gender"]["type"] == "male" and isinstance(face["age"], int)
    assert face["expression"]["type"] in ("none", "smile", "laugh")
    assert len(face["landmark"]) == 4 and len(face["landmark72"]) == 72
    q = face["quality"]
    assert set(q["occlusion"]) == {"left_eye", "right_eye", "nose", "mouth", "left_cheek", "right_cheek",
                                   "chin_contour"}
    assert q["completeness"] in (0, 1) and 0 <= q["blur"] <= 1 and 0 <= q["illumination"] <= 255
    again = ok(client.detect(img, "BASE64"))["face_list"][0]["face_token"]
    assert again == face["face_token"] and len(again) == 32            # same image, same token
    assert ok(client.detect(b64(photo(A, 3)), "BASE64"))["face_list"][0]["face_token"] != again
    assert code(client.detect(img, "BASE64", {"face_field": "age,wings"})) == 222017
    assert code(client.detect(img, "BASE64", {"max_face_num": 11})) == 222016
    assert code(client.detect(img, "URL")) == 222204
    assert code(client.detect(img, "PNG")) == 222015
    noface = b64((MULTIFACE / "inspireface_view_noface.jpg").read_bytes())
    assert code(client.detect(noface, "BASE64")) == 222202


def test_search_finds_the_person_and_honours_options(staff):
    hit = ok(staff.search(b64(photo(A, 2)), "BASE64", "staff"))
    assert len(hit["face_token"]) == 32
    assert [(u["group_id"], u["user_id"], u["user_info"]) for u in hit["user_list"]] == [("staff", "paul", "Paul")]
    assert hit["user_list"][0]["score"] >= 80
    many = ok(staff.search(b64(photo(A, 2)), "BASE64", "staff,visitors", {"max_user_num": 3}))["user_list"]
    assert [u["user_id"] for u in many][0] == "paul" and len(many) == 3
    assert all(u["score"] < 80 for u in many[1:])
    only = ok(staff.search(b64(photo(A, 2)), "BASE64", "staff,visitors",
                           {"max_user_num": 3, "match_threshold": 80}))["user_list"]
    assert [u["user_id"] for u in only] == ["paul"]
    # a stranger: nothing above the threshold
    assert code(staff.search(b64(photo(C, 2)), "BASE64", "staff", {"match_threshold": 80})) == 222207
    # user_id: 1:1 inside search
    mine = ok(staff.search(b64(photo(A, 2)), "BASE64", "staff", {"user_id": "jlo"}))["user_list"]
    assert [u["user_id"] for u in mine] == ["jlo"] and mine[0]["score"] < 80
    assert code(staff.search(b64(photo(A, 2)), "BASE64", "staff", {"user_id": "ricardo"})) == 222207


@pytest.mark.parametrize("options, expected", [
    ({"max_user_num": 51}, 222021), ({"max_user_num": 0}, 222021), ({"match_threshold": 101}, 222030),
    ({"match_threshold": -1}, 222030), ({"face_sort_type": 2}, 222039), ({"quality_control": "BEST"}, 222019),
    ({"liveness_control": "MAX"}, 222020), ({"user_id": "no-dash"}, 222018),
])
def test_search_option_errors(client, options, expected):
    assert code(client.search(b64(photo(A, 2)), "BASE64", "staff", options)) == expected


def test_search_group_list_limits(staff):
    img = b64(photo(A, 2))
    assert code(staff.search(img, "BASE64", ",".join(f"g{i}" for i in range(11)))) == 222013
    assert ok(staff.search(img, "BASE64", ",".join(["staff"] + [f"g{i}" for i in range(9)])))
    assert code(staff.search(img, "BASE64", "bad group")) == 222013
    assert code(staff.search(img, "BASE64", "nogroup")) == 222207


def test_face_sort_type_picks_the_face(staff):
    # Paul large at the left edge, Jennifer small in the centre
    canvas = np.full((400, 900, 3), 128, np.uint8)
    canvas[0:400, 0:400] = cv2.resize(pixels(A, 2, 1), (400, 400))
    canvas[125:275, 375:525] = cv2.resize(pixels(B, 2, 1), (150, 150))
    img = jpeg(canvas)
    assert ok(staff.search(img, "BASE64", "staff"))["user_list"][0]["user_id"] == "paul"
    assert ok(staff.search(img, "BASE64", "staff", {"face_sort_type": 1}))["user_list"][0]["user_id"] == "jlo"


@pytest.mark.parametrize("name, make, level, expected", [
    ("dark", lambda im: (im * 0.12).astype(np.uint8), "LOW", 223115),
    ("blurred", lambda im: cv2.GaussianBlur(im, (0, 0), 5), "NORMAL", 223114),
    ("covered eyes", lambda im: cv2.rectangle(im.copy(), (60, 120), (240, 170), (0, 0, 0), -1), "LOW", 223121),
    ("cut off", lambda im: np.ascontiguousarray(im[:, 140:]), "HIGH", 223116),
    ("tilted", lambda im: cv2.warpAffine(im, cv2.getRotationMatrix2D((150, 150), 40, 1.0), (300, 300),
                                         borderMode=cv2.BORDER_REPLICATE), "LOW", 223129),
])
def test_quality_control_refuses_with_the_specific_code(staff, name, make, level, expected):
    bad = jpeg(make(pixels(A, 2)))
    assert code(staff.search(bad, "BASE64", "staff", {"quality_control": level})) == expected, name
    assert ok(staff.search(bad, "BASE64", "staff", {"quality_control": "NONE"}))  # still searchable


def test_quality_levels_order(staff):
    # the blurred photo passes LOW (blur limit 0.8) but not NORMAL (0.6): the tables apply
    blurred = jpeg(cv2.GaussianBlur(pixels(A, 2), (0, 0), 5))
    assert ok(staff.search(blurred, "BASE64", "staff", {"quality_control": "LOW"}))
    assert code(staff.search(blurred, "BASE64", "staff", {"quality_control": "NORMAL"})) == 223114


def test_liveness_control(staff):
    # LFW photos are scans of press prints: the single-frame check scores them near 0
    img = b64(photo(A, 2))
    assert code(staff.search(img, "BASE64", "staff", {"liveness_control": "LOW"})) == 223120
    assert ok(staff.search(img, "BASE64", "staff", {"liveness_control": "NONE"}))
    assert code(staff.addUser(img, "BASE64", "staff", "p2", {"liveness_control": "HIGH"})) == 223120
    assert code(staff.getUser("p2", "staff")) == 223103                   # nothing registered


def test_face_token_lifetime(staff):
    token = ok(staff.detect(b64(photo(A, 3)), "BASE64"))["face_list"][0]["face_token"]
    assert ok(staff.search(token, "FACE_TOKEN", "staff"))["user_list"][0]["user_id"] == "paul"
    # a registered face's token never expires; a detected one after 60 minutes
    reg = ok(staff.addUser(b64(photo(B, 3)), "BASE64", "staff", "jlo"))["face_token"]
    store = staff._lib.store
    with store._write() as db:
        db.execute("UPDATE tokens SET ctime = ctime - 3601")
    assert code(staff.search(token, "FACE_TOKEN", "staff")) == 222209
    assert ok(staff.search(reg, "FACE_TOKEN", "staff"))["user_list"][0]["user_id"] == "jlo"
    assert code(staff.search("0" * 32, "FACE_TOKEN", "staff")) == 222209
    assert code(staff.search("not a token", "FACE_TOKEN", "staff")) == 222013
    # a token can be registered: the same face under another user
    fresh = ok(staff.detect(b64(photo(C, 3)), "BASE64"))["face_list"][0]["face_token"]
    assert ok(staff.addUser(fresh, "FACE_TOKEN", "visitors", "ricardo"))["face_token"] == fresh
    assert fresh in [f["face_token"] for f in ok(staff.faceGetlist("ricardo", "visitors"))["face_list"]]


def test_multi_search(staff):
    shot = jpeg(cv2.hconcat([pixels(A, 2), pixels(B, 2)]))
    out = ok(staff.multiSearch(shot, "BASE64", "staff", {"max_face_num": 2, "match_threshold": 80}))
    assert out["face_num"] == 2
    found = {f["user_list"][0]["user_id"]: f["location"]["left"] for f in out["face_list"] if f["user_list"]}
    assert set(found) == {"paul", "jlo"} and found["paul"] < found["jlo"]
    assert code(staff.multiSearch(shot, "BASE64", "staff", {"max_face_num": 11})) == 222016


def test_match_and_faceverify(client):
    same = ok(client.match([{"image": b64(photo(A, 1)), "image_type": "BASE64"},
                            {"image": b64(photo(A, 2)), "image_type": "BASE64", "face_type": "LIVE"}]))
    other = ok(client.match([{"image": b64(photo(A, 1)), "image_type": "BASE64"},
                             {"image": b64(photo(B, 1)), "image_type": "BASE64"}]))
    assert same["score"] >= 80 > other["score"] and len(same["face_list"]) == 2
    assert code(client.match([{"image": b64(photo(A, 1)), "image_type": "BASE64"}])) == 222208
    assert code(client.match([{"image_type": "BASE64"}, {"image": "x", "image_type": "BASE64"}])) == 222001
    out = ok(client.faceverify([{"image": b64(photo(A, 1)), "image_type": "BASE64", "face_field": "quality"}]))
    assert 0 <= out["face_liveness"] <= 1 and out["thresholds"]["frr_1e-3"] == 0.3
    assert "quality" in out["face_list"][0] and "livemapscore" in out["face_list"][0]["liveness"]


def test_add_update_and_face_delete(client):
    first = ok(client.addUser(b64(photo(A, 1)), "BASE64", "staff", "paul", {"user_info": "Paul"}))
    assert set(first) == {"face_token", "location"}
    second = ok(client.addUser(b64(photo(A, 2)), "BASE64", "staff", "paul"))  # APPEND by default
    assert code(client.addUser(b64(photo(A, 2)), "BASE64", "staff", "paul")) == 223105
    tokens = [f["face_token"] for f in ok(client.faceGetlist("paul", "staff"))["face_list"]]
    assert tokens == [first["face_token"], second["face_token"]]
    assert ok(client.getUser("paul", "staff"))["user_list"] == [{"user_info": "Paul", "group_id": "staff"}]
    ok(client.faceDelete("paul", "staff", first["face_token"]))
    assert code(client.faceDelete("paul", "staff", first["face_token"])) == 223106
    assert len(ok(client.faceGetlist("paul", "staff"))["face_list"]) == 1
    ok(client.addUser(b64(photo(A, 3)), "BASE64", "staff", "paul", {"action_type": "REPLACE"}))
    assert len(ok(client.faceGetlist("paul", "staff"))["face_list"]) == 1
    assert code(client.updateUser(b64(photo(B, 1)), "BASE64", "staff", "ghost")) == 223103
    ok(client.updateUser(b64(photo(B, 1)), "BASE64", "staff", "ghost", {"action_type": "REPLACE", "user_info": "G"}))
    assert ok(client.getUser("ghost", "@ALL"))["user_list"] == [{"user_info": "G", "group_id": "staff"}]
    assert code(client.addUser(b64(photo(B, 2)), "BASE64", "staff", "x", {"action_type": "MERGE"})) == 222025
    assert code(client.addUser(b64(photo(B, 2)), "BASE64", "staff", "x", {"user_info": "é" * 129})) == 222010
    assert code(client.addUser(b64(photo(B, 2)), "BASE64", "st-aff", "x")) == 222006


def test_groups_users_copy_and_delete(staff):
    assert code(staff.groupAdd("staff")) == 223101
    assert code(staff.userCopy("paul", {"src_group_id": "staff", "dst_group_id": "vip"})) == 223100
    ok(staff.groupAdd("vip"))
    ok(staff.userCopy("paul", {"src_group_id": "staff", "dst_group_id": "vip"}))
    assert code(staff.userCopy("paul", {"src_group_id": "staff", "dst_group_id": "vip"})) == 223102
    assert code(staff.userCopy("nobody", {"src_group_id": "staff", "dst_group_id": "vip"})) == 223103
    assert ok(staff.search(b64(photo(A, 2)), "BASE64", "vip"))["user_list"][0]["user_id"] == "paul"
    assert ok(staff.getGroupUsers("staff"))["user_id_list"] == ["paul", "jlo"]
    assert ok(staff.getGroupUsers("staff", {"start": 1, "length": 1}))["user_id_list"] == ["jlo"]
    assert code(staff.getGroupUsers("staff", {"length": 1001})) == 222003
    assert ok(staff.getGroupList({"start": 0, "length": 2}))["group_id_list"] == ["staff", "visitors"]
    ok(staff.deleteUser("staff", "paul"))
    assert code(staff.deleteUser("staff", "paul")) == 223103
    assert ok(staff.getUser("paul", "@ALL"))["user_list"] == [{"user_info": "Paul", "group_id": "vip"}]
    ok(staff.groupDelete("vip"))
    assert code(staff.groupDelete("vip")) == 223100
    assert code(staff.getUser("paul", "@ALL")) == 223103
    assert code(staff.search(b64(photo(A, 2)), "BASE64", "vip")) == 222207


def test_bad_input_never_raises(client):
    assert code(client.search("", "BASE64", "staff")) == 222001
    assert code(client.search("%%%not base64%%%", "BASE64", "staff")) == 222013
    assert code(client.search(b64(b"\x89PNG\r\n\x1a\n" + b"\0" * 40), "BASE64", "staff")) == 222203
    assert code(client.search(b64(b"GIF89a not an image at all"), "BASE64", "staff")) == 222203
    assert code(client.match("not a list")) == 222200
    assert code(client.detect(b64(photo(A, 1)), "BASE64", "options must be a dict")) == 222200
    assert code(client.personVerify(b64(photo(A, 1)), "BASE64", "110233112299822211", "张三")) == 216102
    assert code(client.getUser("nobody", "staff")) == 223100


def test_spoofing_control_is_refused_unless_the_operator_opts_in(edge_config, caplog):
    """No synthetic-image detector ships: LOW/NORMAL/HIGH must not pass silently (216102),
    unless api.spoofing_control: ignore, which accepts them and logs that once."""
    import dataclasses

    from edge.aip import v3 as v3_module
    from edge.config import ApiConfig
    strict = AipFace(f"v3app{next(_apps)}", "key", "secret", config=edge_config)
    probe = b64(photo(A, 2))
    assert code(strict.addUser(b64(photo(A, 1)), "BASE64", "g", "paul", {"spoofing_control": "LOW"})) == 216102
    ok(strict.addUser(b64(photo(A, 1)), "BASE64", "g", "paul", {"spoofing_control": "NONE"}))
    assert code(strict.search(probe, "BASE64", "g", {"spoofing_control": "HIGH"})) == 216102
    assert code(strict.search(probe, "BASE64", "g", {"spoofing_control": "MAX"})) == 222026

    lenient_cfg = dataclasses.replace(edge_config, api=ApiConfig(spoofing_control="ignore"))
    lenient = AipFace(strict.appId, "key", "secret", config=lenient_cfg)
    v3_module._log_spoofing_ignored.cache_clear()
    with caplog.at_level("WARNING", logger="edge.aip.v3"):
        for level in ("LOW", "NORMAL", "HIGH"):
            found = ok(lenient.search(probe, "BASE64", "g", {"spoofing_control": level}))
            assert found["user_list"][0]["user_id"] == "paul"
    assert sum("NOT evaluated" in r.getMessage() for r in caplog.records) == 1   # once per process
    assert code(lenient.search(probe, "BASE64", "g", {"spoofing_control": "MAX"})) == 222026


def test_spoofing_policy_is_validated(tmp_path):
    from edge.config import ConfigError, load_config
    (tmp_path / "edge.yaml").write_text("api: {spoofing_control: ignore}\n")
    assert load_config(tmp_path / "edge.yaml").api.spoofing_control == "ignore"
    (tmp_path / "edge.yaml").write_text("api: {spoofing_control: maybe}\n")
    with pytest.raises(ConfigError, match="api.spoofing_control"):
        load_config(tmp_path / "edge.yaml")
