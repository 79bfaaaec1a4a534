"""Who owns an indexed face, in memory: what a search answers without asking SQLite.

A 1:N search ends with the owners of its ~12-28 face hits (group_id, user_id,
user_info). Asking SQLite for them cost ~0.4 ms of a 1 ms budget at 1M faces, so
FaceLibrary keeps them here, kept exact by the same change-log replay (sync) that
keeps the index current: the index holds each face's member_ref beside its vector
(FaceIndex owners), this table the member rows, and the groups both ways.

Memory, not Python objects: a member is ~24 bytes of numpy arrays indexed by its
rowid plus its two strings packed into one byte heap (~1M members: ~45 MB, where a
dict of tuples of str would be ~250 MB). Only members that own an indexed face are
needed: a member row reused by SQLite (members' rowids are not AUTOINCREMENT) is
rewritten by the face.add of its new face; the rows of deleted members and replaced
strings are garbage, dropped by retain() (FaceLibrary calls it when they pile up).

Thread-safety: one lock; lookups take it once per search (~28 members), writers
(FaceLibrary.sync, under its own lock) per batch.
"""
from __future__ import annotations

import threading

import numpy as np

_UNKNOWN = -1


class Owners:
    def __init__(self):
        self._lock = threading.Lock()
        self._start = np.full(0, _UNKNOWN, np.int64)  # heap offset of "user_id user_info", by member_ref
        self._ulen = np.zeros(0, np.int32)            # bytes of user_id (UTF-8)
        self._ilen = np.zeros(0, np.int32)            # bytes of user_info
        self._gref = np.zeros(0, np.int64)            # the member's group_ref
        self._heap = bytearray()
        self._garbage = 0                             # heap bytes no member points at
        self._stale = 0                               # members put since the last retain()
        self._group_ref: dict[str, int] = {}
        self._group_id: dict[int, str] = {}

    # -- groups ------------------------------------------------------------------------
    def set_groups(self, rows) -> None:
        """Every group: (group_id, group_ref) rows (start-up, rebuild)."""
        with self._lock:
            self._group_ref = {g: int(r) for g, r in rows}
            self._group_id = {r: g for g, r in self._group_ref.items()}

    def update_groups(self, current: dict[str, int | None]) -> None:
        """The current ref of groups touched by changes (None: the group is gone)."""
        with self._lock:
            for group_id, ref in current.items():
                old = self._group_ref.pop(group_id, None)
                if old is not None and self._group_id.get(old) == group_id:
                    del self._group_id[old]
                if ref is not None:
                    self._group_ref[group_id] = int(ref)
                    self._group_id[int(ref)] = group_id

    def group_refs(self, group_ids) -> list[int]:
        """The refs of the groups that exist (SQLite's group_refs, from memory)."""
        with self._lock:
            return [self._group_ref[g] for g in dict.fromkeys(group_ids) if g in self._group_ref]

    # -- members -----------------------------------------------------------------------
    def put(self, rows) -> None:
        """Members as they are now: (member_ref, group_ref, user_id, user_info) rows."""
        rows = list(rows)
        if not rows:
            return
        refs = np.fromiter((r[0] for r in rows), np.int64, len(rows))
        uids = [r[2].encode() for r in rows]
        infos = [(r[3] or "").encode() for r in rows]
        ulen = np.fromiter(map(len, uids), np.int32, len(rows))
        ilen = np.fromiter(map(len, infos), np.int32, len(rows))
        blob = b"".join(b for pair in zip(uids, infos) for b in pair)
        with self._lock:
            self._fit(int(refs.max()) + 1)
            old = self._start[refs] != _UNKNOWN
            self._garbage += int((self._ulen[refs[old]] + self._ilen[refs[old]]).sum())
            sizes = ulen.astype(np.int64) + ilen
            self._start[refs] = len(self._heap) + np.cumsum(sizes) - sizes
            self._heap += blob
            self._ulen[refs], self._ilen[refs] = ulen, ilen
            self._gref[refs] = np.fromiter((r[1] for r in rows), np.int64, len(rows))
            self._stale += len(rows)

    def update_info(self, rows) -> None:
        """A new user_info for members already here: (member_ref, user_info) rows; others are ignored."""
        with self._lock:
            known = [(ref, info) for ref, info in rows if ref < len(self._start) and self._start[ref] != _UNKNOWN]
        self.put([(ref, int(self._gref[ref]), self._user_id(ref), info) for ref, info in known])

    def _user_id(self, ref: int) -> str:
        s = int(self._start[ref])
        return bytes(self._heap[s:s + int(self._ulen[ref])]).decode()

    def _fit(self, size: int) -> None:
        if size <= len(self._start):
            return
        size = max(size, len(self._start) + len(self._start) // 4 + 1024)
        for name, fill in (("_start", _UNKNOWN), ("_ulen", 0), ("_ilen", 0), ("_gref", 0)):
            old = getattr(self, name)
            new = np.full(size, fill, old.dtype)
            new[: len(old)] = old
            setattr(self, name, new)

    def lookup(self, member_refs) -> list[tuple[str, str, str] | None]:
        """(group_id, user_id, user_info) of each member, None where unknown."""
        out = []
        with self._lock:
            start, heap, n = self._start, self._heap, len(self._start)
            for ref in member_refs:
                ref = int(ref)
                s = int(start[ref]) if 0 < ref < n else _UNKNOWN
                group = self._group_id.get(int(self._gref[ref])) if s != _UNKNOWN else None
                if group is None:
                    out.append(None)
                    continue
                u = s + int(self._ulen[ref])
                out.append((group, heap[s:u].decode(), heap[u:u + int(self._ilen[ref])].decode()))
        return out

    # -- garbage -----------------------------------------------------------------------
    def needs_retain(self, live_faces: int) -> bool:
        """Whether enough members were put (or strings replaced) since the last retain()
        that dropped ones may take a lot of the table."""
        return self._stale > max(50_000, live_faces) or self._garbage > max(1 << 20, len(self._heap) // 2)

    def retain(self, member_refs: np.ndarray) -> None:
        """Keep only these members (the owners of the indexed faces); repack the heap."""
        # Built outside the lock (only the one writer changes the table; searches go on
        # reading the old heap), swapped in under it.
        refs = np.unique(np.asarray(member_refs, np.int64))
        refs = refs[(refs > 0) & (refs < len(self._start))]
        refs = refs[self._start[refs] != _UNKNOWN]
        old, heap = self._heap, bytearray()
        start = np.full(len(self._start), _UNKNOWN, np.int64)
        begins = self._start[refs].tolist()
        sizes = (self._ulen[refs].astype(np.int64) + self._ilen[refs]).tolist()
        start[refs] = np.cumsum(sizes, dtype=np.int64) - np.asarray(sizes, np.int64)
        for s, size in zip(begins, sizes):
            heap += old[s:s + size]
        with self._lock:
            self._start, self._heap, self._garbage, self._stale = start, heap, 0, 0

    def stats(self) -> dict:
        with self._lock:
            n = int((self._start != _UNKNOWN).sum())
            arrays = self._start.nbytes + self._ulen.nbytes + self._ilen.nbytes + self._gref.nbytes
            return {"members": n, "groups": len(self._group_ref), "heap_bytes": len(self._heap),
                    "garbage_bytes": self._garbage, "bytes": arrays + len(self._heap)}
