"""Test helpers for the HTTP service: a real `edge serve` process and Baidu's real SDKs.

The SDKs (baidu-aip 2.2.2.0 and 4.16.13) both install a package named `aip`, so each
is pip-installed into a folder of its own under the virtualenv and imported under an
alias (aip_2_2_2_0, aip_4_16_13); their class-private URLs are pointed at the server.
"""
from __future__ import annotations

import importlib.util
import subprocess
import sys
import time
from pathlib import Path

import yaml

from edge.server.process import ServerProcess, spawn

BAIDU = "https://aip.baidubce.com"
SDK_VERSIONS = ("2.2.2.0", "4.16.13")


def start_server(tmp: Path, apps: dict, server: dict | None = None, models_dir: Path | None = None,
                 timeout: float = 120.0, extra: dict | None = None) -> ServerProcess:
    """`python -m edge.cli serve` on a free port, with its own config and data folder
    (tmp/data; starting again on the same tmp reopens the same library); `extra`: more
    top-level sections of the config (console: ...)."""
    from edge.config import load_config
    cfg = {"data_dir": str(tmp / "data"),
           "models": {"dir": str(models_dir or load_config().models_dir)},
           "server": {"port": 0, **(server or {})},
           "apps": {app_id: {"api_key": a[0], "secret_key": a[1], **({"qps": a[2]} if len(a) > 2 else {})}
                    for app_id, a in apps.items()}, **(extra or {})}
    path = tmp / "edge.yaml"
    path.write_text(yaml.safe_dump(cfg))
    srv = spawn(path, cwd=tmp, timeout=timeout)
    srv.apps = dict(apps)
    return srv


def sdk_dir(version: str) -> Path:
    """baidu-aip==version installed (once) into a folder of the virtualenv."""
    target = Path(sys.prefix) / "baidu-aip" / version
    if not (target / "aip" / "face.py").exists():
        subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
                        "--no-deps", "--target", str(target), f"baidu-aip=={version}"], check=True)
    return target


def load_sdk(version: str):
    """The `aip` package of baidu-aip==version, imported as aip_<version>."""
    name = "aip_" + version.replace(".", "_")
    mod = sys.modules.get(name)
    if mod is None:
        root = sdk_dir(version) / "aip"
        spec = importlib.util.spec_from_file_location(name, root / "__init__.py",
                                                      submodule_search_locations=[str(root)])
        mod = importlib.util.module_from_spec(spec)
        sys.modules[name] = mod
        spec.loader.exec_module(mod)
    return mod


def sdk_client(version: str, base_url: str, app_id: str, api_key: str, secret_key: str):
    """The real SDK's AipFace with every Baidu URL of this instance pointing at base_url
    (the URLs are class-private attributes; instance attributes shadow them)."""
    client = load_sdk(version).AipFace(app_id, api_key, secret_key)
    for klass in type(client).__mro__:
        for key, value in vars(klass).items():
            if isinstance(value, str) and value.startswith(BAIDU):
                setattr(client, key, base_url + value[len(BAIDU):])
    return client


def wait_until(predicate, timeout: float = 10.0, step: float = 0.05) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(step)
    return predicate()
