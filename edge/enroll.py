"""Local enrollment: photos (or camera frames) into an app's face library.

Every image goes through the same v3 `addUser` an application would call, so the admin
sees the codes an application would (223114 "face is fuzzy", 222202 "pic not has
face", ...) and enrollment obeys the same quality control. Re-running is idempotent:
a photo already enrolled answers 223105 "face is already exist", reported as
`already`, never as a second face. A photo rejected again with the same code as in
the previous run is reported as such (`repeat`), so a script can tell a clean re-run
from something new going wrong (the exit codes of `edge enroll`, README). After a face
is stored, the library is searched for *other* people scoring at or above
`duplicate_score`: a warning that one person may be enrolled twice under two ids, or
two people look alike enough to be confused.
"""
from __future__ import annotations

import base64
import dataclasses
import hashlib
import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from edge.aip.v3 import AipFace
from edge.config import Config, ConfigError
from edge.errors import EdgeError
from edge.fileio import write_atomic
from edge.guidance import guidance  # noqa: F401 - shared with the console (edge/guidance.py)

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp"}
ALREADY = 223105


@dataclass(frozen=True)
class Duplicate:
    group_id: str
    user_id: str
    score: float


@dataclass(frozen=True)
class Outcome:
    source: str
    group_id: str
    user_id: str
    status: str                 # "enrolled" | "already" | "rejected" | "error" (unreadable file)
    error_code: int = 0
    error_msg: str = ""
    face_token: str = ""
    duplicates: tuple[Duplicate, ...] = ()
    repeat: bool = False        # rejected in the previous run too, with the same code
    digest: str = ""            # sha256 of the photo's bytes

    @property
    def new_problem(self) -> bool:
        """Something went wrong that the previous run did not already report."""
        return self.status == "error" or (self.status == "rejected" and not self.repeat)

    def line(self) -> str:
        text = f"{self.status:8s} {self.group_id}/{self.user_id} {self.source}"
        if self.status in ("rejected", "error"):
            text += f": {self.error_code} {self.error_msg}" if self.error_code else f": {self.error_msg}"
            if self.repeat:
                text += " (as in the previous run)"
        for d in self.duplicates:
            text += f"\n         WARNING: also matches {d.group_id}/{d.user_id} at score {d.score:.1f}"
        return text


def folder_items(root: Path) -> Iterator[tuple[str, str, Path]]:
    """(group_id, user_id, photo) for root/<group>/<user>/*.jpg, in a stable order."""
    for group_dir in sorted(p for p in Path(root).iterdir() if p.is_dir()):
        for user_dir in sorted(p for p in group_dir.iterdir() if p.is_dir()):
            for photo in sorted(p for p in user_dir.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES):
                yield group_dir.name, user_dir.name, photo


class Enroller:
    def __init__(self, config: Config, app_id: str, *, quality: str = "NORMAL", liveness: str = "NONE",
                 duplicate_score: float = 80.0):
        self.app_id = app_id
        self.client = AipFace(app_id, "", "", config=config)
        try:  # a damaged library stops the enrollment here, with its file and remedy (a StorageError)
            replica = self.library.store.replica_state()
        except EdgeError:
            replica = None  # an invalid app id is answered with every photo, as before
        pushing = replica is not None and self.client._rt.upstream(app_id) is not None
        if replica is not None and not pushing:  # a replica changes only through its hub (docs/sync.md)
            raise ConfigError(f"edge enroll: the library of app {app_id} follows {replica.get('hub')}: "
                              f"enrol at the hub, or set sync.push (docs/sync.md)")
        self.rejections = RejectionLog(config.path(config.data_dir) / "enroll" / f"{app_id}-rejected.json")
        self.options = {"quality_control": quality, "liveness_control": liveness}
        self.scale = self.client._rt.scale
        self.duplicate_similarity = self.scale.score_to_similarity(duplicate_score)

    def enroll(self, group_id: str, user_id: str, image: bytes, source: str, user_info: str | None = None) -> Outcome:
        options = {**self.options, "user_info": user_info if user_info is not None else user_id}
        answer = self.client.addUser(base64.b64encode(image).decode(), "BASE64", group_id, user_id, options)
        code = answer["error_code"]
        if code == ALREADY:
            return Outcome(source, group_id, user_id, "already", code, answer["error_msg"])
        if code:
            return Outcome(source, group_id, user_id, "rejected", code, answer["error_msg"])
        token = answer["result"]["face_token"]
        return Outcome(source, group_id, user_id, "enrolled", 0, "", token, self._duplicates(user_id, token))

    @property
    def library(self):
        """The app's FaceLibrary, as the client's calls use it (opened on first use)."""
        return self.client._lib

    def _duplicates(self, user_id: str, token: str) -> tuple[Duplicate, ...]:
        lib = self.library
        embedding = lib.store.token_embedding(token, float("inf"))
        if embedding is None:
            return ()
        matches = lib.search(embedding, None, 4, self.duplicate_similarity)
        return tuple(Duplicate(m.group_id, m.user_id, self.scale.score(m.similarity)) for m in matches if m.user_id != user_id)

    def enroll_camera(self, camera, group_id: str, user_id: str, *, frames: int = 5, timeout_s: float = 60.0,
                      say=print, min_pose_delta: float = 4.0, patience_s: float = 1.5) -> list[Outcome]:
        """Take `frames` good frames of one person from a started Camera and enrol them.

        The person is guided with what is wrong (no face, two faces, too small, one of
        the quality codes); after the first good frame, frames are taken when the head
        pose differs by `min_pose_delta` degrees from every frame taken, or, failing
        that, `patience_s` after the last one (variety of pose, expression and light
        makes the template robust)."""
        import cv2

        analyser = self.client._rt.analyser
        level = self.options["quality_control"]
        taken: list[tuple[float, float, float]] = []   # (yaw, pitch, time) of frames taken
        outcomes: list[Outcome] = []
        seq, last_hint, end = 0, None, time.monotonic() + timeout_s
        while len(taken) < frames and time.monotonic() < end:
            frame = camera.latest(after_seq=seq, timeout=1.0)
            if frame is None:
                continue
            seq = frame.seq
            faces = analyser.analyse(frame.image, 2, 1, {"landmarks", "quality"}, rotated=False)   # video
            hint = guidance(faces, frame.image.shape, level)
            if hint is None:
                face = faces[0]
                now = time.monotonic()
                varied = all(max(abs(face.yaw - y), abs(face.pitch - p)) >= min_pose_delta for y, p, _ in taken)
                if not taken or varied or now - taken[-1][2] >= patience_s:
                    ok, jpeg = cv2.imencode(".jpg", frame.image, [cv2.IMWRITE_JPEG_QUALITY, 95])
                    outcome = self.enroll(group_id, user_id, jpeg.tobytes(), f"camera:{frame.camera}#{frame.seq}")
                    outcomes.append(outcome)
                    if outcome.status == "enrolled":
                        taken.append((face.yaw, face.pitch, now))
                        hint = f"Got it ({len(taken)}/{frames})" + (
                            ": now turn your head a little" if len(taken) < frames else ": done")
                    elif outcome.status == "rejected":
                        hint = f"Not taken: {outcome.error_msg}"
                else:
                    hint = "Turn your head a little to the left or right"
            if hint != last_hint:
                say(hint)
                last_hint = hint
        if len(taken) < frames:
            say(f"Timed out with {len(taken)} of {frames} frames")
        return outcomes

    def enroll_folder(self, root: Path, progress=None) -> list[Outcome]:
        """Every photo of the tree; rejections are remembered until the next run (RejectionLog)."""
        items = list(folder_items(root))
        previous = self.rejections.load()
        outcomes = []
        for group_id, user_id, photo in (progress(items) if progress else items):
            try:
                data = photo.read_bytes()
            except OSError as exc:
                outcomes.append(Outcome(str(photo), group_id, user_id, "error", error_msg=exc.strerror or str(exc)))
                continue
            digest = hashlib.sha256(data).hexdigest()
            outcome = dataclasses.replace(self.enroll(group_id, user_id, data, str(photo)), digest=digest)
            if outcome.status == "rejected" and previous.get(digest) == outcome.error_code:
                outcome = dataclasses.replace(outcome, repeat=True)
            log.log(logging.WARNING if outcome.duplicates else logging.INFO, "%s", outcome.line())
            outcomes.append(outcome)
        self.rejections.save(outcomes)
        return outcomes


class RejectionLog:
    """The photos the last folder run rejected (sha256 -> code), in
    <data_dir>/enroll/<APP_ID>-rejected.json: outside the library, written atomically."""

    def __init__(self, path: Path):
        self.path = Path(path)

    def load(self) -> dict[str, int]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
            return {str(k): int(v["error_code"]) for k, v in data.items()}
        except FileNotFoundError:
            return {}
        except (OSError, ValueError, TypeError, KeyError, AttributeError):
            log.warning("%s is unreadable: every rejection counts as new this run", self.path)
            return {}

    def save(self, outcomes: list[Outcome]) -> None:
        rejected = {o.digest: {"error_code": o.error_code, "source": o.source}
                    for o in outcomes if o.status == "rejected" and o.digest}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(self.path, json.dumps(rejected, indent=1, sort_keys=True).encode())
