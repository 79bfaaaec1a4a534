"""The console's security against a real `edge serve` on loopback (docs/console.md):
passwords, the attempt limits, CSRF, roles, logout, cookie flags, and no console off
loopback without TLS."""
from __future__ import annotations

import subprocess
import sys
import time

import pytest
import requests

from console_support import add_user, csrf, login, page_token, start_console
from serving import wait_until

LIMITS = {"attempts_per_user": 3, "attempts_per_address": 12, "attempt_window_s": 600}


@pytest.fixture(scope="module")
def hub(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("console")
    srv, password = start_console(tmp, LIMITS)
    assert password, srv.log_text()
    assert "console at http://127.0.0.1:" in srv.log_text()
    viewer = add_user(srv.config_path, "vera", "viewer-password-1", "viewer")
    assert viewer.returncode == 0, viewer.stderr
    yield srv, password
    srv.stop()


def test_first_start_prints_the_admin_password_once(hub, tmp_path):
    srv, password = hub
    assert srv.log_text().count(password) == 1
    listed = subprocess.run([sys.executable, "-m", "edge.cli", "--config", str(srv.config_path), "console", "user",
                             "list"], capture_output=True, text=True, timeout=60)
    assert listed.returncode == 0 and "admin\tadmin" in listed.stdout and "vera\tviewer" in listed.stdout
    assert password not in listed.stdout


def test_login_and_cookie_flags(hub):
    srv, password = hub
    s, answer = login(srv.url, "admin", password)
    assert answer.status_code == 303 and answer.headers["Location"] == "/console/"
    cookie = answer.headers["Set-Cookie"]
    assert "edge_session=" in cookie and "HttpOnly" in cookie and "SameSite=Strict" in cookie
    assert "Path=/console" in cookie and "Secure" not in cookie      # plain http on loopback
    page = s.get(srv.url + "/console/status", timeout=10)
    assert page.status_code == 200 and "admin (admin)" in page.text
    assert s.get(srv.url + "/console", timeout=10).url == srv.url + "/console/status"   # /console -> home
    assert "frame-ancestors 'none'" in page.headers["Content-Security-Policy"]
    assert page.headers["X-Frame-Options"] == "DENY"


def test_wrong_password_refused(hub):
    srv, _ = hub
    s, answer = login(srv.url, "vera", "not-her-password")
    assert answer.status_code == 401 and "Wrong user name or password" in answer.text
    assert "edge_session" not in s.cookies
    assert s.get(srv.url + "/console/status", allow_redirects=False, timeout=10).status_code == 303
    api = s.get(srv.url + "/console/api/anything", timeout=10)
    assert api.status_code == 401 and api.json()["error_code"] == 110
    _, unknown = login(srv.url, "nobody", "whatever-it-is")
    assert unknown.status_code == 401                        # the same answer: no user enumeration
    _, api_keys = login(srv.url, "AKconsole", "SKconsole-secret")
    assert api_keys.status_code == 401                       # an APP_ID's credentials do not open the console


def test_attempt_limit_per_user(hub):
    srv, _ = hub
    add_user(srv.config_path, "lim", "limited-password-1", "viewer")
    for _ in range(LIMITS["attempts_per_user"]):
        assert login(srv.url, "lim", "wrong-password")[1].status_code == 401
    _, refused = login(srv.url, "lim", "limited-password-1")   # the right one, too late
    assert refused.status_code == 429 and "Too many failed logins" in refused.text
    assert wait_until(lambda: "refused: too many failed attempts" in srv.log_text()), srv.log_text()[-2000:]


def test_attempt_limit_per_address(tmp_path):
    srv, password = start_console(tmp_path, {"attempts_per_user": 100, "attempts_per_address": 4})
    try:
        for i in range(4):
            assert login(srv.url, f"guess{i}", "wrong-password")[1].status_code == 401
        assert login(srv.url, "admin", password)[1].status_code == 429    # this address is blocked
    finally:
        srv.stop()


def test_post_without_csrf_token_refused(hub):
    srv, password = hub
    s, _ = login(srv.url, "admin", password)
    body = {"app": "1001", "group": "g1"}
    for headers, data in (({}, body), ({"X-CSRF-Token": "forged"}, body), ({}, {**body, "csrf_token": "forged"})):
        answer = s.post(srv.url + "/console/library/group", data=data, headers=headers, allow_redirects=False,
                        timeout=10)
        assert answer.status_code == 403 and "CSRF" in answer.text
    assert "g1" not in s.get(srv.url + "/console/library?app=1001", timeout=10).text
    ok = s.post(srv.url + "/console/library/group", data={**body, "csrf_token": page_token(s, srv.url)},
                allow_redirects=False, timeout=10)
    assert ok.status_code == 303
    assert "g1" in s.get(srv.url + "/console/library?app=1001", timeout=10).text
    # the login form: its double-submit cookie must match the field
    fresh = requests.Session()
    fresh.get(srv.url + "/console/login", timeout=10)
    forged = fresh.post(srv.url + "/console/login", data={"username": "admin", "password": password,
                                                          "csrf_token": "forged"}, allow_redirects=False, timeout=10)
    assert forged.status_code == 403 and "edge_session" not in fresh.cookies


def test_viewer_refused_a_write(hub):
    srv, _ = hub
    s, answer = login(srv.url, "vera", "viewer-password-1")
    assert answer.status_code == 303
    assert s.get(srv.url + "/console/library?app=1001", timeout=10).status_code == 200   # she may read
    token = page_token(s, srv.url)
    for path, data in (("/console/library/group", {"app": "1001", "group": "g2"}),
                       ("/console/library/user/delete", {"app": "1001", "group": "g1", "user": "x"}),
                       ("/console/enrol", {"app": "1001", "group": "g1", "user": "x"})):
        refused = s.post(srv.url + path, data={**data, "csrf_token": token}, allow_redirects=False, timeout=10)
        assert refused.status_code == 403 and "admin role" in refused.text, path
    refused = s.post(srv.url + "/console/library/group", data={"app": "1001", "group": "g2", "csrf_token": token},
                     headers={"Accept": "application/json"}, timeout=10)
    assert refused.json()["error_code"] == 6


def test_logout_ends_the_session(hub):
    srv, password = hub
    s, _ = login(srv.url, "admin", password)
    stolen = dict(s.cookies)                     # what a copied cookie would hold
    token = page_token(s, srv.url)
    assert s.post(srv.url + "/console/logout", data={"csrf_token": token}, allow_redirects=False,
                  timeout=10).status_code == 303
    again = requests.get(srv.url + "/console/status", cookies=stolen, allow_redirects=False, timeout=10)
    assert again.status_code == 303 and again.headers["Location"].startswith("/console/login")


def test_login_rotates_the_session_id(hub):
    srv, password = hub
    planted = requests.Session()
    planted.cookies.set("edge_session", "planted-by-someone-else", path="/console")
    s, answer = login(srv.url, "admin", password, planted)
    assert answer.status_code == 303
    issued = answer.headers["Set-Cookie"].split("edge_session=", 1)[1].split(";", 1)[0]
    assert len(issued) >= 40 and issued != "planted-by-someone-else"
    assert requests.get(srv.url + "/console/status", cookies={"edge_session": "planted-by-someone-else"},
                        allow_redirects=False, timeout=10).status_code == 303


def test_off_loopback_without_tls_not_mounted(tmp_path):
    srv, password = start_console(tmp_path, server={"host": "0.0.0.0"})
    try:
        port = srv.url.rsplit(":", 1)[1]
        answer = requests.get(f"http://127.0.0.1:{port}/console/login", timeout=10)
        assert answer.status_code == 403
        assert "not a loopback address and no TLS" in answer.json()["error_msg"]
        assert password is None                                   # no admin made for a console not served
        assert srv.log_text().count("the console is not served") == 1
        assert requests.get(f"http://127.0.0.1:{port}/health", timeout=10).json()["status"] == "ok"   # the API is
    finally:
        srv.stop()


def test_off_loopback_with_tls_served_with_secure_cookies(tmp_path):
    key, cert = tmp_path / "c.key", tmp_path / "c.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True)
    srv, password = start_console(tmp_path, server={"host": "0.0.0.0", "tls_cert": str(cert), "tls_key": str(key)})
    try:
        port = srv.url.rsplit(":", 1)[1]
        s = requests.Session()
        s.trust_env = False       # $REQUESTS_CA_BUNDLE would override verify
        s.verify = str(cert)
        _, answer = login(f"https://127.0.0.1:{port}", "admin", password, s)
        assert answer.status_code == 303 and "Secure" in answer.headers["Set-Cookie"]
    finally:
        srv.stop()


def test_csrf_helper_finds_the_token():
    assert csrf('<input type="hidden" name="csrf_token" value="abc">') == "abc"


def test_sessions_end_when_idle_or_too_old(tmp_path):
    """console.db's sessions against a clock: idle past session_idle_s, or past
    session_max_s since login, the token opens nothing (and the row is gone)."""
    from edge.console.auth import ConsoleDB, UserError
    db = ConsoleDB(tmp_path / "console.db")
    db.add_user("ann", "a-long-password", "admin")
    with pytest.raises(UserError):
        db.add_user("ann", "another-password", "viewer")
    with pytest.raises(UserError):
        db.add_user("bob", "short", "viewer")
    token, _ = db.new_session("ann", "127.0.0.1")
    t0 = time.time()
    assert db.session(token, 100, 1000, now=t0 + 50).user == "ann"
    assert db.session(token, 100, 1000, now=t0 + 140).user == "ann"       # used at +50: not idle yet
    assert db.session(token, 100, 1000, now=t0 + 300) is None             # idle 250 s > 100
    assert db.session(token, 100, 1000, now=t0 + 1) is None               # ended for good
    token, _ = db.new_session("ann", "127.0.0.1")
    alive = [db.session(token, 200, 1000, now=t0 + step * 90) is not None for step in range(1, 13)]
    assert alive == [True] * 11 + [False]          # used every 90 s, never idle: ended once over 1000 s old
    token, _ = db.new_session("ann", "127.0.0.1")
    db.set_password("ann", "a-newer-password")                            # a new password ends them all
    assert db.session(token, 100, 1000) is None
    assert db.verify("ann", "a-newer-password") == "admin" and db.verify("ann", "a-long-password") is None
    db.close()


def test_the_password_is_made_once(tmp_path):
    srv, password = start_console(tmp_path)
    srv.stop()
    again, second = start_console(tmp_path)          # the same data folder: the user exists
    try:
        assert password and second is None and "created user admin" not in again.log_text()
        assert login(again.url, "admin", password)[1].status_code == 303
    finally:
        again.stop()
