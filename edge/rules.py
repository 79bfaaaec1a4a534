"""Request rules of both API versions: id charsets and lengths, option ranges.

Each parser takes the error code its API version uses for that parameter and raises
EdgeError with it, so v2 and v3 share one rule set and differ only in codes.
"""
from __future__ import annotations

import re

from edge.analysis.gating import CONTROL_LEVELS
from edge.errors import EdgeError

ID_RE = re.compile(r"^[A-Za-z0-9_]+$")   # "由数字、字母、下划线组成"
USER_ID_MAX_BYTES = 128
GROUP_ID_MAX_BYTES = 128
GROUP_ID_IN_LIST_MAX = 48                # each id of a comma-separated multi-group list
USER_INFO_MAX_BYTES = 256
GROUP_LIST_MAX = 10                      # v3 group_id_list
PAGE_DEFAULT, PAGE_MAX = 100, 1000       # start/num (v2), start/length (v3)
IDENTIFY_TOP_MAX = 5                     # v2 identify user_top_num
MULTI_IDENTIFY_TOP_MAX = 20              # v2 multi-identify user_top_num
DETECT_TOP_MAX = 10                      # v2 multi-identify detect_top_num, v3 max_face_num
INT32_MAX = 2**31 - 1                    # the largest count a request may name (a string in v2)
V2_DETECT_FACES_CAP = 50                 # v2 detect/faceverify max_face_num: no documented maximum, so any
                                         # count is accepted; at most this many faces are analysed (cost bound)
MAX_USER_NUM = 50                        # v3 search max_user_num


def text(value, code: int, name: str) -> str:
    if isinstance(value, bytes):
        try:
            value = value.decode("utf-8")
        except UnicodeDecodeError:
            raise EdgeError(code, f"{name} is not UTF-8") from None
    if not isinstance(value, str):
        raise EdgeError(code, f"{name} must be a string")
    return value


def user_id(value, code: int, name: str = "user_id") -> str:
    value = text(value, code, name)
    if not ID_RE.match(value) or len(value.encode()) > USER_ID_MAX_BYTES:
        raise EdgeError(code, f"{name} must be 1-{USER_ID_MAX_BYTES} letters, digits or underscores")
    return value


def group_ids(value, code: int, *, max_groups: int | None = None, name: str = "group_id") -> list[str]:
    """A group id, or a comma-separated list of them (each at most 48 characters)."""
    value = text(value, code, name)
    ids = value.split(",")
    limit = GROUP_ID_MAX_BYTES if len(ids) == 1 else GROUP_ID_IN_LIST_MAX
    if any(not ID_RE.match(g) or len(g.encode()) > limit for g in ids):
        raise EdgeError(code, f"{name}: each id must be letters, digits or underscores, at most {limit}")
    if max_groups is not None and len(ids) > max_groups:
        raise EdgeError(code, f"{name}: at most {max_groups} groups")
    return list(dict.fromkeys(ids))


def user_info(value, code: int) -> str:
    value = text("" if value is None else value, code, "user_info")
    if len(value.encode()) > USER_INFO_MAX_BYTES:
        raise EdgeError(code, f"user_info longer than {USER_INFO_MAX_BYTES} bytes")
    return value


def integer(options: dict, name: str, default: int, lo: int, hi: int, code: int) -> int:
    return _bounded(options, name, default, lo, hi, code, int)


def number(options: dict, name: str, default: float, lo: float, hi: float, code: int) -> float:
    return _bounded(options, name, default, lo, hi, code, float)


def _bounded(options: dict, name: str, default, lo, hi, code: int, cast):
    """options[name] (or default) as `cast`, within [lo, hi]; numbers may come as text,
    as the v2 SDK sends them."""
    value = options.get(name, default)
    if isinstance(value, bool) or value is None:
        raise EdgeError(code, f"{name} must be a number")
    try:
        x = cast(str(value).strip())
    except ValueError:
        raise EdgeError(code, f"{name} must be {'an integer' if cast is int else 'a number'}") from None
    if not lo <= x <= hi:
        raise EdgeError(code, f"{name} must be in [{lo}, {hi}]")
    return x


def level(options: dict, name: str, code: int) -> str:
    """A control level NONE/LOW/NORMAL/HIGH (default NONE)."""
    value = options.get(name, "NONE")
    if not isinstance(value, str) or value.upper() not in CONTROL_LEVELS:
        raise EdgeError(code, f"{name} must be one of {', '.join(CONTROL_LEVELS)}")
    return value.upper()


def required(options: dict, names: tuple[str, ...], code: int) -> None:
    missing = [n for n in names if options.get(n) in (None, "")]
    if missing:
        raise EdgeError(code, f"missing {', '.join(missing)}")
