"""Why, in words: what a Baidu code the loop or an enrolment answered means to the person
at the door and the installer beside it (the live view, the kiosk page, enrolment)."""
from __future__ import annotations

from edge.errors import MESSAGES

LIVENESS = ("Liveness refused it: in run.liveness_timeout_s the face showed no blink and no 3-D head motion, "
            "or it moved like a flat surface (a photo or a screen). The demo camera films a photo moved "
            "on screen, so run.liveness_control NORMAL refuses it, as it must at a door; "
            "run.liveness_control: NONE lets the demo be named (never at a real door).")
WHY = {
    223120: LIVENESS,
    223114: "The face is blurred (motion or focus): hold still, or add light.",
    223115: "The face is too dark or too bright: more even light, please.",
    223116: "Part of the face is outside the picture: step into the middle.",
    223129: "The head is turned too far: look straight at the camera.",
    223113: "Part of the face is covered (a mask, a hand, hair).",
    222202: "No face in the picture: step in front of the camera.",
    223105: "This face is already enrolled for this person.",
    222018: "The user id: letters, digits and _ only, up to 128 characters.",
    222006: "The group id: letters, digits and _ only, up to 48 characters.",
    222010: "The name (user_info) is too long: up to 256 bytes.",
    222200: "A field is missing or not valid.",
}
for _code in range(223121, 223128):
    WHY[_code] = "Part of the face is covered: " + MESSAGES.get(_code, "occlusion") + "."
KIOSK = {223120: "Not let in: a photo or a screen is not a person. Blink, or turn your head a little."}
NOT_RECOGNISED = "Not recognised"


def explain(code: int, msg: str = "") -> str:
    """The installer's explanation of `code` (its Baidu message when there is none)."""
    return WHY.get(code) or msg or MESSAGES.get(code, f"error {code}")


def kiosk_text(code: int) -> str:
    """What the kiosk tells the person a refusal was for (short, readable from 1.5 m)."""
    return KIOSK.get(code) or f"Not let in: {WHY.get(code) or MESSAGES.get(code, 'refused')}"
