"""A library holds one embedding space: faces of another embedder (a changed `models:`
setting) are refused loudly by the API, never searched or mixed with (issue 19)."""
from __future__ import annotations

import base64

import numpy as np

from edge.aip.runtime import get_runtime
from edge.aip.v3 import AipFace
from edge.imaging import decode_image
from edge.library.library import open_library
from edge.library.store import SPACES_KEY, FaceRecord, LibraryStore
from edge.models.manifest import model_space
from edge.postgres.connect import database
from edge.postgres.store import PgLibraryStore
from test_aip_v2 import A, B, photo

FOREIGN = "dlib_face_recognition_resnet_model_v1@0123456789ab"


def _unit(seed: int, dim: int = 128) -> np.ndarray:
    v = np.random.default_rng(seed).standard_normal(dim).astype(np.float32)
    return v / np.linalg.norm(v)


def test_a_library_with_another_models_faces_is_refused_until_they_are_gone(edge_config, caplog):
    # A library enrolled under another embedder (the setting changed since): one face of
    # the old model beside one of ours, found when this process first opens it.
    rt = get_runtime(edge_config)
    lib = open_library(edge_config.path(edge_config.data_dir), "spaceapp")
    face = rt.analyser.analyse(decode_image(photo(A, 1)), 1, 1, {"embedding"})[0]
    lib.register(["staff"], "paul", "", FaceRecord("paul-1", face.embedding, rt.model_id))
    lib.register(["staff"], "ann", "", FaceRecord("ann-other", _unit(1), FOREIGN))
    assert lib.store.model_spaces() == sorted([model_space(rt.model_id), FOREIGN])

    client = AipFace("spaceapp", "key", "secret", config=edge_config)
    probe = base64.b64encode(photo(A, 2)).decode()
    for call in (lambda: client.search(probe, "BASE64", "staff"),
                 lambda: client.addUser(base64.b64encode(photo(B, 1)).decode(), "BASE64", "staff", "jlo"),
                 lambda: client.getGroupUsers("staff")):
        answer = call()
        assert (answer["error_code"], answer["error_msg"]) == (216300, "db error"), answer   # Baidu's text
    # the reason, once, in the log (the client gets the docs' text for the code)
    said = [r.getMessage() for r in caplog.records if r.levelname == "ERROR" and FOREIGN in r.getMessage()]
    assert len(said) == 1 and model_space(rt.model_id) in said[0], said
    assert [m for m in lib.store.dump()["members"] if m[1] == "jlo"] == []   # nothing mixed in

    # the other model's faces deleted (outside the API): served again, the list counted afresh
    lib.delete_user("ann", ["staff"])
    found = client.search(probe, "BASE64", "staff")
    assert found["error_code"] == 0 and found["result"]["user_list"][0]["user_id"] == "paul", found
    assert lib.store.model_spaces() == [model_space(rt.model_id)]


def test_a_library_from_before_the_list_is_counted_once(tmp_path):
    store = LibraryStore(tmp_path / "lib.db")
    store.register(["g"], "u1", None, FaceRecord("t1", _unit(1), "sface@aaa"))
    store.register(["g"], "u2", None, FaceRecord("t2", _unit(2), "sface@aaa+int8@bbb"))   # int8: the fp32 space
    assert store._one("SELECT value FROM meta WHERE key=?", (SPACES_KEY,)) is None
    assert store.model_spaces() == ["sface@aaa"]
    store.register(["g"], "u3", None, FaceRecord("t3", _unit(3), "other@ccc"))            # noted from now on
    assert store.model_spaces() == ["other@ccc", "sface@aaa"]
    store.delete_user("u3", ["g"])
    assert store.model_spaces() == ["other@ccc", "sface@aaa"]   # a superset until counted again
    assert store.recount_spaces() == ["sface@aaa"]


def test_postgres_keeps_the_same_list(pg_server):
    store = PgLibraryStore(database(pg_server.new_database()), "1001", 8)
    store.register(["g"], "u1", None, FaceRecord("t1", _unit(1, 8), "sface@aaa"))
    assert store.model_spaces() == ["sface@aaa"]
    store.register(["g"], "u2", None, FaceRecord("t2", _unit(2, 8), "other@ccc"))
    assert store.model_spaces() == ["other@ccc", "sface@aaa"]
    store.delete_user("u2", ["g"])
    assert store.recount_spaces() == ["sface@aaa"]
