"""The engine's functional surface: build an analyser from the config, run detect.

    from edge.service import Engine
    engine = Engine.from_config()
    engine.detect(open("photo.jpg", "rb").read(), {"face_fields": "age,qualities"})
"""
from __future__ import annotations

import random
import time

from edge import rules
from edge.analysis.app import AnalyserConfig, FaceAnalyser
from edge.analysis.baidu import face_to_baidu, parse_face_fields, stages_for
from edge.config import Config, load_config
from edge.errors import EdgeError
from edge.imaging import decode_image



def new_log_id() -> int:
    return int(time.time() * 1000) * 1000 + random.randrange(1000)


class Engine:
    def __init__(self, config: Config | None = None):
        self.config = cfg = config or load_config()
        self.analyser = FaceAnalyser(AnalyserConfig(
            models_dir=cfg.models_dir, threads=cfg.runtime.threads,
            det_score_threshold=cfg.detector.score_threshold,
            det_verify_threshold=cfg.detector.verify_threshold, det_max_side=cfg.detector.max_side,
            rotated_retry=cfg.detector.rotated_retry, precision=cfg.models.precision,
            embedder=cfg.models.embedder))

    @classmethod
    def from_config(cls, path=None) -> "Engine":
        return cls(load_config(path))

    def detect(self, image, options: dict | None = None) -> dict:
        """Baidu v2 detect: the response dict, errors included (never raises EdgeError)."""
        options = options or {}
        log_id = new_log_id()
        try:
            img = decode_image(image)
            # v2 documents no maximum: any count is valid, the faces analysed are capped (docs/api.md)
            max_face_num = min(rules.integer(options, "max_face_num", 1, 1, rules.INT32_MAX, 216100),
                               rules.V2_DETECT_FACES_CAP)
            sort_type = rules.integer(options, "face_sort_type", 0, 0, 1, 216100)
            fields = parse_face_fields(options.get("face_fields"))
            faces = self.analyser.analyse(img, max_face_num, sort_type, stages_for(fields))
        except EdgeError as exc:
            return {**exc.to_dict(), "log_id": log_id}
        result = [face_to_baidu(f, fields) for f in faces]
        return {"result_num": len(result), "result": result, "log_id": log_id}
