"""edge.aip.AipFace behaves as Baidu's v2 SDK document says: real models, real photos."""
from __future__ import annotations

import itertools

import cv2
import numpy as np
import pytest

from conftest import LFW, MULTIFACE
from edge.aip import AipFace

_apps = itertools.count()


def photo(name: str, i: int) -> bytes:
    """The i-th (1-based) photo of an LFW person, as file bytes."""
    return sorted((LFW / "images" / name).glob("*.jpg"))[i - 1].read_bytes()


def side_by_side(*images: bytes) -> bytes:
    """One JPEG holding several photos next to each other (a group shot)."""
    arrs = [cv2.imdecode(np.frombuffer(b, np.uint8), cv2.IMREAD_COLOR) for b in images]
    return cv2.imencode(".jpg", cv2.hconcat(arrs))[1].tobytes()


@pytest.fixture
def client(edge_config):
    """A client on a fresh app, i.e. a fresh face library."""
    return AipFace(f"v2app{next(_apps)}", "key", "secret", config=edge_config)


A, B, C = "Paul_Wolfowitz", "Jennifer_Lopez", "Ricardo_Lagos"


def ok(resp: dict) -> dict:
    assert "error_code" not in resp, resp
    assert isinstance(resp["log_id"], int)
    return resp


def code(resp: dict) -> int:
    assert isinstance(resp.get("log_id"), int) and isinstance(resp.get("error_msg"), str), resp
    return resp["error_code"]


def test_register_to_several_groups_and_identify(client):
    ok(client.addUser("paul", "Paul W", "staff,visitors", photo(A, 1)))
    ok(client.addUser("jlo", "Jennifer", "staff", photo(B, 1)))
    user = ok(client.getUser("paul"))
    assert user["result"] == [{"uid": "paul", "user_info": "Paul W", "groups": ["staff", "visitors"]}]
    for group in ("staff", "visitors"):
        hit = ok(client.identifyUser(group, photo(A, 2)))
        assert hit["result_num"] == 1
        assert hit["result"][0]["uid"] == "paul" and hit["result"][0]["group_id"] == group
        assert hit["result"][0]["user_info"] == "Paul W" and hit["result"][0]["scores"][0] >= 80
    two = ok(client.identifyUser("staff", photo(B, 2), {"user_top_num": 2}))
    assert [r["uid"] for r in two["result"]] == ["jlo", "paul"]
    assert two["result"][0]["scores"][0] >= 80 > two["result"][1]["scores"][0]
    assert code(client.identifyUser("staff", photo(B, 2), {"user_top_num": 6})) == 216100
    assert code(client.identifyUser("nogroup", photo(B, 2))) == 216618


def test_append_replace_and_duplicate_image(client):
    ok(client.addUser("paul", "Paul", "staff", photo(A, 1)))
    ok(client.addUser("paul", "Paul", "staff", photo(A, 2)))               # append (default)
    assert code(client.addUser("paul", "Paul", "staff", photo(A, 2))) == 216616  # image existed
    scores = ok(client.verifyUser("paul", "staff", photo(A, 3), {"top_num": 5}))["result"]
    assert len(scores) == 2 and scores == sorted(scores, reverse=True)
    ok(client.addUser("paul", "Paul", "staff", photo(A, 4), {"action_type": "replace"}))
    scores = ok(client.verifyUser("paul", "staff", photo(A, 3), {"top_num": 5}))["result"]
    assert len(scores) == 1
    assert code(client.addUser("paul", "Paul", "staff", photo(A, 5), {"action_type": "merge"})) == 216100


def test_update_user(client):
    assert code(client.updateUser("ghost", "x", "staff", photo(A, 1))) == 216611
    ok(client.updateUser("ghost", "now here", "staff", photo(A, 1), {"action_type": "replace"}))
    assert ok(client.getUser("ghost"))["result"][0]["user_info"] == "now here"
    ok(client.addUser("ghost", "now here", "staff", photo(A, 2)))
    ok(client.updateUser("ghost", "updated", "staff", photo(A, 3)))        # replaces all faces
    assert ok(client.getUser("ghost"))["result"][0]["user_info"] == "updated"
    assert ok(client.verifyUser("ghost", "staff", photo(A, 4), {"top_num": 5}))["result_num"] == 1


def test_delete_user_from_one_group_or_all(client):
    ok(client.addUser("paul", "Paul", "g1,g2", photo(A, 1)))
    ok(client.deleteUser("paul", {"group_id": "g1"}))
    assert ok(client.getUser("paul"))["result"][0]["groups"] == ["g2"]
    assert code(client.identifyUser("g1", photo(A, 2))) == 216618
    ok(client.deleteUser("paul"))
    assert code(client.getUser("paul")) == 216611
    assert code(client.deleteUser("paul")) == 216611
    assert code(client.verifyUser("paul", "g2", photo(A, 2))) == 216611


def test_copy_between_groups_and_leave_a_group(client):
    ok(client.addUser("paul", "Paul", "g1", photo(A, 1)))
    ok(client.addGroupUser("g1", "g2", "paul"))
    assert ok(client.identifyUser("g2", photo(A, 2)))["result"][0]["uid"] == "paul"
    assert code(client.addGroupUser("g1", "g2", "paul")) == 216100          # already there
    assert code(client.addGroupUser("g1", "g3", "nobody")) == 216611
    ok(client.deleteGroupUser("g1", "paul"))
    assert ok(client.getUser("paul"))["result"][0]["groups"] == ["g2"]
    # a user's last group cannot be left: deleteUser is the way out
    resp = client.deleteGroupUser("g2", "paul")
    assert code(resp) == 216619 and resp["error_msg"] == "user must be in one group at least"


def test_paging_of_groups_and_users(client):
    for i in range(5):
        ok(client.addUser(f"u{i}", f"user {i}", f"grp{i},all", photo(A, 1 + i)))
    groups = ok(client.getGroupList())
    assert groups["result"] == ["grp0", "all", "grp1", "grp2", "grp3", "grp4"]  # creation order
    page = ok(client.getGroupList({"start": 2, "num": 2}))
    assert page["result"] == groups["result"][2:4] and page["result_num"] == 2
    assert code(client.getGroupList({"num": 1001})) == 216100
    users = ok(client.getGroupUsers("all", {"start": 1, "num": 3}))
    assert users["result"] == [{"uid": f"u{i}", "user_info": f"user {i}"} for i in (1, 2, 3)]
    assert code(client.getGroupUsers("nosuchgroup")) == 216618


def test_id_and_user_info_limits(client):
    img = photo(A, 1)
    assert code(client.addUser("x" * 129, "", "g", img)) == 216111
    assert code(client.addUser("bad-id", "", "g", img)) == 216111
    assert code(client.addUser("u", "", "g" * 129, img)) == 216100
    assert code(client.addUser("u", "", "g1," + "g" * 49, img)) == 216100   # 48 per id in a list
    assert code(client.addUser("u", "好" * 86, "g", img)) == 216100          # 258 bytes of user_info
    ok(client.addUser("x" * 128, "好" * 85, "g1," + "g" * 48, img))          # all at their limits
    ok(client.addUser("u2", "", "g" * 128, photo(A, 2)))


def test_verify_scores_separate_people(client):
    ok(client.addUser("paul", "Paul", "staff", photo(A, 1)))
    same = ok(client.verifyUser("paul", "staff", photo(A, 2)))["result"][0]
    other = ok(client.verifyUser("paul", "staff", photo(B, 1)))["result"][0]
    assert same >= 80 > 70 > other and 0 <= other


def test_multi_identify_finds_every_face(client):
    ok(client.addUser("paul", "Paul", "staff", photo(A, 1)))
    ok(client.addUser("jlo", "Jennifer", "staff", photo(B, 1)))
    group_shot = side_by_side(photo(A, 2), photo(B, 2))
    out = ok(client.multiIdentify("staff", group_shot, {"detect_top_num": 2}))
    assert out["result_num"] == 2
    by_user = {r["uid"]: r for r in out["result"]}
    assert set(by_user) == {"paul", "jlo"}
    assert by_user["paul"]["position"]["left"] < 150 <= by_user["jlo"]["position"]["left"]  # 150 px photos
    assert all(len(r["scores"]) == 1 and r["scores"][0] >= 80 for r in out["result"])
    assert code(client.multiIdentify("staff", group_shot, {"detect_top_num": 11})) == 216100
    assert code(client.multiIdentify("staff", group_shot, {"user_top_num": 21})) == 216100


def test_match_pairs_quality_and_liveness(client):
    two = ok(client.match([photo(A, 1), photo(A, 2)]))
    assert two["result_num"] == 1 and two["result"][0]["index_i"] == 0 and two["result"][0]["index_j"] == 1
    assert two["result"][0]["score"] >= 80 and "ext_info" not in two
    three = ok(client.match([photo(A, 1), photo(A, 2), photo(B, 1)],
                            {"ext_fields": "qualities", "image_liveness": ",,faceliveness"}))
    pairs = {(r["index_i"], r["index_j"]): r["score"] for r in three["result"]}
    assert set(pairs) == {(0, 1), (0, 2), (1, 2)}
    assert pairs[(0, 1)] >= 80 > pairs[(0, 2)] and pairs[(1, 2)] < 80
    ext = three["ext_info"]
    assert len(ext) == 3 and all("qualities" in e for e in ext)
    assert "faceliveness" in ext[2] and "faceliveness" not in ext[0]
    assert 0 <= float(ext[2]["faceliveness"]) <= 1
    assert code(client.match([photo(A, 1)])) == 216614


def test_bad_input_gets_baidu_errors(client):
    noface = (MULTIFACE / "inspireface_view_noface.jpg").read_bytes()
    assert code(client.addUser("u", "", "g", b"")) == 216200
    assert code(client.addUser("u", "", "g", b"GIF89a not an image at all")) == 216201
    assert code(client.addUser("u", "", "g", noface)) == 216402
    assert code(client.identifyUser("g", noface)) == 216402
    assert code(client.getUser("u")) == 216611                              # nothing half-written


def test_liveness_and_offline_identity_check(client):
    out = ok(client.faceverify(photo(A, 1), {"face_fields": "qualities"}))
    face = out["result"][0]
    assert 0 <= face["faceliveness"] <= 1 and "qualities" in face
    resp = client.personVerify(photo(A, 1), "110233112299822211", "张三")
    assert code(resp) == 216102 and resp["error_msg"] == "service not support"
    client.setConnectionTimeoutInMillis(100)
    client.setSocketTimeoutInMillis(100)
    assert ok(client.detect(photo(A, 1), {"face_fields": "age"}))["result_num"] == 1
