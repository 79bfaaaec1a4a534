"""Baidu's API with the face library on PostgreSQL: a representative part of the v2 and
v3 SDK tests (tests/test_aip_v2.py, test_aip_v3.py) run unchanged against a hub runtime
whose `library.backend` is postgres, with the real models on real photos."""
from __future__ import annotations

import dataclasses
import itertools

import pytest

from edge.aip import AipFace as AipFaceV2
from edge.aip.v3 import AipFace as AipFaceV3
from edge.config import LibraryConfig
# the tests below run here with this module's `client` (the library on PostgreSQL)
from test_aip_v2 import (test_append_replace_and_duplicate_image, test_copy_between_groups_and_leave_a_group,  # noqa: F401
                         test_delete_user_from_one_group_or_all, test_multi_identify_finds_every_face,
                         test_paging_of_groups_and_users, test_register_to_several_groups_and_identify,
                         test_update_user)
from test_aip_v3 import (staff, test_add_update_and_face_delete, test_face_token_lifetime,  # noqa: F401
                         test_groups_users_copy_and_delete, test_match_and_faceverify, test_multi_search,
                         test_search_finds_the_person_and_honours_options, test_search_group_list_limits)

_apps = itertools.count()


@pytest.fixture(scope="module")
def pg_config(edge_config, pg_server, tmp_path_factory):
    return dataclasses.replace(edge_config, data_dir=str(tmp_path_factory.mktemp("pgdata")),
                               library=LibraryConfig(backend="postgres", dsn=pg_server.new_database()))


@pytest.fixture
def client(pg_config, request):
    """A client on a fresh app of the PostgreSQL database, in the version of the test's module."""
    v3 = request.node.function.__module__ == "test_aip_v3"
    klass = AipFaceV3 if v3 else AipFaceV2
    return klass(f"pg{'v3' if v3 else 'v2'}app{next(_apps)}", "key", "secret", config=pg_config)


def test_the_clients_above_are_on_postgres(client):
    lib = client._lib
    assert type(lib).__name__ == "PgFaceLibrary" and lib.store.path.startswith("postgresql ")
    assert "password" not in lib.store.path
