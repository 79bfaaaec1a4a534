"""`edge bench` measures what the API runs."""
from __future__ import annotations

from conftest import MULTIFACE
from edge.bench import V2_FIELDS, V2_STAGES, v2_detect
from edge.service import Engine


def test_the_bench_v2_detect_is_engine_detect_with_every_field(edge_config):
    # The figure for issue 15's "full v2 detect with every field" target: Engine.detect's
    # answer, and no embedding (v2 detect returns none; the bench used to time it too).
    engine = Engine(edge_config)
    photo = (MULTIFACE / "fr_two_people.jpg").read_bytes()
    want = engine.detect(photo, {"max_face_num": 10, "face_fields": ",".join(sorted(V2_FIELDS))})["result"]
    assert v2_detect(engine.analyser, photo) == want and len(want) == 2
    assert "embedding" not in V2_STAGES
