"""What both API versions share: one analyser and one library per app, per process.

Loading the models takes about a second and ~230 MB, so every AipFace of a process
(whatever its APP_ID or version) uses the same analyser; each APP_ID gets its own
library under <data_dir>/apps/<APP_ID>/ (Baidu: one face library per appid).
"""
from __future__ import annotations

import hashlib
import logging
import threading
from dataclasses import dataclass

import numpy as np

from edge.aip.calls import CURRENT_METHOD
from edge.analysis.app import FaceAnalyser
from edge.analysis.baidu import qualities
from edge.analysis.face import Face
from edge.config import Config, load_config
from edge.errors import EdgeError
from edge.imaging import decode_image
from edge.library.availability import Availability
from edge.library.library import APP_ID_RE, FaceLibrary, discard_library, library_dir, open_library
from edge.library.scores import scale_for
from edge.library.store import FaceRecord, LibraryError
from edge.analysis import embedders
from edge.models.manifest import model_space
from edge.sqlite import StorageError

log = logging.getLogger(__name__)

# A detected (not registered) face's token can be searched for this long (v3 docs).
TOKEN_TTL_S = 3600.0


@dataclass
class Photo:
    """A decoded request image and the faces found in it."""
    img: np.ndarray
    digest: str          # of the decoded pixels: the same picture gives the same tokens
    faces: list[Face]

    def token(self, face: Face) -> str:
        x1, y1, x2, y2 = (int(round(float(v))) for v in face.box)
        return hashlib.md5(f"{self.digest}:{x1},{y1},{x2},{y2}".encode()).hexdigest()


def quality_dict(face: Face) -> dict | None:
    """What a stored face keeps of its quality: v2's qualities plus the pose."""
    if face.quality is None:
        return None
    return {**qualities(face.quality), "yaw": face.yaw, "pitch": face.pitch, "roll": face.roll}


class Runtime:
    def __init__(self, config: Config):
        self.config = config
        # Stored with every face: embeddings of different models must never be compared
        # (an int8 build has its own id, in its fp32 model's embedding space: model_space).
        self.model_id = embedders.model_id(config.models.embedder, config.models_dir, config.models.precision)
        self.dim = embedders.DIMS[config.models.embedder]
        self.scale = scale_for(config.models.embedder)   # its own table: score 80 is FAR ~1e-4
        self.availability = Availability()
        self._upstream: dict[str, object] = {}
        self._upstream_lock = threading.Lock()
        self.push_wake = threading.Event()   # set by a queued enrolment: the pusher sends at once
        self._space_checked: dict[str, object] = {}   # app_id -> the library object found in our space
        self._space_refused: dict[str, tuple] = {}     # app_id -> (library, its last seq, the refusal)

    @property
    def engine(self):
        """The detect engine (models load on first use, once per model setup)."""
        return _shared_engine(self.config)

    @property
    def analyser(self) -> FaceAnalyser:
        return self.engine.analyser

    def library(self, app_id: str) -> FaceLibrary:
        """The app's library; a StorageError (answered with the db error code) while it
        is damaged, missing or cannot be opened. Other apps are not affected."""
        if self.config.library.backend == "postgres":
            return self._pg_library(app_id)
        data_dir = self.config.path(self.config.data_dir)
        try:
            directory = library_dir(data_dir, app_id)
        except LibraryError:
            raise EdgeError(216110, f"appid {app_id!r} is not a valid library name") from None
        self.availability.check(app_id, directory)
        try:
            lib = open_library(data_dir, app_id, dim=self.dim)
        except StorageError as err:
            self.availability.refuse(app_id, directory, err)
            raise
        if lib.fault is not None:  # found damaged while serving: refuse from now on
            discard_library(data_dir, app_id)
            self.availability.refuse(app_id, directory, lib.fault)
            raise lib.fault
        return self._in_our_space(app_id, lib)

    def _in_our_space(self, app_id: str, lib):
        """The library, once it is known to hold only faces this engine's model can be
        compared with. Faces of another embedder (a changed `models:` setting) are never
        searched, mixed with or added to: the library is refused, loudly, until the
        setting is switched back or its people are enrolled again (docs/accuracy.md).
        Checked once a process (a process of another model then refuses it in turn);
        while the library holds no face, on every call."""
        if self._space_checked.get(app_id) is lib:
            return lib
        refused = self._space_refused.get(app_id)
        if refused is not None and refused[0] is lib and refused[1] == lib.store.last_seq():
            raise refused[2]   # nothing changed since: no second count of a large library
        ours = model_space(self.model_id)
        spaces = lib.store.model_spaces()
        if any(s != ours for s in spaces):   # the list is a superset: count again before refusing
            spaces = lib.store.recount_spaces()
        foreign = [s for s in spaces if s != ours]
        if not foreign and lib.dim != self.dim:   # an empty PostgreSQL app made by another embedder
            foreign = [f"an embedder of {lib.dim} values"]
        if foreign:
            log.error("library %s holds faces embedded by %s; this engine embeds with %s", app_id,
                      ", ".join(foreign), ours)
            err = EdgeError(216300, f"library {app_id!r} holds faces embedded by another model "
                                    f"({', '.join(foreign)}); this engine embeds with {ours}, and the two cannot "
                                    "be compared: set models back as they were, or enrol the people again "
                                    "into a new appid")
            self._space_refused[app_id] = (lib, lib.store.last_seq(), err)
            raise err
        if spaces:
            self._space_checked[app_id] = lib
        return lib

    def _pg_library(self, app_id: str):
        """The app's library in the configured PostgreSQL database (docs/scale.md): no
        refusal is remembered, each call tries the pool (which reconnects by itself)."""
        from edge.postgres.library import open_pg_library
        if not APP_ID_RE.match(str(app_id)):
            raise EdgeError(216110, f"appid {app_id!r} is not a valid library name")
        cfg = self.config.library
        return self._in_our_space(app_id, open_pg_library(cfg.dsn, app_id, pool_size=cfg.pool_size,
                                                          timeout_s=cfg.timeout_s, dim=self.dim))

    def upstream(self, app_id: str):
        """The app's upstream outbox when this process is a terminal that pushes its
        enrolments to the hub (`sync.push`, docs/sync.md), else None."""
        sync = self.config.sync
        if not (sync.enabled and sync.push and app_id == sync.app_id):
            return None
        with self._upstream_lock:
            if app_id not in self._upstream:
                from edge.sync.upstream import UpstreamOutbox, outbox_path
                path = outbox_path(self.config.path(self.config.data_dir), app_id)
                path.parent.mkdir(parents=True, exist_ok=True)
                self._upstream[app_id] = UpstreamOutbox(path, sync.push_max_queued)
            return self._upstream[app_id]

    def writable_library(self, app_id: str):
        """What the API writes through: the library, or on a pushing terminal the
        library whose writes go to the hub through the outbox."""
        lib = self.library(app_id)
        outbox = self.upstream(app_id)
        if outbox is None:
            return lib
        from edge.sync.upstream import PushingLibrary
        return PushingLibrary(lib, outbox, self.push_wake.set)

    def photo(self, image, api: str, max_face_num: int, sort_type: int, stages) -> Photo:
        img = decode_image(image, api=api, method=CURRENT_METHOD.get())
        faces = self.analyser.analyse(img, max_face_num, sort_type, stages)
        return Photo(img, hashlib.sha1(np.ascontiguousarray(img)).hexdigest(), faces)

    def record(self, photo: Photo, face: Face) -> FaceRecord:
        return FaceRecord(photo.token(face), face.embedding, self.model_id, quality_dict(face))


_runtimes: dict[tuple, Runtime] = {}
_engines: dict[tuple, object] = {}
_runtimes_lock = threading.Lock()


def _shared_engine(config: Config):
    from edge.service import Engine
    key = (str(config.models_dir), config.models, config.runtime, config.detector)
    with _runtimes_lock:
        if key not in _engines:
            _engines[key] = Engine(config)
        return _engines[key]


def get_runtime(config: Config | None = None) -> Runtime:
    """The process's Runtime for a config (the default config when None)."""
    config = config or load_config()
    key = (str(config.path(config.data_dir)), str(config.models_dir), config.models, config.runtime, config.detector,
           config.library.backend, config.library.dsn)
    with _runtimes_lock:
        rt = _runtimes.get(key)
        if rt is None:
            rt = _runtimes[key] = Runtime(config)
        return rt
