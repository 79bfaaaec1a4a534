"""The `sync:` section and `feed_keys` are validated at start-up like every key
(edge/config.py): a mistake stops the program with a message naming the key."""
from __future__ import annotations

import pytest
import yaml

from edge.config import ConfigError, load_config

APP = {"api_key": "AK", "secret_key": "SK"}
SYNC = {"hub_url": "http://hub:8300", "app_id": "1001", "api_key": "FK", "secret_key": "FS"}


def config(tmp_path, body):
    path = tmp_path / "edge.yaml"
    path.write_text(yaml.safe_dump(body))
    return load_config(path)


def test_feed_keys_and_sync_are_read(tmp_path):
    cfg = config(tmp_path, {"apps": {"1001": {**APP, "feed_keys": [{"api_key": "FK", "secret_key": "FS"}]}},
                            "sync": {**SYNC, "groups": "staff,night", "ca_file": "ca.pem"}})
    (key,) = cfg.feed_keys
    assert key.app_id == "1001" and key.scope == "feed" and cfg.apps[0].scope == "all"
    assert "FS" not in repr(key) and "FS" not in repr(cfg.sync)
    assert cfg.sync.enabled and cfg.sync.group_list == ("staff", "night")
    assert cfg.sync.ca_file == str(tmp_path / "ca.pem")   # relative to the config file
    assert not load_config().sync.enabled                # off by default


def test_a_feed_key_may_carry_the_right_to_push(tmp_path):
    cfg = config(tmp_path, {"apps": {"1001": {**APP, "feed_keys": [
        {"api_key": "FK", "secret_key": "FS"}, {"api_key": "PK", "secret_key": "PS", "scope": "feed+push"}]}},
        "sync": {**SYNC, "push": True}})
    assert [k.scope for k in cfg.feed_keys] == ["feed", "feed+push"]
    assert cfg.sync.push and cfg.sync.push_max_queued == 20000


def test_the_sync_secret_may_come_from_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("EDGE_SYNC_SECRET", "from-env")
    assert config(tmp_path, {"sync": {**SYNC, "secret_key": ""}}).sync.secret_key == "from-env"


@pytest.mark.parametrize("body,where", [
    ({"sync": {**SYNC, "hub_url": "ftp://hub"}}, "sync.hub_url"),
    ({"sync": {**SYNC, "hub_url": "http://hub:8300/path"}}, "sync.hub_url"),
    ({"sync": {**SYNC, "app_id": "a-b"}}, "sync.app_id"),
    ({"sync": {**SYNC, "secret_key": ""}}, "sync: api_key and secret_key"),
    ({"sync": {**SYNC, "groups": "staff,no-dash"}}, "sync.groups"),
    ({"sync": {**SYNC, "wait_s": 31}}, "sync.wait_s"),
    ({"sync": {**SYNC, "limit": 0}}, "sync.limit"),
    ({"sync": {**SYNC, "backoff_max_s": 0.5}}, "backoff_max_s"),
    ({"sync": {**SYNC, "verify": "no"}}, "sync.verify"),
    ({"sync": {**SYNC, "hub": "x"}}, "sync: unknown key(s) hub"),
    ({"apps": {"1001": {**APP, "feed_keys": {"api_key": "FK"}}}}, "apps.1001.feed_keys"),
    ({"apps": {"1001": {**APP, "feed_keys": [{"api_key": "FK"}]}}}, "apps.1001.feed_keys[0]"),
    ({"apps": {"1001": {**APP, "feed_keys": [{"api_key": "AK", "secret_key": "x"}]}}}, "share an api_key"),
    ({"apps": {"1001": {**APP, "feed_keys": [{"api_key": "FK", "secret_key": "x", "scope": "all"}]}}},
     "apps.1001.feed_keys[0].scope"),
    ({"sync": {**SYNC, "push": "yes"}}, "sync.push"),
    ({"sync": {**SYNC, "push_max_queued": 0}}, "sync.push_max_queued"),
])
def test_bad_sync_settings_name_the_key(tmp_path, body, where):
    with pytest.raises(ConfigError) as err:
        config(tmp_path, body)
    assert where in str(err.value)
