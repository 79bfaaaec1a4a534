"""Configuration: YAML validated into typed, frozen dataclasses at start-up.

Unknown keys and wrong types are refused with a message naming the key, so a typo in
the service's config stops it at start rather than being silently ignored.
"""
from __future__ import annotations

import dataclasses
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from edge.mqtt_config import MqttConfig, validate_mqtt
from edge.models.manifest import EMBEDDERS, PRECISIONS, REPO_ROOT
from edge.sync.config import SyncConfig, validate_sync
from edge.thresholds import LOOP_MAX_POSE_DEG

DEFAULT_CONFIG = REPO_ROOT / "config" / "edge.yaml"


class ConfigError(ValueError):
    pass


@dataclass(frozen=True)
class ModelsConfig:
    dir: str = "models"
    # fp32 | int8: which build of SFace embeds (docs/speed.md, "int8"). Faces are stored
    # with the model id of the build that embedded them (edge/aip/runtime.py).
    precision: str = "fp32"
    # sface | sface_dlib: what makes the stored vector (edge/analysis/embedders.py,
    # docs/accuracy.md "Choosing an embedder"). A library holds one embedder's faces:
    # switching refuses it (216300) until its people are enrolled again.
    embedder: str = "sface"


@dataclass(frozen=True)
class RuntimeConfig:
    threads: int = 2


@dataclass(frozen=True)
class DetectorConfig:
    score_threshold: float = 0.7
    verify_threshold: float = 0.3
    max_side: int = 1280
    rotated_retry: bool = True        # photos (not video frames): also look at 90/180/270 deg turns


@dataclass(frozen=True)
class RunConfig:
    """`edge run`, the capture loop (docs/loop.md). Cameras are listed under `cameras:`."""
    app_id: str = "edge"              # the face library searched (and `edge enroll`'s default)
    groups: str = ""                  # comma-separated groups to search; "" = every group
    max_face_num: int = 5             # faces analysed per frame
    min_face_px: int = 40             # smaller faces are ignored; sets the detector's input size
    quality_control: str = "NORMAL"   # NONE / LOW / NORMAL / HIGH, the documented thresholds
    max_pose_deg: float = LOOP_MAX_POSE_DEG  # frames turned further (yaw, pitch, roll) are not searched
    liveness_control: str = "NORMAL"  # NONE; LOW/NORMAL: blink or 3-D motion; HIGH: + a challenge
    match_score: float = 0.0          # a fixed score a person must reach; 0: derived (below)
    false_id_per_track: float = 0.001 # stranger tracks named as someone, per stranger track
    false_id_per_hour: float = 0.0    # and per hour at a busy door (0: off) ...
    strangers_per_hour: float = 0.0   # ... with this many stranger tracks an hour
    max_match_score: float = 92.0     # the derived score stops here (warned: library outgrown)
    margin: float = 2.0               # lead over the second-best person, in score points
    decide_by: str = "fused"          # fused: the mean of the searched frames; votes: per frame
    min_votes: int = 2                # frames fused (or agreeing votes) before a person is named
    max_frames: int = 6               # searched frames before a track is unknown
    liveness_timeout_s: float = 6.0   # a recognised track must prove liveness within this
    embed_worker: str = "thread"      # thread: embed + search off the frame path; inline: in it
    embed_threads: int = 0            # 0: the worker uses the analyser's SFace session; N: its own, N threads
    duration_s: float = 0.0           # stop after this long (0: run until SIGTERM)
    status_interval_s: float = 2.0    # status file and log line refresh
    metrics_port: int = 0             # Prometheus metrics on 127.0.0.1:PORT (0: off)
    serve: bool = True                # also serve the API and the web console on server.host:server.port


@dataclass(frozen=True)
class EventsConfig:
    """Where events go besides the log (docs/loop.md)."""
    log_file: str = ""                # JSON lines file ("" = the log only)
    webhook_url: str = ""             # POST each event, retried from a durable outbox
    webhook_secret: str = ""          # HMAC-SHA256 signature header when set
    relay_command: str = ""           # door relay: a command, {door} {pulse_ms} filled in
    relay_gpio_pin: int = 0           # or a GPIO pin driven with gpiozero (0: off)
    relay_groups: str = ""            # groups allowed through ("" = every group)
    relay_pulse_s: float = 1.0
    debounce_s: float = 3.0           # one opening per door this often at most
    anti_passback_s: float = 0.0      # the same person again through the same door (0: off)
    attendance: bool = True           # record recognised people in the local database
    attendance_min_interval_s: float = 60.0
    history: bool = True              # every event in <data_dir>/run/events.db, searched by the console
    history_max_rows: int = 100_000   # the oldest are dropped beyond this many ...
    history_max_days: float = 90.0    # ... or this age


@dataclass(frozen=True)
class ServerConfig:
    """`edge serve`: the Baidu-compatible HTTP service (docs/server.md)."""
    host: str = "127.0.0.1"       # loopback unless the operator opens it up
    port: int = 8300
    workers: int = 2              # inference threads; the event loop never runs a model
    max_pending: int = 64         # queued inference requests before answering error 4
    qps: float = 20.0             # default per-APP_ID request rate (error 18 above it)
    max_body_mb: float = 0.0      # operator's bound on request bodies; 0: each endpoint's documented cap
    tls_cert: str = ""            # PEM certificate chain; TLS is on when both are set
    tls_key: str = ""
    clock_skew_s: int = 300       # bce-auth-v1: how far a signature's timestamp may lead
    token_ttl_s: int = 2592000    # access_token lifetime (Baidu: 30 days)
    keepalive_s: float = 30.0     # an idle keep-alive connection is closed after this
    header_timeout_s: float = 10.0  # a request's first byte to its last header line
    body_timeout_s: float = 60.0  # a request's headers to its body's last byte
    send_timeout_s: float = 60.0  # a connection whose client stopped reading its answer is dropped
    max_connections: int = 256    # open connections; more are answered error 4 and closed
    http_log_per_min: int = 20    # HTTP-layer event lines a minute; the rest are summed up in one


@dataclass(frozen=True)
class ApiConfig:
    """Both SDK versions, in-process and over HTTP (docs/api.md)."""
    # spoofing_control LOW/NORMAL/HIGH asks for a synthetic-image (PS, face swap) check that
    # no shipped model makes: "refuse" answers 216102; "ignore" accepts and skips it (logged once).
    spoofing_control: str = "refuse"


SPOOFING_POLICIES = ("refuse", "ignore")


@dataclass(frozen=True)
class LibraryConfig:
    """Where the face libraries live (README, docs/scale.md): SQLite files under data_dir,
    or one PostgreSQL database (with pgvector) that many hub processes share."""
    backend: str = "sqlite"       # sqlite | postgres
    dsn: str = field(default="", repr=False)  # postgres: libpq DSN or URI; $EDGE_LIBRARY_DSN overrides it
    pool_size: int = 10           # postgres: connections per hub process
    timeout_s: float = 5.0        # postgres: wait for a connection at most this long, then the db error

    def __repr__(self) -> str:    # a DSN may hold a password
        return f"LibraryConfig(backend={self.backend!r}, dsn={'***' if self.dsn else ''!r}, " \
               f"pool_size={self.pool_size}, timeout_s={self.timeout_s})"


LIBRARY_BACKENDS = ("sqlite", "postgres")


@dataclass(frozen=True)
class ConsoleConfig:
    """The web console at /console (docs/console.md). Served off loopback only with TLS."""
    enabled: bool = True
    session_idle_s: float = 3600.0        # a session unused this long ends (log in again)
    session_max_s: float = 43200.0        # and any session ends this long after its login (12 h)
    attempt_window_s: float = 900.0       # failed logins are counted over this window (15 min) ...
    attempts_per_address: int = 20        # ... per remote address, refused past this many
    attempts_per_user: int = 5            # ... per user name, refused past this many
    upload_max_mb: float = 40.0           # one enrolment form (all its photos together)


# What a feed key may do: read the change feed; and push a terminal's enrolments.
FEED_SCOPES = ("feed", "feed+push")


@dataclass(frozen=True)
class AppConfig:
    """One APP_ID's credentials; its face library is <data_dir>/apps/<APP_ID>/."""
    app_id: str
    api_key: str
    secret_key: str = field(repr=False)
    qps: float = 0.0              # 0: server.qps
    scope: str = "all"            # "all": the API and the change feed; "feed": the feed only (feed_keys);
                                  # "feed+push": the feed and a terminal's enrolments (docs/sync.md)

    def __repr__(self) -> str:   # secrets never reach a log line through repr()
        return f"AppConfig(app_id={self.app_id!r}, api_key={self.api_key!r}, secret_key=***, scope={self.scope!r})"


@dataclass(frozen=True)
class Config:
    data_dir: str = "var"
    # status files (status.json, sync.json): "" = <data_dir>/run; /run/edge (tmpfs, systemd's
    # RuntimeDirectory=edge) keeps their rewrites off a terminal's card (docs/loop.md)
    runtime_dir: str = ""
    models: ModelsConfig = field(default_factory=ModelsConfig)
    runtime: RuntimeConfig = field(default_factory=RuntimeConfig)
    detector: DetectorConfig = field(default_factory=DetectorConfig)
    run: RunConfig = field(default_factory=RunConfig)
    server: ServerConfig = field(default_factory=ServerConfig)
    api: ApiConfig = field(default_factory=ApiConfig)
    events: EventsConfig = field(default_factory=EventsConfig)
    sync: SyncConfig = field(default_factory=SyncConfig)
    mqtt: MqttConfig = field(default_factory=MqttConfig)   # events and camera state to a broker (docs/mqtt.md)
    library: LibraryConfig = field(default_factory=LibraryConfig)
    console: ConsoleConfig = field(default_factory=ConsoleConfig)
    cameras: tuple = ()           # edge.camera.SourceConfig, from `cameras:` (default: the demo)
    apps: tuple = ()              # AppConfig, from `apps:` and $EDGE_APPS
    feed_keys: tuple = ()         # AppConfig(scope="feed"), from `apps.<APP_ID>.feed_keys`
    base_dir: Path = REPO_ROOT    # relative defaults resolve here; paths written in a file are made absolute

    def path(self, value: str) -> Path:
        p = Path(value).expanduser()
        return p if p.is_absolute() else self.base_dir / p

    @property
    def runtime_path(self) -> Path:
        """Where the status files live (never durable data: the outbox stays in data_dir)."""
        return self.path(self.runtime_dir) if self.runtime_dir else self.path(self.data_dir) / "run"

    @property
    def models_dir(self) -> Path:
        return Path(os.environ["EDGE_MODELS_DIR"]) if os.environ.get("EDGE_MODELS_DIR") else self.path(self.models.dir)


def _build(cls, raw, where: str):
    if raw is None:
        return cls()
    if not isinstance(raw, dict):
        raise ConfigError(f"{where or 'config'}: expected a mapping, got {type(raw).__name__}")
    fields = {f.name: f for f in dataclasses.fields(cls) if f.name not in ("base_dir", "apps", "cameras", "feed_keys")}
    unknown = set(raw) - set(fields)
    if unknown:
        raise ConfigError(f"{where or 'config'}: unknown key(s) {', '.join(sorted(unknown))}")
    kwargs = {}
    for name, value in raw.items():
        f, key = fields[name], f"{where}.{name}" if where else name
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
        if dataclasses.is_dataclass(default):
            kwargs[name] = _build(type(default), value, key)
        elif isinstance(default, bool):
            if not isinstance(value, bool):
                raise ConfigError(f"{key}: expected true or false, got {value!r}")
            kwargs[name] = value
        elif isinstance(value, bool) or not isinstance(value, (int, float, str)) or \
                (isinstance(default, (int, float)) and isinstance(value, str)) or \
                (isinstance(default, str) and not isinstance(value, str)) or \
                (type(default) is int and not isinstance(value, int)):
            raise ConfigError(f"{key}: expected {type(default).__name__}, got {value!r}")
        else:
            kwargs[name] = type(default)(value)
    return cls(**kwargs)


def validate(cfg: Config) -> Config:
    if cfg.models.precision not in PRECISIONS:
        raise ConfigError(f"models.precision: must be {' or '.join(PRECISIONS)}, got {cfg.models.precision!r}")
    if cfg.models.embedder not in EMBEDDERS:
        raise ConfigError(f"models.embedder: must be {' or '.join(EMBEDDERS)}, got {cfg.models.embedder!r}")
    if not 1 <= cfg.runtime.threads <= 64:
        raise ConfigError("runtime.threads: must be between 1 and 64")
    if not 0.0 < cfg.detector.score_threshold < 1.0:
        raise ConfigError("detector.score_threshold: must be in (0, 1)")
    if not 0.0 < cfg.detector.verify_threshold <= cfg.detector.score_threshold:
        raise ConfigError("detector.verify_threshold: must be in (0, score_threshold]")
    if not 160 <= cfg.detector.max_side <= 8192:
        raise ConfigError("detector.max_side: must be between 160 and 8192")
    run = cfg.run
    if run.max_face_num < 1:
        raise ConfigError("run.max_face_num: must be at least 1")
    if not 20 <= run.min_face_px <= 2000:
        raise ConfigError("run.min_face_px: must be between 20 and 2000")
    for key in ("quality_control", "liveness_control"):
        if getattr(run, key) not in ("NONE", "LOW", "NORMAL", "HIGH"):
            raise ConfigError(f"run.{key}: must be NONE, LOW, NORMAL or HIGH")
    if not 0 < run.false_id_per_track < 1 or run.false_id_per_hour < 0 or run.strangers_per_hour < 0:
        raise ConfigError("run: false_id_per_track in (0, 1), false_id_per_hour and strangers_per_hour >= 0")
    if run.false_id_per_hour > 0 and run.strangers_per_hour <= 0:
        raise ConfigError("run.false_id_per_hour: needs run.strangers_per_hour (stranger tracks an hour)")
    if not 0 < run.max_pose_deg <= 90:
        raise ConfigError("run.max_pose_deg: must be above 0 and at most 90")
    if run.decide_by not in ("fused", "votes"):
        raise ConfigError("run.decide_by: must be fused or votes")
    if run.embed_worker not in ("thread", "inline") or not 0 <= run.embed_threads <= 16:
        raise ConfigError("run: embed_worker must be thread or inline, embed_threads between 0 and 16")
    if not 60 <= run.max_match_score <= 100:
        raise ConfigError("run.max_match_score: must be between 60 and 100")
    if not 0 <= run.match_score <= 100 or run.margin < 0 or run.min_votes < 1 or run.max_frames < run.min_votes:
        raise ConfigError("run: match_score in 0-100, margin >= 0, 1 <= min_votes <= max_frames")
    if not _APP_ID_RE.match(run.app_id):
        raise ConfigError("run.app_id: 1-64 letters, digits or underscores")
    ev = cfg.events
    if ev.relay_pulse_s <= 0 or ev.debounce_s < ev.relay_pulse_s:
        raise ConfigError("events: relay_pulse_s must be positive and debounce_s at least relay_pulse_s")
    if ev.history_max_rows < 1 or ev.history_max_days <= 0:
        raise ConfigError("events: history_max_rows and history_max_days must be positive")
    srv = cfg.server
    if not 0 <= srv.port <= 65535:
        raise ConfigError("server.port: must be between 0 and 65535")
    if not 1 <= srv.workers <= 64:
        raise ConfigError("server.workers: must be between 1 and 64")
    if srv.max_pending < 1 or srv.qps <= 0 or srv.max_body_mb < 0 or srv.token_ttl_s < 60:
        raise ConfigError("server: max_pending and qps must be positive, max_body_mb >= 0, token_ttl_s >= 60")
    if min(srv.keepalive_s, srv.header_timeout_s, srv.body_timeout_s, srv.send_timeout_s) <= 0 \
            or srv.max_connections < 1 or srv.http_log_per_min < 1:
        raise ConfigError("server: keepalive_s, header_timeout_s, body_timeout_s, send_timeout_s, "
                          "max_connections and http_log_per_min must be positive")
    if bool(srv.tls_cert) != bool(srv.tls_key):
        raise ConfigError("server: set both tls_cert and tls_key, or neither")
    if cfg.api.spoofing_control not in SPOOFING_POLICIES:
        raise ConfigError(f"api.spoofing_control: must be {' or '.join(SPOOFING_POLICIES)}")
    validate_sync(cfg.sync, ConfigError)
    con = cfg.console
    if not 60 <= con.session_idle_s <= con.session_max_s <= 30 * 86400:
        raise ConfigError("console: 60 <= session_idle_s <= session_max_s <= 30 days (in seconds)")
    if con.attempt_window_s < 1 or con.attempts_per_address < 1 or con.attempts_per_user < 1:
        raise ConfigError("console: attempt_window_s, attempts_per_address and attempts_per_user must be positive")
    if not 1 <= con.upload_max_mb <= 1024:
        raise ConfigError("console.upload_max_mb: must be between 1 and 1024")
    validate_mqtt(cfg.mqtt, ConfigError)
    lib = cfg.library
    if lib.backend not in LIBRARY_BACKENDS:
        raise ConfigError(f"library.backend: must be {' or '.join(LIBRARY_BACKENDS)}")
    if lib.backend == "postgres" and not lib.dsn:
        raise ConfigError("library.dsn: library.backend postgres needs a DSN (or $EDGE_LIBRARY_DSN)")
    if not 1 <= lib.pool_size <= 1000 or not 0 < lib.timeout_s <= 300:
        raise ConfigError("library: pool_size must be between 1 and 1000, timeout_s in (0, 300]")
    return cfg


def _library_env(cfg: Config) -> Config:
    """$EDGE_LIBRARY_DSN over library.dsn, and $EDGE_MQTT_USERNAME / $EDGE_MQTT_PASSWORD
    over mqtt.username / mqtt.password, so a password need not sit in the file."""
    dsn = os.environ.get("EDGE_LIBRARY_DSN")
    if dsn:
        cfg = dataclasses.replace(cfg, library=dataclasses.replace(cfg.library, dsn=dsn))
    creds = {k: os.environ[f"EDGE_MQTT_{k.upper()}"] for k in ("username", "password")
             if os.environ.get(f"EDGE_MQTT_{k.upper()}")}
    return dataclasses.replace(cfg, mqtt=dataclasses.replace(cfg.mqtt, **creds)) if creds else cfg


_APP_ID_RE = re.compile(r"^[A-Za-z0-9_]{1,64}$")


def _apps(raw, env: str | None) -> tuple[tuple, tuple]:
    """`apps:` (a mapping APP_ID -> {api_key, secret_key[, qps, feed_keys]}) plus
    $EDGE_APPS ("APP_ID:API_KEY:SECRET_KEY[,...]", for secrets kept out of the YAML
    file). Returns (apps, feed keys): a feed key (a list of {api_key, secret_key} under
    its app) may only read that app's change feed (docs/sync.md)."""
    entries: dict[str, dict] = {}
    if raw is not None:
        if not isinstance(raw, dict):
            raise ConfigError("apps: expected a mapping APP_ID -> {api_key, secret_key}")
        for app_id, spec in raw.items():
            if not isinstance(spec, dict):
                raise ConfigError(f"apps.{app_id}: expected a mapping with api_key and secret_key")
            unknown = set(spec) - {"api_key", "secret_key", "qps", "feed_keys"}
            if unknown:
                raise ConfigError(f"apps.{app_id}: unknown key(s) {', '.join(sorted(unknown))}")
            entries[str(app_id)] = dict(spec)
    for item in filter(None, (env or "").split(",")):
        parts = item.strip().split(":")
        if len(parts) != 3:
            raise ConfigError("EDGE_APPS: expected APP_ID:API_KEY:SECRET_KEY[,...]")
        kept = {k: v for k, v in entries.get(parts[0], {}).items() if k == "feed_keys"}
        entries[parts[0]] = {"api_key": parts[1], "secret_key": parts[2], **kept}
    apps = []
    for app_id, spec in entries.items():
        if not _APP_ID_RE.match(app_id):
            raise ConfigError(f"apps.{app_id}: APP_ID must be 1-64 letters, digits or underscores")
        key, secret, qps = spec.get("api_key"), spec.get("secret_key"), spec.get("qps", 0.0)
        if not isinstance(key, str) or not key or not isinstance(secret, str) or not secret:
            raise ConfigError(f"apps.{app_id}: api_key and secret_key must be non-empty strings")
        if isinstance(qps, bool) or not isinstance(qps, (int, float)) or qps < 0:
            raise ConfigError(f"apps.{app_id}.qps: expected a number >= 0")
        apps.append(AppConfig(app_id, key, secret, float(qps)))
    feeds = []
    for app in apps:
        raw_keys = entries[app.app_id].get("feed_keys") or []
        if not isinstance(raw_keys, list):
            raise ConfigError(f"apps.{app.app_id}.feed_keys: expected a list of {{api_key, secret_key}}")
        for i, item in enumerate(raw_keys):
            where = f"apps.{app.app_id}.feed_keys[{i}]"
            if not isinstance(item, dict) or set(item) - {"api_key", "secret_key", "scope"}:
                raise ConfigError(f"{where}: expected a mapping with api_key, secret_key and an optional scope")
            scope = item.get("scope", "feed")
            if scope not in FEED_SCOPES:
                raise ConfigError(f"{where}.scope: one of {', '.join(FEED_SCOPES)}")
            key, secret = item.get("api_key"), item.get("secret_key")
            if not isinstance(key, str) or not key or not isinstance(secret, str) or not secret:
                raise ConfigError(f"{where}: api_key and secret_key must be non-empty strings")
            feeds.append(AppConfig(app.app_id, key, secret, app.qps, scope=scope))
    if len({a.api_key for a in apps + feeds}) != len(apps) + len(feeds):
        raise ConfigError("apps: two APP_IDs or feed keys share an api_key")
    return tuple(apps), tuple(feeds)


def _cameras(raw) -> tuple:
    """`cameras:` as a list of mappings (name, kind, uri, ...; edge/camera/config.py)."""
    from edge.camera.config import SourceConfig
    from edge.camera.errors import CameraError
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise ConfigError("cameras: expected a list of cameras (name, kind, uri, ...)")
    try:
        cams = tuple(SourceConfig.from_dict(item, None if isinstance(item, dict) and "name" in item
                                            else f"camera{i}") for i, item in enumerate(raw))
    except CameraError as exc:
        raise ConfigError(f"cameras: {exc}") from None
    if len({c.name for c in cams}) != len(cams):
        raise ConfigError("cameras: two cameras share a name")
    return cams


def load_config(path: Path | str | None = None) -> Config:
    """The config at `path` (or $EDGE_CONFIG, or config/edge.yaml); defaults if absent."""
    path = Path(path or os.environ.get("EDGE_CONFIG") or DEFAULT_CONFIG)
    if not path.exists():
        if path == DEFAULT_CONFIG:
            apps, feeds = _apps(None, os.environ.get("EDGE_APPS"))
            return validate(_library_env(Config(apps=apps, feed_keys=feeds)))
        raise ConfigError(f"config file {path} does not exist")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from exc
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level")
    apps, feeds = _apps(raw.pop("apps", None), os.environ.get("EDGE_APPS"))
    cameras = _cameras(raw.pop("cameras", None))
    cfg = dataclasses.replace(_build(Config, raw, ""), apps=apps, feed_keys=feeds, cameras=cameras)
    if os.environ.get("EDGE_SYNC_SECRET"):  # the hub credential's secret, kept out of the YAML file
        cfg = dataclasses.replace(cfg, sync=dataclasses.replace(cfg.sync, secret_key=os.environ["EDGE_SYNC_SECRET"]))
    base = path.resolve().parent
    base = base.parent if base.name == "config" else base  # a checkout's config/ folder
    return validate(_library_env(_anchor(cfg, raw, base)))


# Path keys of the file: (section or None, key).
PATH_KEYS = ((None, "data_dir"), (None, "runtime_dir"), ("models", "dir"), ("server", "tls_cert"), ("server", "tls_key"),
             ("events", "log_file"), ("sync", "ca_file"), ("mqtt", "ca_file"), ("mqtt", "cert_file"),
             ("mqtt", "key_file"))


def _anchor(cfg: Config, raw: dict, base: Path) -> Config:
    """Make the relative paths *written in the file* absolute against the file's folder
    (its parent for a checkout's config/ folder). Keys the file leaves out keep their
    defaults, which resolve against the checkout (Config.base_dir) wherever the file
    lies: a config in /srv/site/ that sets only data_dir still finds the models."""
    for section, key in PATH_KEYS:
        written = (raw.get(section) or {}) if section else raw
        value = written.get(key) if isinstance(written, dict) else None
        if not isinstance(value, str) or not value or Path(value).expanduser().is_absolute():
            continue
        absolute = str(base / value)
        if section is None:
            cfg = dataclasses.replace(cfg, **{key: absolute})
        else:
            cfg = dataclasses.replace(cfg, **{section: dataclasses.replace(getattr(cfg, section), **{key: absolute})})
    return cfg
