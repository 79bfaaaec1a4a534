"""`models.embedder`: SFace alone (the default) or SFace on two alignments fused with
dlib's ResNet, each with its own model id, dimension and score table; a library holds
one embedder's faces and is refused, loudly, by another (issue 19)."""
from __future__ import annotations

import base64
import dataclasses

import numpy as np
import pytest

from edge.aip.runtime import get_runtime
from edge.aip.v3 import AipFace
from edge.analysis import embedders
from edge.analysis.align import align_face
from edge.analysis.app import AnalyserConfig, FaceAnalyser
from edge.analysis.meshmap import mesh_kps5
from edge.config import ConfigError, LibraryConfig, load_config
from edge.imaging import decode_image
from edge.library.scores import scale_for
from edge.models.manifest import embedder_model_id, model_space
from test_aip_v2 import A, B, C, photo

FUSED = "sface_dlib"


@pytest.fixture(scope="module")
def fused_analyser() -> FaceAnalyser:
    return FaceAnalyser(AnalyserConfig(threads=2, embedder=FUSED))


def _with_embedder(config, name: str, **changes):
    return dataclasses.replace(config, models=dataclasses.replace(config.models, embedder=name), **changes)


def _face(analyser, name: str, i: int):
    img = decode_image(photo(name, i))
    return img, analyser.analyse(img, 1, 1, {"embedding"})[0]


def test_the_fusion_is_the_two_models_cosines_weighted(fused_analyser):
    emb = fused_analyser.embedder
    assert (emb.name, emb.dim) == (FUSED, 256)
    faces = [_face(fused_analyser, n, i) for n, i in ((A, 1), (A, 2), (B, 1))]
    vecs = np.stack([f.embedding for _, f in faces])
    assert vecs.shape == (3, 256) and np.allclose(np.linalg.norm(vecs, axis=1), 1.0, atol=1e-5)

    def parts(img, face):   # SFace on both alignments summed, dlib on its chip: each unit length
        sface = fused_analyser.sface.embed_chips([align_face(img, face.kps5), align_face(img, mesh_kps5(face.mesh))])
        a = sface.sum(0) / np.linalg.norm(sface.sum(0))
        return a, emb.dlib.embed(img, face.mesh)

    (a0, d0), (a1, d1), (a2, d2) = (parts(img, f) for img, f in faces)
    w = embedders.SFACE_DLIB_WEIGHT
    for (x, y), (sa, sd) in (((0, 1), (a0 @ a1, d0 @ d1)), ((0, 2), (a0 @ a2, d0 @ d2))):
        assert abs(vecs[x] @ vecs[y] - (w * sa + (1 - w) * sd)) < 1e-5

    scale = scale_for(FUSED)   # its own table: the same person above 80, another well below
    assert scale.score(vecs[0] @ vecs[1]) > 80 > 70 > scale.score(vecs[0] @ vecs[2])


def test_each_embedder_has_its_own_score_table():
    sface, fused = scale_for("sface"), scale_for(FUSED)
    assert sface.path != fused.path
    # score 80 is FAR 1e-4 on both scales, at a cosine each table found on its own pairs
    assert abs(sface.far_to_score(1e-4) - 80) < 1e-9 and abs(fused.far_to_score(1e-4) - 80) < 1e-9
    assert abs(sface.score_to_similarity(80) - fused.score_to_similarity(80)) > 0.01
    # beyond the table's FAR 1e-5 each follows its own fitted tail, still inverse of each other
    for scale in (sface, fused):
        assert abs(scale.far_to_score(scale.score_to_far(92.0)) - 92.0) < 1e-6


def test_model_ids_keep_every_embedders_faces_apart():
    sface, fused = embedders.model_id("sface"), embedders.model_id(FUSED)
    assert sface == embedder_model_id()   # libraries enrolled before the choice keep their space
    assert fused.startswith(f"{FUSED}@w{embedders.SFACE_DLIB_WEIGHT:.2f}:") and sface in fused
    assert embedder_model_id(role="embedder_dlib") in fused and len(fused) <= 200   # the wire's limit
    assert model_space(fused) != model_space(sface)
    int8 = embedders.model_id(FUSED, precision="int8")   # its SFace member int8: the same space
    assert int8 != fused and model_space(int8) == fused


def test_a_bad_embedder_setting_is_refused_at_start(tmp_path):
    (tmp_path / "edge.yaml").write_text("models: {embedder: arcface}\n")
    with pytest.raises(ConfigError, match="models.embedder: must be sface or sface_dlib"):
        load_config(tmp_path / "edge.yaml")
    (tmp_path / "edge.yaml").write_text(f"models: {{embedder: {FUSED}}}\n")
    assert load_config(tmp_path / "edge.yaml").models.embedder == FUSED


def test_switching_embedders_refuses_the_old_library_and_serves_a_new_one(edge_config, tmp_path, capsys):
    sface_cfg = edge_config
    fused_cfg = _with_embedder(edge_config, FUSED)
    probe = base64.b64encode(photo(A, 2)).decode()
    old = AipFace("before", "key", "secret", config=sface_cfg)
    assert old.addUser(base64.b64encode(photo(A, 1)).decode(), "BASE64", "staff", "paul")["error_code"] == 0

    # the setting switched: the library enrolled with SFace alone is refused, not searched
    switched = AipFace("before", "key", "secret", config=fused_cfg)
    answer = switched.search(probe, "BASE64", "staff")
    assert (answer["error_code"], answer["error_msg"]) == (216300, "db error"), answer
    # ... and `edge library check` says so, and what to do
    from edge.cli import main
    (tmp_path / "edge.yaml").write_text(f"data_dir: {edge_config.path(edge_config.data_dir)}\n"
                                        f"models: {{embedder: {FUSED}}}\n")
    assert main(["--config", str(tmp_path / "edge.yaml"), "library", "check", "--app-id", "before"]) == 0
    said = capsys.readouterr().out
    assert f"faces embedded by {model_space(get_runtime(sface_cfg).model_id)}, not by this engine's " \
           f"models.embedder {FUSED}" in said and "enrolled again" in said, said

    # the people enrolled again into a new appid: searched with the fusion's own scale
    new = AipFace("after", "key", "secret", config=fused_cfg)
    for name, uid in ((A, "paul"), (B, "jlo"), (C, "ricardo")):
        assert new.addUser(base64.b64encode(photo(name, 1)).decode(), "BASE64", "staff", uid)["error_code"] == 0
    found = new.search(probe, "BASE64", "staff", {"max_user_num": 3})
    assert found["error_code"] == 0, found
    users = found["result"]["user_list"]
    assert users[0]["user_id"] == "paul" and users[0]["score"] > 80 > users[1]["score"], users
    lib = new._lib
    rt = get_runtime(fused_cfg)
    assert lib.dim == 256 and lib.store.model_spaces() == [model_space(rt.model_id)]
    # ... and refused in turn by SFace alone
    back = AipFace("after", "key", "secret", config=sface_cfg)
    assert back.search(probe, "BASE64", "staff")["error_code"] == 216300


def test_the_loops_worker_embeds_the_chips_it_was_handed(fused_analyser, tmp_path):
    # run.embed_threads > 0: the worker's own sessions; the frame thread cuts the chips
    from edge.loop.runner import worker_embedder
    (tmp_path / "edge.yaml").write_text(f"models: {{embedder: {FUSED}}}\nrun: {{embed_threads: 1}}\n")
    cfg = load_config(tmp_path / "edge.yaml")
    worker = worker_embedder(cfg, fused_analyser)
    assert worker is not fused_analyser.embedder and worker.name == FUSED
    img, face = _face(fused_analyser, A, 1)
    chips = worker.cut(img, face)
    assert [c.shape for c in chips] == [(112, 112, 3), (112, 112, 3), (150, 150, 3)]
    assert np.abs(worker.embed(chips) - face.embedding).max() < 1e-5


def test_on_postgres_the_fusion_gets_its_own_column_size(edge_config, pg_server):
    dsn = pg_server.new_database()
    fused_cfg = _with_embedder(edge_config, FUSED, library=LibraryConfig(backend="postgres", dsn=dsn))
    sface_cfg = dataclasses.replace(edge_config, library=LibraryConfig(backend="postgres", dsn=dsn))
    probe = base64.b64encode(photo(B, 2)).decode()
    client = AipFace("pgfused", "key", "secret", config=fused_cfg)
    assert client.addUser(base64.b64encode(photo(B, 1)).decode(), "BASE64", "staff", "jlo")["error_code"] == 0
    found = client.search(probe, "BASE64", "staff")
    assert found["error_code"] == 0 and found["result"]["user_list"][0]["user_id"] == "jlo", found
    assert client._lib.dim == 256
    # an app made by SFace alone, still empty, has a 128-value column: refused, not a failed insert
    empty = AipFace("pgsface", "key", "secret", config=sface_cfg)
    assert empty.getGroupList()["error_code"] == 0
    answer = AipFace("pgsface", "key", "secret", config=fused_cfg).addUser(
        base64.b64encode(photo(B, 1)).decode(), "BASE64", "staff", "jlo")
    assert (answer["error_code"], answer["error_msg"]) == (216300, "db error"), answer
