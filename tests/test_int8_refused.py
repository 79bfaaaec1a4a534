"""A machine whose int8 kernels do not reproduce the int8 reference (an arm64 CPU, made here
with ranges a tenth as wide, so the real check really fails on the real build): `edge models
fetch` reports it in one line and installs no int8 file but succeeds for fp32, `edge models
status` says failed-check, and models.precision: int8 refuses to start with the reason."""
from __future__ import annotations

import json
import shutil

import pytest

from conftest import LFW
from edge.cli import main
from edge.models.fetch import Int8CheckFailed, fetch_int8, int8_failure
from edge.models.manifest import default_models_dir, int8_failed_path, load_manifest

MODELS_DIR = default_models_dir()
SPEC = load_manifest()["embedder"]
PHOTO = sorted((LFW / "images" / "Paul_Wolfowitz").glob("*.jpg"))[0]


@pytest.fixture
def machine(tmp_path):
    """A models dir: the real fp32 files and stamps, the manifest, and int8 ranges made
    narrow (the int8 build then fails its reference check), no int8 file yet; configs
    for fp32 and int8 pointing at it."""
    models = tmp_path / "models"
    models.mkdir()
    for spec in load_manifest().values():
        for name in (spec.file, spec.file + ".stamp.json"):
            shutil.copyfile(MODELS_DIR / name, models / name)
    shutil.copyfile(MODELS_DIR / "manifest.yaml", models / "manifest.yaml")
    (models / "samples").mkdir()
    shutil.copyfile(MODELS_DIR / "samples" / "demo.jpg", models / "samples" / "demo.jpg")
    (models / "cache").symlink_to(MODELS_DIR / "cache")
    ranges = json.loads(SPEC.int8.ranges.read_text())
    ranges["ranges"] = {k: [lo / 10, hi / 10] for k, (lo, hi) in ranges["ranges"].items()}
    (models / SPEC.int8.ranges.name).write_text(json.dumps(ranges))
    configs = {}
    for precision in ("fp32", "int8"):
        configs[precision] = tmp_path / f"{precision}.yaml"
        configs[precision].write_text(json.dumps({"models": {"dir": str(models), "precision": precision},
                                                  "data_dir": str(tmp_path / "data")}))
    return models, configs


def test_fetch_reports_the_failed_int8_build_and_succeeds_for_fp32(machine, capsys):
    models, configs = machine
    assert main(["--config", str(configs["fp32"]), "models", "fetch"]) == 0
    out = capsys.readouterr().out.splitlines()
    line = [s for s in out if SPEC.int8.file in s]
    assert len(line) == 1 and "failed-check, not installed: int8 is unusable on this machine" in line[0], out
    assert "embedder.int8/fc1" in line[0] or "max abs error" in line[0] or "cosine" in line[0], line
    assert all(s.split()[-1] == "ok" for s in out if SPEC.int8.file not in s), out   # fp32 and the demo photo
    assert not (models / SPEC.int8.file).exists() and not list(models.glob("*.new"))
    spec = load_manifest(models)["embedder"]
    assert int8_failure(models, spec) == line[0].split("this machine (fp32 unaffected): ", 1)[1]

    assert main(["--config", str(configs["fp32"]), "models", "status"]) == 0   # fp32 needs nothing more
    status = dict(s.split() for s in capsys.readouterr().out.splitlines())
    assert status["embedder.int8"] == "failed-check" and status["embedder"] == "ok", status
    assert main(["--config", str(configs["int8"]), "models", "status"]) == 1   # an int8 config does


def test_the_failure_is_recorded_and_cleared_when_the_build_passes(machine):
    models, _ = machine
    spec = load_manifest(models)["embedder"]
    with pytest.raises(Int8CheckFailed):
        fetch_int8(spec, models)
    # Recorded: the next fetch says so without quantizing again (int8_failure holds).
    recorded = json.loads(int8_failed_path(models, spec).read_text())
    assert recorded["cpu"]["machine"] and int8_failure(models, spec)
    with pytest.raises(Int8CheckFailed):
        fetch_int8(spec, models)
    # The committed ranges back (what a fixed build or another CPU is, here): built, passes.
    shutil.copyfile(SPEC.int8.ranges, spec.int8.ranges)
    assert int8_failure(models, spec) is None
    assert fetch_int8(spec, models) == "built"
    assert (models / spec.int8.file).exists() and not int8_failed_path(models, spec).exists()


def test_precision_int8_refuses_to_start_naming_the_reason(machine, capsys):
    models, configs = machine
    assert main(["--config", str(configs["fp32"]), "models", "fetch"]) == 0
    capsys.readouterr()
    assert main(["--config", str(configs["int8"]), "detect", str(PHOTO)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("edge: models.precision: int8 is unusable on this machine: ") and "reference check" in err
    assert "use models.precision: fp32" in err and "Traceback" not in err, err
    # fp32 on the same machine works.
    assert main(["--config", str(configs["fp32"]), "detect", str(PHOTO)]) == 0
    assert json.loads(capsys.readouterr().out)["result_num"] == 1
