"""What to tell the person in front of a camera: one place for `edge enroll --camera`,
the console's capture enrolment, the live view and the kiosk page.

The words follow the v3 quality codes a frame fails (223114 fuzzy: "Hold still", ...),
the face's size in the frame, and the liveness verdict (the HIGH challenge's prompt).
"""
from __future__ import annotations

MIN_FACE_SHARE = 0.18   # face height / frame height below this: "come closer"
HINTS = {223114: "Hold still", 223115: "More light, please", 223116: "Move into the middle of the picture",
         223129: "Look straight at the camera"}
NO_FACE = "Step in front of the camera and look at it"
MANY_FACES = "Only one person in front of the camera, please"
COME_CLOSER = "Come closer"
PROVE_LIVE = "Blink, or turn your head a little"


def code_hint(code: int | None) -> str | None:
    """The words for a failed quality code (None: no code, or none the person can fix)."""
    from edge.analysis.gating import OCCLUSION_CODES
    if code in HINTS:
        return HINTS[code]
    if code in OCCLUSION_CODES.values():
        part = next(p for p, c in OCCLUSION_CODES.items() if c == code).replace("_", " ")
        return f"Uncover your face: the {part} is hidden"
    return None


def face_guidance(face, shape, code: int | None) -> str | None:
    """One face of a frame of `shape` that failed quality `code` (or None): what to do."""
    if face.height < MIN_FACE_SHARE * shape[0]:
        return COME_CLOSER
    return code_hint(code)


def guidance(faces, shape, level: str) -> str | None:
    """What to tell the person in front of the camera, or None when the frame is good
    (enrolment: exactly one face, large enough, passing quality `level`)."""
    from edge.analysis.gating import quality_failure
    if not faces:
        return NO_FACE
    if len(faces) > 1:
        return MANY_FACES
    return face_guidance(faces[0], shape, quality_failure(faces[0], level))


def liveness_guidance(verdict) -> str | None:
    """A track's liveness verdict (MotionVerdict) still forming: the HIGH challenge's
    prompt, or the motion that lets LOW/NORMAL tell a face from a photo."""
    if verdict is None or verdict.state != "undecided":
        return None
    return verdict.prompt or (None if verdict.challenge else PROVE_LIVE)
