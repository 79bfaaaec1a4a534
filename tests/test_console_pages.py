"""The console's pages against a real hub (`edge serve`): the library's browse, page,
search, copy, move and delete through the v3 calls; enrolment by upload; the terminals
following the hub with their lag; Status with the loop's status file of `edge run`."""
from __future__ import annotations

import re
import subprocess
import sys

import pytest
import requests

from console_support import add_user, login, page_token
from conftest import LFW, MULTIFACE
from sync_support import HUB_APPS, feed_key, free_port, hub_config, signed_feed, start

PERSON = LFW / "images" / "Colin_Powell"
NO_FACE = MULTIFACE / "inspireface_view_noface.jpg"


@pytest.fixture(scope="module")
def hub(tmp_path_factory):
    folder = tmp_path_factory.mktemp("console-pages")
    cfg = hub_config(folder / "hub", free_port())
    assert add_user(cfg, "root", "admin-password-9", "admin").returncode == 0   # before the first start
    srv = start(cfg)
    assert "created user admin" not in srv.log_text()       # users exist: no first-run password
    s, answer = login(srv.url, "root", "admin-password-9")
    assert answer.status_code == 303
    yield srv, s
    srv.stop()


def post(s, srv, path, **data):
    return s.post(srv.url + path, data={**data, "csrf_token": page_token(s, srv.url)}, allow_redirects=False,
                  timeout=120)


def notices(html: str) -> list[str]:
    return [re.sub(r"<[^>]+>", "", m).strip() for m in re.findall(r'<p class="(?:notice|alert)"[^>]*>(.*?)</p>', html)]


def test_enrol_by_upload_shows_each_photo(hub):
    srv, s = hub
    photos = sorted(PERSON.glob("*.jpg"))[:2]
    files = [("photos", (p.name, p.read_bytes(), "image/jpeg")) for p in photos]
    files.insert(1, ("photos", (NO_FACE.name, NO_FACE.read_bytes(), "image/jpeg")))
    files.append(("photos", ("empty.jpg", b"", "image/jpeg")))
    answer = s.post(srv.url + "/console/enrol", files=files, timeout=120,
                    data={"csrf_token": page_token(s, srv.url), "app": "1001", "group": "staff", "user": "colin",
                          "user_info": "Colin Powell", "quality": "NORMAL"})
    assert answer.status_code == 200
    statuses = re.findall(r'data-status="(\w+)"', answer.text)
    assert statuses == ["enrolled", "rejected", "enrolled", "error"]
    assert '<span class="code">222202</span> pic not has face' in answer.text
    again = s.post(srv.url + "/console/enrol", files=files[:1], timeout=120,
                   data={"csrf_token": page_token(s, srv.url), "app": "1001", "group": "staff", "user": "colin"})
    assert re.findall(r'data-status="(\w+)"', again.text) == ["already"]   # 223105, as `edge enroll` says
    missing = s.post(srv.url + "/console/enrol", files=files[:1], timeout=60,
                     data={"csrf_token": page_token(s, srv.url), "app": "9999", "group": "staff", "user": "x"})
    assert missing.status_code == 400 and "216110" in missing.text


def test_library_browse_search_copy_move_delete(hub):
    srv, s = hub
    lib = s.get(srv.url + "/console/library?app=1001", timeout=10).text
    assert "group=staff" in lib
    group = s.get(srv.url + "/console/library/group?app=1001&group=staff", timeout=10).text
    assert "colin" in group and "Colin Powell" in group
    for q in ("colin", "powell"):           # the exact id, and a part of user_info (any case)
        hits = s.get(srv.url + "/console/library/search", params={"app": "1001", "q": q}, timeout=10).text
        assert "user=colin" in hits, q
    assert "No one matches" in s.get(srv.url + "/console/library/search", params={"app": "1001", "q": "zzz"},
                                     timeout=10).text

    refused = post(s, srv, "/console/library/user/copy", app="1001", user="colin", group="staff", dst="visitors")
    page = s.get(srv.url + refused.headers["Location"], timeout=10).text
    assert "223100" in " ".join(notices(page))                       # no such group yet: Baidu's code
    assert post(s, srv, "/console/library/group", app="1001", group="visitors").status_code == 303
    assert post(s, srv, "/console/library/group", app="1001", group="night").status_code == 303
    post(s, srv, "/console/library/user/copy", app="1001", user="colin", group="staff", dst="visitors")
    user = s.get(srv.url + "/console/library/user?app=1001&user=colin", timeout=10).text
    assert "colin copied from staff to visitors" in notices(user)
    assert re.findall(r'data-group="(\w+)"', user) == ["staff", "visitors"]
    post(s, srv, "/console/library/user/move", app="1001", user="colin", group="visitors", dst="night")
    user = s.get(srv.url + "/console/library/user?app=1001&user=colin", timeout=10).text
    assert sorted(re.findall(r'data-group="(\w+)"', user)) == ["night", "staff"]

    tokens = re.findall(r'name="face_token" value="(\w+)"', user)
    assert len(tokens) == 4                                           # 2 faces x 2 groups
    post(s, srv, "/console/library/face/delete", app="1001", user="colin", group="night", face_token=tokens[-1])
    user = s.get(srv.url + "/console/library/user?app=1001&user=colin", timeout=10).text
    assert len(re.findall(r'name="face_token" value="(\w+)"', user)) == 3
    post(s, srv, "/console/library/user/delete", app="1001", user="colin", group="night")
    assert re.findall(r'data-group="(\w+)"', s.get(srv.url + "/console/library/user?app=1001&user=colin",
                                                   timeout=10).text) == ["staff"]
    # what the API answers agrees: the console wrote through the same library
    from sync_support import token, v3
    tok = token(srv.url, HUB_APPS["1001"]["api_key"], HUB_APPS["1001"]["secret_key"])
    assert v3(srv.url, tok, "faceset/user/get", {"user_id": "colin", "group_id": "@ALL"})["result"]["user_list"] == \
        [{"user_info": "Colin Powell", "group_id": "staff"}]


def test_groups_are_paged(hub):
    srv, s = hub
    for i in range(52):
        post(s, srv, "/console/library/group", app="2002", group=f"g{i:02d}")
    first = s.get(srv.url + "/console/library?app=2002", timeout=10).text
    second = s.get(srv.url + "/console/library?app=2002&start=50", timeout=10).text
    named = lambda html: re.findall(r"group=(g\d\d)", html)   # noqa: E731
    assert len(named(first)) == 50 and named(second) == ["g50", "g51"]
    assert "start=50" in first and ">Previous<" in second and ">Next<" not in second


def test_terminals_and_their_lag(hub):
    srv, s = hub
    assert "No terminal has asked" in s.get(srv.url + "/console/terminals", timeout=10).text
    key, secret = feed_key("1001")
    assert signed_feed(srv.url, key, secret, {"since": "0", "limit": "1"}).status_code == 200
    text = s.get(srv.url + "/console/terminals", timeout=10).text
    row = re.search(r'<tr><td class="mono">' + key + r'</td>(.*?)</tr>', text, re.S).group(1)
    cells = [re.sub(r"<[^>]+>", "", c).strip() for c in re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)]
    assert cells[0] == "1001" and cells[1] == "127.0.0.1" and cells[3] == "0"   # app, address, cursor
    lag = int(cells[5])
    assert lag == int(cells[4]) >= 8        # head - cursor: the enrolments, groups, moves and deletes above
    signed_feed(srv.url, key, secret, {"since": cells[4]})  # the terminal caught up to the head
    text = s.get(srv.url + "/console/terminals", timeout=10).text
    row = re.search(r'<tr><td class="mono">' + key + r'</td>(.*?)</tr>', text, re.S).group(1)
    assert re.search(r'class="num lag">0<', row)


def test_status_shows_the_loops_status_file(hub):
    srv, s = hub
    before = s.get(srv.url + "/console/status", timeout=10).text
    assert "No capture loop here" in before and "/metrics" in before and "AK1001hub" not in before
    run = subprocess.run([sys.executable, "-m", "edge.cli", "--config", str(srv.config_path), "run", "--source", "demo",
                          "--duration", "6"], capture_output=True, text=True, timeout=180)
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
    text = s.get(srv.url + "/console/status", timeout=10).text
    assert "the capture loop&#39;s status file" in text or "capture loop's status file" in text
    cams = re.search(r'<section class="card" id="cameras">(.*?)</section>', text, re.S).group(1)
    assert "<td>demo</td>" in cams and "Processed fps" in cams
    assert "Match threshold" in text
    snap = s.get(srv.url + "/console/api/status", timeout=10).json()["result"]
    assert snap["runner"]["cameras"]["demo"]["frames"] > 0 and snap["from_file"] is True
    assert snap["sizes"]["1001"]["users"] == 1 and snap["health"]["status"] == "ok"
    assert requests.get(srv.url + "/console/api/status", timeout=10).status_code == 401   # no session


def test_a_page_of_an_unknown_app_is_refused(hub):
    srv, s = hub
    answer = s.get(srv.url + "/console/library?app=nope", timeout=10)
    assert answer.status_code == 404 and "216110" in answer.text
    api = s.get(srv.url + "/console/library?app=nope", headers={"Accept": "application/json"}, timeout=10)
    assert api.json() == {"error_code": 216110, "error_msg": "no such library (APP_ID) on this hub"}
    assert requests.get(srv.url + "/health", timeout=10).json()["status"] == "ok"
