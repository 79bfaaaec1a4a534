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

import cv2
import numpy as np

from edge.analysis import expression as expr
from edge.analysis.align import align_face
from edge.analysis.attributes import AgeGender
from edge.analysis.crops import face_crop
from edge.analysis.detector import Detections, YuNetDetector, iou
from edge.analysis import embedders
from edge.analysis.embedder import SFaceEmbedder
from edge.analysis.face import Face
from edge.analysis.face_type import face_type
from edge.analysis.glasses import glasses
from edge.analysis.landmarks import EYE_CORNERS, INPUT as MESH_INPUT, FaceMesh, crop_transform, eye_angle
from edge.analysis.liveness import liveness_score
from edge.analysis.orientation import (
    EIGHTH_TURNS, FOLLOW_ROLL_DEG, QUARTER_TURNS, follow_roll, map_boxes, map_points, roll_gap, turn,
    wrap_deg,
)
from edge.analysis.pose import head_pose
from edge.analysis.quality import assess
from edge.models.manifest import default_models_dir, runtime_files

log = logging.getLogger(__name__)

ALL_STAGES = frozenset({"landmarks", "quality", "attributes", "glasses", "face_type", "liveness", "embedding"})
# Stages each needs first. The embedding needs the mesh's roll to align a rolled face.
NEEDS_MESH = frozenset({"landmarks", "quality", "attributes", "glasses", "embedding"})


@dataclass
class AnalyserConfig:
    models_dir: Path | None = None
    threads: int = 2
    det_score_threshold: float = 0.7   # kept on the detector's word alone
    det_verify_threshold: float = 0.3  # kept if the mesh net also sees a face
    det_max_side: int = 1280
    rotated_retry: bool = True         # photos with no sure upright face: look at quarter turns too
    precision: str = "fp32"            # models.precision: the build each model runs (fp32 or int8)
    embedder: str = embedders.DEFAULT  # models.embedder: what makes the stored vector


# Face-presence probability the mesh net must give a low-confidence detection. The
# mesh is not used to veto confident detections: it reads faces cut by the image
# border (selfies) as absent.
MESH_PRESENCE = 0.5
# A photo is detected again turned by 90, 180 and 270 deg unless its upright pass finds a
# face this sure; then by 45, 135, 225 and 315 deg if a candidate stands but still none
# is sure. Upright faces score 0.91-0.94 (LFW, 10th-90th percentile; 1 % below 0.9), faces upside down
# 0.55-0.88, sideways faces below 0.7, faces at 45 deg 0.70-0.90 (docs/fields.md). The
# mesh cannot stand in for the score: it fits an upright face on a quarter of the faces
# upside down and on some at 45 deg.
SURE_UPRIGHT = 0.9
# The turned passes run at this share of the upright pass's size: a quarter of its cost
# each; rotated faces smaller than ~2x the upright pass's smallest (~20 px of a 1280 px
# photo) are not looked for.
TURNED_SCALE = 0.5
# A face belongs to the pass that found it when its measured roll is within this of the
# pass's upright (passes are 45 deg apart; the mesh reads a roll within ~2 deg).
PASS_ROLL_DEG = 60.0


def _faces(det: Detections, angle: int = 0, back: np.ndarray | None = None) -> list[Face]:
    """Face candidates of a detection pass over the image turned by `angle` (`back`
    maps the turned image's coordinates to the original's)."""
    boxes, kps = det.boxes, det.kps
    if angle:
        boxes, kps = map_boxes(boxes, back, angle), map_points(kps, back)
    return [Face(box=boxes[i], score=float(det.scores[i]), kps5=kps[i], turn=angle) for i in range(len(det))]


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
        files = runtime_files(models_dir, cfg.precision)
        self.detector = YuNetDetector(files["detector"], cfg.threads,
                                      min(cfg.det_verify_threshold, cfg.det_score_threshold),
                                      max_side=cfg.det_max_side)
        self.mesh = FaceMesh(files["landmarks"], cfg.threads)
        self.sface = SFaceEmbedder(files["embedder"], cfg.threads)   # the SFace net (tools compare it)
        self.embedder = embedders.build(cfg.embedder, files, cfg.threads, sface=self.sface)
        self.age_gender = AgeGender(files["age"], files["gender"], cfg.threads)
        self.timings: dict[str, float] = {}

    @contextmanager
    def _timed(self, stage: str):
        t0 = time.perf_counter()
        yield
        self.timings[stage] = self.timings.get(stage, 0.0) + (time.perf_counter() - t0) * 1000

    def analyse(self, img_bgr: np.ndarray, max_face_num: int = 1, face_sort_type: int = 0,
                stages=ALL_STAGES, det_max_side: int | None = None, rotated: bool | None = None) -> list[Face]:
        """Faces in the image, sorted and cut to max_face_num, with the asked stages filled.
        `det_max_side` overrides the detector's first-pass size for this image; `rotated`
        whether to look for in-plane rotated faces when no upright one is sure (default:
        the config's detector.rotated_retry; the capture loop never does)."""
        self.timings = {}
        stages = frozenset(stages)
        with self._timed("detect"):
            candidates = _faces(self.detector.detect(img_bgr, det_max_side))
        if self.config.rotated_retry if rotated is None else rotated:
            if not any(f.score >= SURE_UPRIGHT for f in candidates):
                with self._timed("detect_rotated"):
                    candidates = self._with_turned(img_bgr, candidates, det_max_side)
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

    def _with_turned(self, img: np.ndarray, upright: list[Face], det_max_side: int | None) -> list[Face]:
        """The upright candidates plus those of the image turned by quarter turns (at
        TURNED_SCALE), mapped back; then by the odd eighths if a candidate stands but none
        is sure (a face near 45 deg)."""
        faces = list(upright)
        h, w = img.shape[:2]
        scale = min(1.0, TURNED_SCALE * (det_max_side or self.detector.max_side) / max(h, w))
        small = img if scale == 1.0 else cv2.resize(img, (max(1, round(w * scale)), max(1, round(h * scale))),
                                                    interpolation=cv2.INTER_AREA)
        for angles in (QUARTER_TURNS, EIGHTH_TURNS):
            for angle in angles:
                turned, back = turn(small, angle)
                det = self.detector.detect(turned, max(turned.shape[:2]))
                faces += _faces(det, angle, back / (small.shape[1] / w))
            if not faces or any(f.score >= SURE_UPRIGHT for f in faces):
                break
        return self._merge(img, faces)

    def _merge(self, img: np.ndarray, faces: list[Face]) -> list[Face]:
        """One candidate per face. Where passes of different turns saw the same face, the
        one the mesh net sees as a face wins (a face upside down can score 0.8 upright
        and less at half size in its own pass), then the higher score."""
        order = sorted(range(len(faces)), key=lambda i: -faces[i].score)
        boxes = np.stack([f.box for f in faces]) if faces else np.zeros((0, 4), np.float32)
        taken, out = set(), []
        for i in order:
            if i in taken:
                continue
            same = [j for j in order if j not in taken and iou(boxes[i], boxes[j]) > self.detector.nms_threshold]
            taken.update(same)
            rivals = [i] + [j for j in same if faces[j].turn != faces[i].turn]   # best score first
            if len(rivals) > 1:
                i = next((j for j in rivals if self._mesh_sees(img, faces[j], PASS_ROLL_DEG)), i)
            out.append(faces[i])
        return out

    def _level_points(self, img: np.ndarray, face: Face) -> np.ndarray:
        """The 5 points of a rolled face, detected again on its crop turned upright by the
        mesh's roll (one small YuNet pass), in image pixels."""
        m, _ = crop_transform(face.box, face.roll)
        crop = cv2.warpAffine(img, m, (MESH_INPUT, MESH_INPUT), flags=cv2.INTER_LINEAR,
                              borderMode=cv2.BORDER_CONSTANT)
        det = self.detector.detect(crop, MESH_INPUT)
        if len(det) == 0:
            return follow_roll(face.kps5, face.roll)
        centres = (det.boxes[:, :2] + det.boxes[:, 2:]) / 2
        best = int(np.argmin(np.linalg.norm(centres - MESH_INPUT / 2, axis=1)))
        return map_points(det.kps[best], cv2.invertAffineTransform(m))

    def _mesh_sees(self, img: np.ndarray, face: Face, within: float | None = None) -> bool:
        """The mesh net sees a face there and, given `within`, rolled no more than that
        from the upright of the pass that found it (the mesh's refinement can turn to a
        face's true roll from a pass that saw it askew; that pass's frame is then wrong)."""
        if face.mesh is None:
            with self._timed("verify"):
                face.mesh, face.mesh_score = self.mesh.get(img, face.box, face.kps5)
        if face.mesh_score < MESH_PRESENCE:
            return False
        roll = eye_angle(face.mesh[EYE_CORNERS[0], :2], face.mesh[EYE_CORNERS[1], :2])
        return within is None or abs(wrap_deg(roll + face.turn)) <= within

    def _confirmed(self, img: np.ndarray, face: Face) -> bool:
        """A detection below the sure threshold, or found only on a turned image, stands
        only if the mesh net sees a face (a turned image's patterns that pass for a face
        are never looked at in the upright pass)."""
        if face.score >= self.config.det_score_threshold and face.turn == 0:
            return True
        return self._mesh_sees(img, face, PASS_ROLL_DEG if face.turn else None)

    def _fill(self, img: np.ndarray, face: Face, stages: frozenset) -> None:
        if stages & NEEDS_MESH:
            with self._timed("landmarks"):
                if face.mesh is None:
                    face.mesh, face.mesh_score = self.mesh.get(img, face.box, face.kps5)
                face.yaw, face.pitch, face.roll = head_pose(face.mesh, -face.turn)
                if abs(roll_gap(face.kps5, face.roll)) > FOLLOW_ROLL_DEG:
                    face.kps5 = self._level_points(img, face)
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
        cue_crop = None   # the fixed-scale crop face type and liveness both read: cut once
        if "face_type" in stages:
            with self._timed("face_type"):
                cue_crop = face_crop(img, face.kps5)
                face.face_type = face_type(img, face.kps5, cue_crop)
        if "liveness" in stages:
            with self._timed("liveness"):
                human = face.face_type.human if face.face_type is not None else None
                face.liveness = liveness_score(img, face.box, face.kps5, human, cue_crop)
        if "embedding" in stages:
            with self._timed("embedding"):
                face.embedding = self.embedder.embed(self.embedder.cut(img, face, chip))
