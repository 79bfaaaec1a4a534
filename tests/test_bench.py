"""`edge bench` measures what the API runs."""
from __future__ import annotations

from conftest import MULTIFACE
from edge.bench import V2_FIELDS, V2_STAGES, pi4_ratios, v2_detect
from edge.pi4 import PI5_OVER_PI4, ZOO_PI4_MS, Pi4Ratios, pi5_ms, pi5_text
from edge.service import Engine


def test_the_bench_v2_detect_is_engine_detect_with_every_field(edge_config):
    # The figure for issue 15's "full v2 detect with every field" target: Engine.detect's
    # answer, and no embedding (v2 detect returns none; the bench used to time it too).
    engine = Engine(edge_config)
    photo = (MULTIFACE / "fr_two_people.jpg").read_bytes()
    want = engine.detect(photo, {"max_face_num": 10, "face_fields": ",".join(sorted(V2_FIELDS))})["result"]
    assert v2_detect(engine.analyser, photo) == want and len(want) == 2
    assert "embedding" not in V2_STAGES


def test_the_pi4_projection_scales_edges_own_times_by_the_hardwares_ratio(edge_config):
    # The ratio is the zoo's Pi 4 time over OpenCV's DNN here on the same model, so a faster
    # edge projects faster; the old ratio (zoo / edge's own time) gave back the zoo's time.
    ratios = pi4_ratios(edge_config.models_dir, 2)
    assert ratios.detect > 1 and ratios.embed > 1          # a Pi 4 is slower than this box
    assert set(ratios.opencv_here_ms) == set(ZOO_PI4_MS)
    stages = {"detect": 2.0, "embedding": 10.0, "landmarks": 1.0}
    assert ratios.project(stages) == 2.0 * ratios.detect + 10.0 * ratios.embed + 1.0 * ratios.other
    half = {k: v / 2 for k, v in stages.items()}
    assert abs(ratios.project(half) - ratios.project(stages) / 2) < 1e-9
    fixed = Pi4Ratios(4.0, 9.0, {})
    assert fixed.of("detect_rotated") == 4.0 and fixed.of("embedding") == 9.0 and fixed.of("quality") == 6.0

    # A Pi 5 is the Pi 4 projection divided by the vendor's 2-3x: a range, fastest first.
    assert PI5_OVER_PI4 == (2.0, 3.0)
    assert pi5_ms(120.0) == (40.0, 60.0) and pi5_text(145.0) == "~48-72 ms"
