"""The `library:` section: validated at start-up, the DSN from $EDGE_LIBRARY_DSN, never in a repr."""
from __future__ import annotations

import pytest
import yaml

from edge.config import ConfigError, load_config


def _config(tmp_path, library: dict):
    path = tmp_path / "edge.yaml"
    path.write_text(yaml.safe_dump({"library": library}))
    return path


def test_postgres_needs_a_dsn_and_takes_it_from_the_environment(tmp_path, monkeypatch):
    monkeypatch.delenv("EDGE_LIBRARY_DSN", raising=False)
    assert load_config(_config(tmp_path, {})).library.backend == "sqlite"
    with pytest.raises(ConfigError, match="library.dsn"):
        load_config(_config(tmp_path, {"backend": "postgres"}))
    for bad in ({"backend": "mysql"}, {"backend": "postgres", "dsn": "x", "pool_size": 0},
                {"backend": "postgres", "dsn": "x", "timeout_s": 0}, {"dns": "typo"}):
        with pytest.raises(ConfigError, match="library"):
            load_config(_config(tmp_path, bad))
    monkeypatch.setenv("EDGE_LIBRARY_DSN", "host=db1 dbname=edge user=edge password=s3cret")
    cfg = load_config(_config(tmp_path, {"backend": "postgres", "dsn": "host=other", "pool_size": 3}))
    assert cfg.library.dsn.endswith("password=s3cret") and cfg.library.pool_size == 3
    assert "s3cret" not in repr(cfg) and "s3cret" not in repr(cfg.library)
