"""YuNet face detector: boxes, scores and 5 points, over a small image pyramid.

YuNet sees faces of roughly 10..300 px at its input scale. One pass at (up to)
`max_side` finds the small faces; further passes at 1/3 of the previous scale run
only while a face could be too large for the previous pass, so a face that fills a
kiosk frame is found as well as a 20 px face in a crowd.
"""
from __future__ import annotations

import math
import threading
from collections import OrderedDict
from dataclasses import dataclass

import cv2
import numpy as np

from edge.models.runtime import create_session

STRIDES = (8, 16, 32)
LARGEST_FACE = 300   # px at the detector's input where YuNet starts to miss faces
PYRAMID_STEP = 3.0
# Input blobs kept per thread for reuse (least recently used dropped first), in bytes: a video
# frame's passes stay (the loop detects a 1280x720 frame at 640x360, 2.8 MB; a 640x480
# frame at full size is 4.6 MB with its second pass and a level crop); photos of many
# sizes (the API) no longer keep up to 8 blobs of up to 20 MB each in every worker.
BLOB_CACHE_BYTES = 8 << 20
# Passes over inputs larger than this (pixels) run one at a time in the process: one
# over a 1280 px photo takes 40-65 MB of activations, so two server workers detecting
# big photos at once would need both. Video frames (640x480: 0.31 MP; 1920x1080 detected
# at 960x540 for 40 px faces: 0.52 MP) never wait; on a 2-core terminal two big passes
# at once would only share the same cores.
BIG_PASS_PIXELS = 600_000
_big_pass = threading.Lock()


@dataclass(frozen=True)
class Detections:
    boxes: np.ndarray   # N x 4, x1 y1 x2 y2
    scores: np.ndarray  # N
    kps: np.ndarray     # N x 5 x 2

    def __len__(self) -> int:
        return len(self.scores)


def pyramid_scales(h: int, w: int, max_side: int) -> list[float]:
    scales = [min(1.0, max_side / max(h, w))]
    while min(h, w) * scales[-1] > LARGEST_FACE:
        scales.append(scales[-1] / PYRAMID_STEP)
    return scales


def input_shape(h: int, w: int, scale: float) -> tuple[int, int, int, int]:
    """(scaled h, scaled w, padded h, padded w): YuNet wants multiples of 32."""
    sh, sw = max(1, round(h * scale)), max(1, round(w * scale))
    return sh, sw, math.ceil(sh / 32) * 32, math.ceil(sw / 32) * 32


def preprocess(img_bgr: np.ndarray, scale: float, out: np.ndarray | None = None) -> np.ndarray:
    """Resize by `scale`, zero-pad to a multiple of 32, NCHW float32 BGR 0..255; into
    `out` (1 x 3 x padded h x padded w) when given, so a video loop reuses one buffer."""
    h, w = img_bgr.shape[:2]
    sh, sw, ph, pw = input_shape(h, w, scale)
    img = img_bgr if (sh, sw) == (h, w) else cv2.resize(img_bgr, (sw, sh), interpolation=cv2.INTER_AREA)
    if out is None:
        out = np.zeros((1, 3, ph, pw), dtype=np.float32)
    else:
        out[0, :, sh:, :] = 0
        out[0, :, :sh, sw:] = 0
    for c, plane in enumerate(cv2.split(img)):   # plane by plane: half the time of a strided HWC->CHW copy
        out[0, c, :sh, :sw] = plane
    return out


def decode(outputs: dict[str, np.ndarray], in_h: int, in_w: int, score_threshold: float) -> Detections:
    """Turn YuNet's per-stride maps into boxes and points (input-pixel coordinates)."""
    boxes, scores, kps = [], [], []
    for s in STRIDES:
        cols = in_w // s
        cls = np.clip(outputs[f"cls_{s}"][0, :, 0], 0, 1)
        obj = np.clip(outputs[f"obj_{s}"][0, :, 0], 0, 1)
        score = np.sqrt(cls * obj)
        keep = np.nonzero(score >= score_threshold)[0]
        if keep.size == 0:
            continue
        r, c = (keep // cols).astype(np.float32), (keep % cols).astype(np.float32)
        bb = outputs[f"bbox_{s}"][0, keep]
        cx, cy = (c + bb[:, 0]) * s, (r + bb[:, 1]) * s
        bw, bh = np.exp(bb[:, 2]) * s, np.exp(bb[:, 3]) * s
        boxes.append(np.stack([cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2], axis=1))
        kp = outputs[f"kps_{s}"][0, keep].reshape(-1, 5, 2)
        kps.append(np.stack([(kp[..., 0] + c[:, None]) * s, (kp[..., 1] + r[:, None]) * s], axis=-1))
        scores.append(score[keep])
    if not scores:
        return Detections(np.zeros((0, 4), np.float32), np.zeros(0, np.float32), np.zeros((0, 5, 2), np.float32))
    return Detections(np.concatenate(boxes), np.concatenate(scores), np.concatenate(kps))


def iou(a: np.ndarray, b: np.ndarray) -> float:
    """Intersection over union of two x1, y1, x2, y2 boxes."""
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return float(inter / union) if union > 0 else 0.0


def nms(boxes: np.ndarray, scores: np.ndarray, iou_threshold: float) -> np.ndarray:
    """Indices kept by greedy non-maximum suppression, best first."""
    order = np.argsort(-scores)
    area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    keep = []
    while order.size:
        i = order[0]
        keep.append(i)
        xx1 = np.maximum(boxes[i, 0], boxes[order[1:], 0])
        yy1 = np.maximum(boxes[i, 1], boxes[order[1:], 1])
        xx2 = np.minimum(boxes[i, 2], boxes[order[1:], 2])
        yy2 = np.minimum(boxes[i, 3], boxes[order[1:], 3])
        inter = np.clip(xx2 - xx1, 0, None) * np.clip(yy2 - yy1, 0, None)
        iou = inter / (area[i] + area[order[1:]] - inter + 1e-9)
        order = order[1:][iou <= iou_threshold]
    return np.asarray(keep, dtype=np.int64)


class YuNetDetector:
    def __init__(self, model_path, threads: int = 2, score_threshold: float = 0.6,
                 nms_threshold: float = 0.3, max_side: int = 1280):
        self.session = create_session(model_path, threads)
        self.input_name = self.session.get_inputs()[0].name
        self.output_names = [o.name for o in self.session.get_outputs()]
        self.score_threshold = score_threshold
        self.nms_threshold = nms_threshold
        self.max_side = max_side
        self._buffers = threading.local()   # per thread: input shape -> reused input blob

    def _blob(self, img_bgr: np.ndarray, scale: float) -> np.ndarray:
        """The input blob, written into this thread's buffer for that input shape:
        video frames are all one size, so a camera loop allocates no new input."""
        _, _, ph, pw = input_shape(*img_bgr.shape[:2], scale)
        cache = getattr(self._buffers, "blobs", None)
        if cache is None:
            cache = self._buffers.blobs = OrderedDict()
        buf = cache.get((ph, pw))
        if buf is None:
            buf = np.zeros((1, 3, ph, pw), np.float32)
            if buf.nbytes <= BLOB_CACHE_BYTES:
                while cache and sum(b.nbytes for b in cache.values()) + buf.nbytes > BLOB_CACHE_BYTES:
                    cache.popitem(last=False)
                cache[(ph, pw)] = buf
        else:
            cache.move_to_end((ph, pw))
        return preprocess(img_bgr, scale, buf)

    def _run(self, img_bgr: np.ndarray, scale: float) -> Detections:
        blob = self._blob(img_bgr, scale)
        feed = {self.input_name: blob}
        if blob.shape[2] * blob.shape[3] > BIG_PASS_PIXELS:
            with _big_pass:
                raw = self.session.run(self.output_names, feed)
        else:
            raw = self.session.run(self.output_names, feed)
        outs = dict(zip(self.output_names, raw))
        det = decode(outs, blob.shape[2], blob.shape[3], self.score_threshold)
        return Detections(det.boxes / scale, det.scores, det.kps / scale)

    def detect(self, img_bgr: np.ndarray, max_side: int | None = None) -> Detections:
        """Faces of the image; `max_side` overrides the first pass's long side (the
        capture loop detects video frames smaller, sized to the faces it wants)."""
        h, w = img_bgr.shape[:2]
        passes = [self._run(img_bgr, s) for s in pyramid_scales(h, w, max_side or self.max_side)]
        boxes = np.concatenate([p.boxes for p in passes])
        scores = np.concatenate([p.scores for p in passes])
        kps = np.concatenate([p.kps for p in passes])
        keep = nms(boxes, scores, self.nms_threshold)
        return Detections(boxes[keep].astype(np.float32), scores[keep].astype(np.float32),
                          kps[keep].astype(np.float32))
