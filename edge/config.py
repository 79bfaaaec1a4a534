"""Configuration: YAML validated into typed, frozen dataclasses at start-up.

Unknown keys and wrong types are refused with a message naming the key, so a typo in
the service's config stops it at start rather than being silently ignored.
"""
from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from edge.models.manifest import REPO_ROOT

DEFAULT_CONFIG = REPO_ROOT / "config" / "edge.yaml"


class ConfigError(ValueError):
    pass


@dataclass(frozen=True)
class ModelsConfig:
    dir: str = "models"


@dataclass(frozen=True)
class RuntimeConfig:
    threads: int = 2


@dataclass(frozen=True)
class DetectorConfig:
    score_threshold: float = 0.7
    verify_threshold: float = 0.3
    max_side: int = 1280


@dataclass(frozen=True)
class RunConfig:
    source: str = "demo"
    max_face_num: int = 10


@dataclass(frozen=True)
class Config:
    data_dir: str = "var"
    models: ModelsConfig = field(default_factory=ModelsConfig)
    runtime: RuntimeConfig = field(default_factory=RuntimeConfig)
    detector: DetectorConfig = field(default_factory=DetectorConfig)
    run: RunConfig = field(default_factory=RunConfig)
    base_dir: Path = REPO_ROOT

    def path(self, value: str) -> Path:
        p = Path(value).expanduser()
        return p if p.is_absolute() else self.base_dir / p

    @property
    def models_dir(self) -> Path:
        return Path(os.environ["EDGE_MODELS_DIR"]) if os.environ.get("EDGE_MODELS_DIR") else self.path(self.models.dir)


def _build(cls, raw, where: str):
    if raw is None:
        return cls()
    if not isinstance(raw, dict):
        raise ConfigError(f"{where or 'config'}: expected a mapping, got {type(raw).__name__}")
    fields = {f.name: f for f in dataclasses.fields(cls) if f.name != "base_dir"}
    unknown = set(raw) - set(fields)
    if unknown:
        raise ConfigError(f"{where or 'config'}: unknown key(s) {', '.join(sorted(unknown))}")
    kwargs = {}
    for name, value in raw.items():
        f, key = fields[name], f"{where}.{name}" if where else name
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
        if dataclasses.is_dataclass(default):
            kwargs[name] = _build(type(default), value, key)
        elif isinstance(default, bool) or not isinstance(value, (int, float, str)) or \
                (isinstance(default, (int, float)) and isinstance(value, str)) or \
                (isinstance(default, str) and not isinstance(value, str)) or \
                (type(default) is int and not isinstance(value, int)):
            raise ConfigError(f"{key}: expected {type(default).__name__}, got {value!r}")
        else:
            kwargs[name] = type(default)(value)
    return cls(**kwargs)


def validate(cfg: Config) -> Config:
    if not 1 <= cfg.runtime.threads <= 64:
        raise ConfigError("runtime.threads: must be between 1 and 64")
    if not 0.0 < cfg.detector.score_threshold < 1.0:
        raise ConfigError("detector.score_threshold: must be in (0, 1)")
    if not 0.0 < cfg.detector.verify_threshold <= cfg.detector.score_threshold:
        raise ConfigError("detector.verify_threshold: must be in (0, score_threshold]")
    if not 160 <= cfg.detector.max_side <= 8192:
        raise ConfigError("detector.max_side: must be between 160 and 8192")
    if cfg.run.max_face_num < 1:
        raise ConfigError("run.max_face_num: must be at least 1")
    return cfg


def load_config(path: Path | str | None = None) -> Config:
    """The config at `path` (or $EDGE_CONFIG, or config/edge.yaml); defaults if absent."""
    path = Path(path or os.environ.get("EDGE_CONFIG") or DEFAULT_CONFIG)
    if not path.exists():
        if path == DEFAULT_CONFIG:
            return Config()
        raise ConfigError(f"config file {path} does not exist")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from exc
    cfg = _build(Config, raw, "")
    base = path.resolve().parent
    base = base.parent if base.name == "config" else base  # a checkout's config/ folder
    return validate(dataclasses.replace(cfg, base_dir=base))
