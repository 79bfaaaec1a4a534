"""FaceAnalyser: one image -> complete Face records.

Composes one small class per model (detector, mesh, age/gender, embedder) with the
pure measurement functions (pose, quality, expression, glasses, face type, liveness),
in the order the data flows: detect -> mesh -> pose/quality/attributes/glasses ->
face type -> liveness -> embedding.
Stages a caller does not ask for are skipped.
"""
from __future__ import annotations

import logging
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edge.analysis import expression as expr
from edge.analysis.align import align_face
from edge.analysis.attributes import AgeGender
from edge.analysis.detector import YuNetDetector
from edge.analysis.embedder import SFaceEmbedder
from edge.analysis.face import Face
from edge.analysis.face_type import face_type
from edge.analysis.glasses import glasses
from edge.analysis.landmarks import FaceMesh
from edge.analysis.liveness import liveness_score
from edge.analysis.pose import head_pose
from edge.analysis.quality import assess
from edge.models.manifest import default_models_dir, load_manifest

log = logging.getLogger(__name__)

ALL_STAGES = frozenset({"landmarks", "quality", "attributes", "glasses", "face_type", "liveness", "embedding"})
# Stages each needs first.
NEEDS_MESH = frozenset({"landmarks", "quality", "attributes", "glasses"})


@dataclass
class AnalyserConfig:
    models_dir: Path | None = None
    threads: int = 2
    det_score_threshold: float = 0.7   # kept on the detector's word alone
    det_verify_threshold: float = 0.3  # kept if the mesh net also sees a face
    det_max_side: int = 1280


# Face-presence probability the mesh net must give a low-confidence detection. The
# mesh is not used to veto confident detections: it reads faces cut by the image
# border (selfies) as absent.
MESH_PRESENCE = 0.5


def sort_faces(faces: list[Face], image_shape, face_sort_type: int = 0) -> list[Face]:
    """0: largest area first; 1: nearest to the image centre first (Baidu face_sort_type)."""
    if face_sort_type == 1:
        cy, cx = image_shape[0] / 2, image_shape[1] / 2
        return sorted(faces, key=lambda f: (f.center[0] - cx) ** 2 + (f.center[1] - cy) ** 2)
    return sorted(faces, key=lambda f: -f.area)


class FaceAnalyser:
    def __init__(self, config: AnalyserConfig | None = None):
        self.config = cfg = config or AnalyserConfig()
        models_dir = Path(cfg.models_dir or default_models_dir())
        files = {name: models_dir / spec.file for name, spec in load_manifest(models_dir).items()}
        self.detector = YuNetDetector(files["detector"], cfg.threads,
                                      min(cfg.det_verify_threshold, cfg.det_score_threshold),
                                      max_side=cfg.det_max_side)
        self.mesh = FaceMesh(files["landmarks"], cfg.threads)
        self.embedder = SFaceEmbedder(files["embedder"], cfg.threads)
        self.age_gender = AgeGender(files["age"], files["gender"], cfg.threads)
        self.timings: dict[str, float] = {}

    @contextmanager
    def _timed(self, stage: str):
        t0 = time.perf_counter()
        yield
        self.timings[stage] = self.timings.get(stage, 0.0) + (time.perf_counter() - t0) * 1000

    def analyse(self, img_bgr: np.ndarray, max_face_num: int = 1, face_sort_type: int = 0,
                stages=ALL_STAGES, det_max_side: int | None = None) -> list[Face]:
        """Faces in the image, sorted and cut to max_face_num, with the asked stages filled.
        `det_max_side` overrides the detector's first-pass size for this image."""
        self.timings = {}
        stages = frozenset(stages)
        with self._timed("detect"):
            det = self.detector.detect(img_bgr, det_max_side)
        candidates = [Face(box=det.boxes[i], score=float(det.scores[i]), kps5=det.kps[i]) for i in range(len(det))]
        max_face_num = max(0, int(max_face_num))
        # Confirm in the final order and stop once enough faces stand, so the mesh runs
        # only on the low-confidence candidates that could make the answer.
        faces = []
        for face in sort_faces(candidates, img_bgr.shape, face_sort_type):
            if len(faces) >= max_face_num:
                break
            if self._confirmed(img_bgr, face):
                faces.append(face)
        for face in faces:
            self._fill(img_bgr, face, stages)
        return faces

    def complete(self, img_bgr: np.ndarray, face: Face, stages) -> Face:
        """Fill more stages of an already analysed face (the capture loop embeds only a
        track's best frames, long after detecting every frame)."""
        self._fill(img_bgr, face, frozenset(stages))
        return face

    def _confirmed(self, img: np.ndarray, face: Face) -> bool:
        """A detection below the sure threshold stands only if the mesh net sees a face."""
        if face.score >= self.config.det_score_threshold:
            return True
        with self._timed("verify"):
            face.mesh, face.mesh_score = self.mesh.get(img, face.box, face.kps5)
        return face.mesh_score >= MESH_PRESENCE

    def _fill(self, img: np.ndarray, face: Face, stages: frozenset) -> None:
        if stages & NEEDS_MESH:
            with self._timed("landmarks"):
                if face.mesh is None:
                    face.mesh, face.mesh_score = self.mesh.get(img, face.box, face.kps5)
                face.yaw, face.pitch, face.roll = head_pose(face.mesh)
        chip = None
        if stages & {"quality", "embedding"}:
            with self._timed("align"):
                chip = align_face(img, face.kps5)
        if "quality" in stages:
            with self._timed("quality"):
                face.quality = assess(img, face.mesh, chip)
        if "attributes" in stages:
            with self._timed("attributes"):
                face.age, face.gender, face.gender_probability = self.age_gender.get(img, face.mesh)
                face.expression, face.expression_probability = expr.expression(face.mesh)
                face.faceshape = expr.faceshape(face.mesh)
        if "glasses" in stages:
            with self._timed("glasses"):
                face.glasses = glasses(img, face.mesh)
        if "face_type" in stages:
            with self._timed("face_type"):
                face.face_type = face_type(img, face.kps5)
        if "liveness" in stages:
            with self._timed("liveness"):
                face.liveness = liveness_score(img, face.box, face.kps5)
        if "embedding" in stages:
            with self._timed("embedding"):
                face.embedding = self.embedder.embed_chips([chip])[0]
