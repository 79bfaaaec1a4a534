"""What the capture loop decided about one tracked face, as a record every sink shares.

One Event per decision (not per frame): the loop emits it when a track is recognised,
found unknown, or rejected (blurred, failed liveness ...). The event_id is minted once,
here, and travels with the event to every sink, so a webhook receiver can de-duplicate
at-least-once deliveries and the attendance table can ignore a replayed event.
"""
from __future__ import annotations

import json
import time
import uuid
from dataclasses import asdict, dataclass, field, fields
from datetime import datetime

from edge.errors import MESSAGES

KINDS = ("recognised", "unknown", "rejected")
LIVENESS = ("", "live", "spoof", "undecided")     # "": not checked


def format_iso(ts: float) -> str:
    """Local time with its UTC offset (attendance days are local; the offset keeps it
    unambiguous across DST and for a receiver in another zone)."""
    return datetime.fromtimestamp(ts).astimezone().isoformat(timespec="milliseconds")


def last_decision(event: "Event") -> dict:
    """What a camera's status (and its MQTT state topic) says of its last event."""
    return {"kind": event.kind, "user_id": event.user_id, "group_id": event.group_id, "user_info": event.user_info,
            "score": event.score, "error_code": event.error_code, "error_msg": event.error_msg,
            "liveness": event.liveness, "track_id": event.track_id, "event_id": event.event_id, "time": event.iso}


@dataclass(frozen=True)
class Event:
    kind: str                          # "recognised" | "unknown" | "rejected"
    camera: str = ""
    track_id: int | None = None
    user_id: str = ""                  # recognised: the match; else ""
    group_id: str = ""
    user_info: str = ""
    score: float | None = None         # 0-100, Baidu's scale; the best match for unknown too
    error_code: int = 0                # rejected: the Baidu code (223114 fuzzy, 223120 liveness ...)
    error_msg: str = ""                # filled from edge.errors.MESSAGES when left empty
    reason: str = ""                   # free text for a person reading the log
    frames: int = 0                    # frames of the track the decision used
    liveness: str = ""                 # "live" | "spoof" | "" (not checked)
    liveness_score: float | None = None
    ts: float = field(default_factory=time.time)
    event_id: str = field(default_factory=lambda: uuid.uuid4().hex)

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"event kind {self.kind!r} is not one of {KINDS}")
        if self.liveness not in LIVENESS:
            raise ValueError(f"liveness {self.liveness!r} is not one of {LIVENESS}")
        if self.kind == "recognised" and not self.user_id:
            raise ValueError("a recognised event needs a user_id")
        if self.kind == "rejected" and not self.error_code:
            raise ValueError("a rejected event needs an error_code")
        if self.score is not None and not 0 <= self.score <= 100:
            raise ValueError(f"score {self.score} is outside 0-100")
        if self.error_code and not self.error_msg:
            object.__setattr__(self, "error_msg", MESSAGES.get(self.error_code, "unknown error"))

    @property
    def iso(self) -> str:
        return format_iso(self.ts)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["time"] = self.iso
        return d

    def to_json(self) -> str:
        """One line (no newline inside), UTF-8 names kept readable."""
        return json.dumps(self.to_dict(), ensure_ascii=False, separators=(",", ":"))

    @classmethod
    def from_dict(cls, d: dict) -> "Event":
        """Keys this version does not know ("time", derived from ts, or a newer
        version's fields) are ignored, so an outbox survives an upgrade."""
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})

    @classmethod
    def from_json(cls, line: str) -> "Event":
        return cls.from_dict(json.loads(line))
