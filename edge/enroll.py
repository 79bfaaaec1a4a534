"""Local enrollment: photos (or camera frames) into an app's face library.

Every image goes through the same v3 `addUser` an application would call, so the admin
sees the codes an application would (223114 "face is fuzzy", 222202 "pic not has
face", ...) and enrollment obeys the same quality control. Re-running is idempotent:
a photo already enrolled answers 223105 "face is already exist", reported as
`already`, never as a second face. After a face is stored, the library is searched
for *other* people scoring at or above `duplicate_score`: a warning that one person
may be enrolled twice under two ids, or two people look alike enough to be confused.
"""
from __future__ import annotations

import base64
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from edge.aip.v3 import AipFace
from edge.config import Config
from edge.errors import MESSAGES
from edge.library.scores import score_to_similarity
from edge.rules import ID_RE

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
    status: str                 # "enrolled" | "already" | "rejected"
    error_code: int = 0
    error_msg: str = ""
    face_token: str = ""
    duplicates: tuple[Duplicate, ...] = ()

    def line(self) -> str:
        text = f"{self.status:8s} {self.group_id}/{self.user_id} {self.source}"
        if self.error_code and self.status == "rejected":
            text += f": {self.error_code} {self.error_msg}"
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
        self.client = AipFace(app_id, "", "", config=config)
        self.options = {"quality_control": quality, "liveness_control": liveness}
        self.duplicate_similarity = score_to_similarity(duplicate_score)

    def enroll(self, group_id: str, user_id: str, image: bytes, source: str, user_info: str | None = None) -> Outcome:
        for name, value in (("group", group_id), ("user", user_id)):
            if not ID_RE.match(value):
                code = 222006 if name == "group" else 222018
                return Outcome(source, group_id, user_id, "rejected", code,
                               f"{MESSAGES[code]}: a {name} id is letters, digits and underscores")
        options = {**self.options, "user_info": user_info if user_info is not None else user_id}
        answer = self.client.addUser(base64.b64encode(image).decode(), "BASE64", group_id, user_id, options)
        code = answer["error_code"]
        if code == ALREADY:
            return Outcome(source, group_id, user_id, "already", code, answer["error_msg"])
        if code:
            return Outcome(source, group_id, user_id, "rejected", code, answer["error_msg"])
        token = answer["result"]["face_token"]
        return Outcome(source, group_id, user_id, "enrolled", 0, "", token, self._duplicates(user_id, token))

    def _duplicates(self, user_id: str, token: str) -> tuple[Duplicate, ...]:
        from edge.aip.runtime import score
        lib = self.client._lib
        embedding = lib.store.token_embedding(token, float("inf"))
        if embedding is None:
            return ()
        matches = lib.search(embedding, None, 4, self.duplicate_similarity)
        return tuple(Duplicate(m.group_id, m.user_id, score(m.similarity)) for m in matches if m.user_id != user_id)

    def enroll_folder(self, root: Path, progress=None) -> list[Outcome]:
        items = list(folder_items(root))
        outcomes = []
        for group_id, user_id, photo in (progress(items) if progress else items):
            outcome = self.enroll(group_id, user_id, photo.read_bytes(), str(photo))
            log.log(logging.WARNING if outcome.duplicates else logging.INFO, "%s", outcome.line())
            outcomes.append(outcome)
        return outcomes
