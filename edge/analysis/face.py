"""The Face record: everything the analyser knows about one detected face.

Filled stage by stage by FaceAnalyser (detector -> landmarks -> pose/quality ->
attributes/glasses/face type -> liveness -> embedding); `edge.analysis.baidu.face_to_baidu`
renders it as Baidu's detect JSON. Coordinates are pixels of the (EXIF-upright) input image.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from edge.analysis.face_type import FaceType
from edge.analysis.glasses import Glasses


@dataclass
class Occlusion:
    left_eye: float = 0.0
    right_eye: float = 0.0
    nose: float = 0.0
    mouth: float = 0.0
    left_cheek: float = 0.0
    right_cheek: float = 0.0
    chin: float = 0.0


@dataclass
class Quality:
    occlusion: Occlusion
    blur: float          # 0 sharp .. 1 blurred
    illumination: float  # mean luma (Y of YUV) of the face, 0..255
    completeness: float  # share of the face inside the image: 1 complete .. 0


@dataclass
class Face:
    box: np.ndarray                 # x1, y1, x2, y2 (float); found turned: centred on the face, its own sides
    score: float                    # detector confidence 0..1
    kps5: np.ndarray                # 5x2 in the face's upright frame: left eye, right eye (as seen), nose, mouth L, R
    turn: int = 0                   # clockwise turn (0, 45, ... 315 deg) of the detection pass that found it
    mesh: np.ndarray | None = None  # 468x3 (x, y in image pixels; z relative depth, same scale)
    mesh_score: float = 0.0         # face-presence probability from the mesh net
    yaw: float = 0.0
    pitch: float = 0.0
    roll: float = 0.0
    quality: Quality | None = None
    age: float | None = None
    gender: str | None = None
    gender_probability: float | None = None
    expression: int | None = None
    expression_probability: float | None = None
    faceshape: list[dict] = field(default_factory=list)
    liveness: float | None = None
    glasses: Glasses | None = None
    face_type: FaceType | None = None  # human / cartoon
    embedding: np.ndarray | None = None  # 128-d, L2-normalised

    @property
    def width(self) -> float:
        return float(self.box[2] - self.box[0])

    @property
    def height(self) -> float:
        return float(self.box[3] - self.box[1])

    @property
    def upright_size(self) -> tuple[float, float]:
        """(width, height) of the face in its own upright frame (a sideways face's box is
        taller than wide in the image when the face itself is wider)."""
        return (self.height, self.width) if self.turn in (90, 270) else (self.width, self.height)

    @property
    def area(self) -> float:
        return self.width * self.height

    @property
    def center(self) -> tuple[float, float]:
        return (float(self.box[0] + self.box[2]) / 2, float(self.box[1] + self.box[3]) / 2)
