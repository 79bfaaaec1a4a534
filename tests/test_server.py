"""`edge serve` against Baidu's real SDKs (baidu-aip 2.2.2.0 and 4.16.13), unchanged.

The SDKs talk HTTP to a real server process (fixture `server`); for read calls their
answers are compared with the in-process API on the same library, so the service adds
nothing and loses nothing. Auth, limits, TLS, metrics and logs are checked on the wire.
"""
from __future__ import annotations

import base64
import concurrent.futures as cf
import datetime
import json
import re
import subprocess
import time
import types

import pytest
import requests

from conftest import PEERS, SERVER_APPS
from edge.aip import AipFace as LocalV2
from edge.aip.v3 import AipFace as LocalV3
from edge.config import AppConfig, load_config
from edge.models.manifest import REPO_ROOT
from edge.server import auth
from serving import load_sdk, sdk_client, start_server, wait_until
from test_aip_v2 import A, B, C, photo, side_by_side

EXAMPLES = PEERS / "examples"
APP, KEY, SECRET = "1001", *SERVER_APPS["1001"][:2]


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def same(http: dict, local: dict) -> None:
    """Equal but for the per-call log_id and timestamp."""
    strip = lambda d: {k: v for k, v in d.items() if k not in ("log_id", "timestamp")}  # noqa: E731
    assert strip(http) == strip(local)


@pytest.fixture(scope="module")
def v3(server):
    return sdk_client("4.16.13", server.url, APP, KEY, SECRET)


@pytest.fixture(scope="module")
def v2(server):
    return sdk_client("2.2.2.0", server.url, APP, KEY, SECRET)


@pytest.fixture(scope="module")
def local(server):
    cfg = load_config(server.config_path)
    return LocalV2(APP, KEY, SECRET, config=cfg), LocalV3(APP, KEY, SECRET, config=cfg)


def token(server, app_id=APP) -> str:
    key, secret = server.apps[app_id][:2]
    r = requests.get(f"{server.url}/oauth/2.0/token", params={
        "grant_type": "client_credentials", "client_id": key, "client_secret": secret})
    assert r.status_code == 200, r.text
    return r.json()["access_token"]


def post(server, path: str, body, *, params=None, form=False):
    kw = {"data": body} if form else {"data": json.dumps(body), "headers": {"Content-Type": "application/json"}}
    return requests.post(f"{server.url}/rest/2.0/face/{path}", params=params, **kw).json()


# -- the real SDKs, every face method ---------------------------------------------------------
def test_v3_sdk_runs_every_face_method(server, v3, local):
    assert v3.groupAdd("v3staff")["error_code"] == 0
    added = v3.addUser(b64(photo(A, 1)), "BASE64", "v3staff", "paul", {"user_info": "Paul"})
    assert added["error_code"] == 0 and re.fullmatch(r"[0-9a-f]{32}", added["result"]["face_token"])
    assert v3.addUser(b64(photo(B, 1)), "BASE64", "v3staff", "jlo", {"user_info": "Jen"})["error_code"] == 0

    probe = b64(photo(A, 2))
    found = v3.search(probe, "BASE64", "v3staff", {"max_user_num": 2, "quality_control": "LOW"})
    assert found["error_code"] == 0 and set(found) == {"error_code", "error_msg", "log_id", "timestamp",
                                                       "cached", "result"}
    best = found["result"]["user_list"][0]
    assert (best["user_id"], best["group_id"], best["user_info"]) == ("paul", "v3staff", "Paul")
    assert 80 < best["score"] <= 100
    same(found, local[1].search(probe, "BASE64", "v3staff", {"max_user_num": 2, "quality_control": "LOW"}))

    det = v3.detect(probe, "BASE64", {"face_field": "age,gender,quality,landmark"})
    assert det["error_code"] == 0 and det["result"]["face_num"] == 1
    same(det, local[1].detect(probe, "BASE64", {"face_field": "age,gender,quality,landmark"}))
    by_token = v3.search(det["result"]["face_list"][0]["face_token"], "FACE_TOKEN", "v3staff")
    assert by_token["result"]["user_list"][0]["user_id"] == "paul"

    two = b64(side_by_side(photo(A, 3), photo(B, 2)))
    multi = v3.multiSearch(two, "BASE64", "v3staff", {"max_face_num": 2})
    assert multi["error_code"] == 0
    assert sorted(f["user_list"][0]["user_id"] for f in multi["result"]["face_list"]) == ["jlo", "paul"]

    pair = [{"image": probe, "image_type": "BASE64"}, {"image": b64(photo(A, 3)), "image_type": "BASE64"}]
    matched = v3.match(pair)
    assert matched["error_code"] == 0 and matched["result"]["score"] > 80
    same(matched, local[1].match(pair))
    live = v3.faceverify([{"image": probe, "image_type": "BASE64"}])
    assert live["error_code"] == 0 and 0 <= live["result"]["face_liveness"] <= 1

    assert v3.getUser("paul", "v3staff")["result"]["user_list"] == [{"user_info": "Paul", "group_id": "v3staff"}]
    faces = v3.faceGetlist("paul", "v3staff")["result"]["face_list"]
    assert [f["face_token"] for f in faces] == [added["result"]["face_token"]]
    assert v3.updateUser(b64(photo(A, 3)), "BASE64", "v3staff", "paul", {"user_info": "P."})["error_code"] == 0
    assert sorted(v3.getGroupUsers("v3staff")["result"]["user_id_list"]) == ["jlo", "paul"]
    assert v3.groupAdd("v3copy")["error_code"] == 0
    assert v3.userCopy("jlo", {"src_group_id": "v3staff", "dst_group_id": "v3copy"})["error_code"] == 0
    assert "v3copy" in v3.getGroupList({"length": 100})["result"]["group_id_list"]
    new_token = v3.faceGetlist("paul", "v3staff")["result"]["face_list"][0]["face_token"]
    assert v3.faceDelete("paul", "v3staff", new_token)["error_code"] == 0
    assert v3.deleteUser("v3staff", "jlo")["error_code"] == 0
    assert v3.groupDelete("v3copy")["error_code"] == 0
    gone = v3.getUser("jlo", "v3staff")
    assert (gone["error_code"], gone["result"]) == (223103, None)
    assert v3.personVerify(probe, "BASE64", "110101199001011234", "Ann")["error_code"] == 216102


def test_v2_sdk_runs_every_face_method(server, v2, local):
    assert v2.addUser("paul", "Paul", "v2staff,v2all", photo(A, 1)).keys() == {"log_id"}
    assert v2.addUser("jlo", "Jen", "v2staff", photo(B, 1)).keys() == {"log_id"}

    who = v2.identifyUser("v2staff", photo(A, 2), {"user_top_num": 2})
    assert who["result"][0]["uid"] == "paul" and who["result"][0]["scores"][0] > 80
    same(who, local[0].identifyUser("v2staff", photo(A, 2), {"user_top_num": 2}))
    ver = v2.verifyUser("paul", "v2staff", photo(A, 2))
    assert ver["result"][0] > 80 and ver["result_num"] == 1
    miss = v2.verifyUser("paul", "v2staff", photo(B, 2))
    assert miss["result"][0] < 60
    multi = v2.multiIdentify("v2staff", side_by_side(photo(A, 3), photo(B, 2)), {"detect_top_num": 2})
    assert sorted(r["uid"] for r in multi["result"]) == ["jlo", "paul"]
    det = v2.detect(photo(A, 2), {"face_fields": "age,qualities"})
    assert det["result_num"] == 1
    same(det, local[0].detect(photo(A, 2), {"face_fields": "age,qualities"}))
    m = v2.match([photo(A, 2), photo(A, 3), photo(B, 2)])
    assert [(r["index_i"], r["index_j"]) for r in m["result"]] == [(0, 1), (0, 2), (1, 2)]
    assert m["result"][0]["score"] > 80 > m["result"][1]["score"]

    assert v2.getUser("paul")["result"][0]["uid"] == "paul"
    assert {"v2staff", "v2all"} <= set(v2.getGroupList({"end": 1000})["result"])
    assert sorted(u["uid"] for u in v2.getGroupUsers("v2staff")["result"]) == ["jlo", "paul"]
    assert v2.addGroupUser("v2staff", "v2new", "jlo").keys() == {"log_id"}
    assert v2.deleteGroupUser("v2staff", "jlo").keys() == {"log_id"}
    assert [u["uid"] for u in v2.getGroupUsers("v2new")["result"]] == ["jlo"]
    assert v2.updateUser("paul", "P.", "v2staff", photo(A, 3)).keys() == {"log_id"}
    assert v2.deleteUser("paul").keys() == {"log_id"}
    assert v2.getUser("paul")["error_code"] == 216611
    live = v2.faceverify(photo(A, 2))
    assert live["result_num"] == 1 and 0 <= float(live["result"][0]["faceliveness"]) <= 1
    assert v2.personVerify(photo(A, 2), "110101199001011234", "Ann")["error_code"] == 216102
    assert v2.identifyUser("v2staff", b"not an image")["error_code"] == 216201


# -- authentication ---------------------------------------------------------------------------
def test_token_endpoint_answers_like_baidu(server):
    ok = requests.post(f"{server.url}/oauth/2.0/token", data={
        "grant_type": "client_credentials", "client_id": KEY, "client_secret": SECRET}).json()
    assert ok["expires_in"] == 2592000 and "brain_all_scope" in ok["scope"].split(" ")
    assert re.fullmatch(r"24\.[0-9a-f]{32}\.2592000\.\d+\.\d+-1001", ok["access_token"])
    bad = requests.get(f"{server.url}/oauth/2.0/token", params={
        "grant_type": "client_credentials", "client_id": KEY, "client_secret": SECRET + "x"})
    assert bad.status_code == 401 and bad.json() == {"error": "invalid_client",
                                                     "error_description": "Client authentication failed"}
    unknown = requests.get(f"{server.url}/oauth/2.0/token", params={
        "grant_type": "client_credentials", "client_id": "nobody", "client_secret": SECRET})
    assert unknown.status_code == 401 and unknown.json()["error_description"] == "unknown client id"
    grant = requests.get(f"{server.url}/oauth/2.0/token", params={"grant_type": "password"})
    assert grant.status_code == 400 and grant.json()["error"] == "unsupported_grant_type"


def test_access_token_codes(server):
    body = {"group_id": "g"}
    assert post(server, "v3/faceset/group/add", body)["error_code"] == 100
    assert post(server, "v3/faceset/group/add", body, params={"access_token": "24.abc"})["error_code"] == 110
    real = token(server)
    forged = real[:3] + ("0" if real[3] != "0" else "1") + real[4:]
    assert post(server, "v3/faceset/group/add", body, params={"access_token": forged})["error_code"] == 110
    app = AppConfig(APP, KEY, SECRET)
    expired = auth.issue_token(app, time.time() - 31 * 86400, 2592000)["access_token"]
    answer = post(server, "v3/faceset/group/add", body, params={"access_token": expired})
    assert answer["error_code"] == 111 and answer["error_msg"] == "Access token expired"
    v2_answer = post(server, "v2/faceset/group/getlist", {}, params={"access_token": expired}, form=True)
    assert v2_answer.keys() == {"error_code", "error_msg", "log_id"} and v2_answer["error_code"] == 111
    # v2 also takes the token as a form field
    assert "error_code" not in post(server, "v2/faceset/group/getlist", {"access_token": real}, form=True)
    # a rotated secret invalidates every token issued with the old one
    with pytest.raises(Exception) as err:
        auth.check_token(real, {APP: AppConfig(APP, KEY, "rotated")}, time.time())
    assert err.value.error_code == 110


def test_sdk_refreshes_a_rejected_token(server):
    client = sdk_client("4.16.13", server.url, APP, KEY, SECRET)
    assert client.getGroupList()["error_code"] == 0
    client._authObj["access_token"] = "24." + "0" * 32 + ".2592000.9999999999.1-1001"
    assert client.getGroupList()["error_code"] == 0  # 110 -> the SDK fetches a new token, retries


@pytest.mark.parametrize("version", ["2.2.2.0", "4.16.13"])
def test_bce_signature_from_the_real_sdk(server, version):
    client = sdk_client(version, server.url, APP, KEY, SECRET)
    client._auth()
    client._isCloudUser = True  # what the SDK does when the token lacks brain_all_scope
    answer = client.getGroupList()
    assert answer.get("error_code", 0) == 0, answer

    wrong = sdk_client(version, server.url, APP, KEY, "not-the-secret")
    assert wrong.getGroupList()["error_code"] == 14  # token refused -> SDK signs -> bad signature


def test_bce_signature_is_checked_properly(server, monkeypatch):
    client = sdk_client("4.16.13", server.url, APP, KEY, SECRET)
    client._auth()
    client._isCloudUser = True
    url = f"{server.url}/rest/2.0/face/v3/faceset/group/getlist"
    params = {"aipSdk": "python", "aipVersion": "4.15.13"}
    headers = client._getAuthHeaders("POST", url, dict(params), {"Content-Type": "application/json"})

    def send(h, p=params, body="{}"):
        return requests.post(url, params=p, data=body, headers=h).json()["error_code"]

    assert send(headers) == 0
    sig = headers["authorization"]
    assert send({**headers, "authorization": sig[:-1] + ("0" if sig[-1] != "0" else "1")}) == 14
    assert send(headers, p={**params, "aipVersion": "9"}) == 14          # query is signed
    assert send({**headers, "x-bce-date": "2020-01-01T00:00:00Z"}) == 14  # signed header changed
    assert send({**headers, "authorization": sig.replace(KEY, "AKnobody")}) == 14

    class Past:  # the SDK's clock 2 hours behind: outside its 1800 s window
        @staticmethod
        def utcnow():
            return datetime.datetime.utcnow() - datetime.timedelta(hours=2)
    monkeypatch.setattr(load_sdk("4.16.13").base, "datetime", types.SimpleNamespace(datetime=Past))
    old = client._getAuthHeaders("POST", url, dict(params), {"Content-Type": "application/json"})
    assert send(old) == 14


def test_apps_are_isolated(server):
    one = sdk_client("4.16.13", server.url, APP, KEY, SECRET)
    two = sdk_client("4.16.13", server.url, "2002", *SERVER_APPS["2002"][:2])
    assert one.groupAdd("only_in_1001")["error_code"] == 0
    assert "only_in_1001" not in two.getGroupList({"length": 1000})["result"]["group_id_list"]
    assert two.getGroupUsers("only_in_1001")["error_code"] == 223100


# -- input handling on the wire ------------------------------------------------------------------
def test_body_and_image_limits(server):
    tok = {"access_token": token(server)}
    big = "A" * (int(2.1 * 1024 * 1024) // 4 * 4)   # valid base64 length, over v3's 2 MB
    assert post(server, "v3/detect", {"image": big, "image_type": "BASE64"}, params=tok)["error_code"] == 222304
    huge = "A" * (int(4.2 * 1024 * 1024) // 4 * 4)  # over v2's 4 MB
    assert post(server, "v2/detect", {"image": huge}, params=tok, form=True)["error_code"] == 216202
    over = "A" * (7 * 1024 * 1024)                    # over detect's cap and the fixture's 6 MB bound
    answer = post(server, "v3/detect", {"image": over, "image_type": "BASE64"}, params=tok)
    assert answer["error_code"] == 222304 and answer["result"] is None
    assert post(server, "v2/detect", {"image": over}, params=tok, form=True)["error_code"] == 216103
    r = requests.post(f"{server.url}/rest/2.0/face/v3/search", params=tok, data=b"{not json",
                      headers={"Content-Type": "application/json"})
    assert r.status_code == 200 and r.json()["error_code"] == 222200
    assert post(server, "v3/search", {"image_type": "BASE64"}, params=tok)["error_code"] == 222001
    assert post(server, "v2/identify", {"group_id": "g"}, params=tok, form=True)["error_code"] == 216101
    assert post(server, "v3/nothing/here", {}, params=tok)["error_code"] == 3


def test_inference_runs_beside_the_event_loop(server):
    """While photos wait for or run in the inference workers, the loop still answers."""
    url = f"{server.url}/rest/2.0/face/v3/detect"
    body = json.dumps({"image": b64((EXAMPLES / "obama-1080p.jpg").read_bytes()), "image_type": "BASE64",
                       "face_field": "age,quality,landmark"})
    tok = {"access_token": token(server)}
    seen = []
    with cf.ThreadPoolExecutor(8) as pool:
        calls = [pool.submit(requests.post, url, params=tok, data=body) for _ in range(8)]

        def health_while_busy():
            h = requests.get(f"{server.url}/health").json()
            seen.append(h["pending"])
            return h["pending"] > 0
        assert wait_until(health_while_busy, timeout=30)
        answers = [c.result().json() for c in calls]
    assert all(a["error_code"] == 0 for a in answers)
    assert max(seen) >= 1


# -- the tight server: TLS, QPS, queue limit, restart ----------------------------------------------------
@pytest.fixture(scope="module")
def tight(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("tight")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj",
                    "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                    "-keyout", str(tmp / "key.pem"), "-out", str(tmp / "cert.pem")],
                   check=True, capture_output=True)
    apps = {"3003": ("AK3003", "SK3003", 4)}
    srv = start_server(tmp, apps, server={"tls_cert": str(tmp / "cert.pem"), "tls_key": str(tmp / "key.pem"),
                                          "max_pending": 2, "workers": 1})
    srv.tmp, srv.cert = tmp, str(tmp / "cert.pem")
    yield srv
    srv.stop()


def test_tls_and_per_app_qps(tight):
    assert tight.url.startswith("https://127.0.0.1:")
    assert requests.get(f"{tight.url}/health", verify=tight.cert).json()["status"] == "ok"
    with pytest.raises(requests.exceptions.SSLError):
        requests.get(f"{tight.url}/health")  # an unknown certificate is refused by default
    client = sdk_client("4.16.13", tight.url, "3003", "AK3003", "SK3003")  # SDK: verify=False
    codes = [client.getGroupList()["error_code"] for _ in range(12)]
    assert codes[0] == 0 and 18 in codes and set(codes) <= {0, 18}
    time.sleep(1.1)
    assert client.getGroupList()["error_code"] == 0  # the bucket refills at 4 per second


def test_full_inference_queue_answers_error_4(tight):
    time.sleep(1.5)
    tok = requests.get(f"{tight.url}/oauth/2.0/token", verify=tight.cert, params={
        "grant_type": "client_credentials", "client_id": "AK3003", "client_secret": "SK3003"}).json()
    body = json.dumps({"image": b64((EXAMPLES / "obama-1080p.jpg").read_bytes()), "image_type": "BASE64"})
    url = f"{tight.url}/rest/2.0/face/v3/detect"
    codes = []
    for _ in range(3):  # bursts within the 4 QPS budget, spaced to refill it
        with cf.ThreadPoolExecutor(4) as pool:
            calls = [pool.submit(requests.post, url, params={"access_token": tok["access_token"]}, data=body,
                                 verify=tight.cert) for _ in range(4)]
            codes += [c.result().json()["error_code"] for c in calls]
        time.sleep(1.2)
    assert 0 in codes and 4 in codes and set(codes) <= {0, 4, 18}


def test_acknowledged_writes_survive_a_kill(tight):
    time.sleep(1.2)
    client = sdk_client("4.16.13", tight.url, "3003", "AK3003", "SK3003")
    assert client.addUser(b64(photo(C, 1)), "BASE64", "kept", "ricardo")["error_code"] == 0
    tight.proc.kill()
    tight.proc.wait()
    again = start_server(tight.tmp, tight.apps, server={"tls_cert": tight.cert,
                                                        "tls_key": str(tight.tmp / "key.pem")})
    try:
        client = sdk_client("4.16.13", again.url, "3003", "AK3003", "SK3003")
        assert client.getGroupUsers("kept")["result"]["user_id_list"] == ["ricardo"]
        hit = client.search(b64(photo(C, 2)), "BASE64", "kept")
        assert hit["result"]["user_list"][0]["user_id"] == "ricardo"
        assert again.stop() == 0  # SIGTERM: clean exit
        assert "stopping" in again.log_text()
    finally:
        again.stop()


# -- what operators see ------------------------------------------------------------------------------------
def test_metrics_health_and_defaults(server, v3):
    assert load_config().server.host == "127.0.0.1" and server.url.startswith("http://127.0.0.1:")
    v3.groupAdd("metrics_probe")
    text = requests.get(f"{server.url}/metrics").text
    added = re.search(r'^edge_http_requests_total\{error_code="0",'
                      r'path="/rest/2.0/face/v3/faceset/group/add"\} (\S+)$', text, re.M)
    assert added and float(added.group(1)) >= 1, text[:3000]
    assert re.search(r'^edge_http_request_seconds_bucket\{le="0.005",path="/rest/2.0/face/v3/faceset/group/add"\}',
                     text, re.M), text[:3000]
    faces = {m.group(1): float(m.group(2)) for m in
             re.finditer(r'^edge_library_faces\{app_id="(\d+)"\} (\S+)$', text, re.M)}
    cfg = load_config(server.config_path)
    assert faces["1001"] == LocalV3(APP, KEY, SECRET, config=cfg)._lib.store.face_count()
    health = requests.get(f"{server.url}/health").json()
    assert health["status"] == "ok" and health["apps"] == ["1001", "2002"]


def test_access_log_is_structured_and_secret_free(server):
    requests.get(f"{server.url}/oauth/2.0/token", params={
        "grant_type": "client_credentials", "client_id": KEY, "client_secret": SECRET})
    tok = token(server)
    post(server, "v3/faceset/group/getlist", {}, params={"access_token": tok})
    assert wait_until(lambda: any('"path":"/rest/2.0/face/v3/faceset/group/getlist"' in line
                                  for line in server.lines))
    entries = [json.loads(line.split("edge.access: ", 1)[1]) for line in server.lines if "edge.access: " in line]
    assert entries and all({"ts", "remote", "method", "path", "status", "error_code", "app_id", "ms"} <= e.keys()
                           for e in entries)
    text = server.log_text()
    for app_id, (key, secret, *_) in SERVER_APPS.items():
        assert secret not in text
    assert tok not in text and tok.split(".")[1] not in text


# -- configuration of apps --------------------------------------------------------------------------------
def test_app_credentials_from_config_and_environment(tmp_path, monkeypatch):
    from edge.config import ConfigError
    path = tmp_path / "edge.yaml"
    path.write_text('apps:\n  "7": {api_key: k7, secret_key: s7-hidden, qps: 3}\n')
    monkeypatch.setenv("EDGE_APPS", "8:k8:s8-hidden,9:k9:s9")
    apps = {a.app_id: a for a in load_config(path).apps}
    assert sorted(apps) == ["7", "8", "9"] and apps["7"].qps == 3 and apps["8"].secret_key == "s8-hidden"
    assert "hidden" not in repr(load_config(path))
    monkeypatch.setenv("EDGE_APPS", "8:k7:other")           # api keys must be unique
    with pytest.raises(ConfigError, match="share an api_key"):
        load_config(path)
    monkeypatch.setenv("EDGE_APPS", "8:k8")
    with pytest.raises(ConfigError, match="EDGE_APPS"):
        load_config(path)
    monkeypatch.delenv("EDGE_APPS")
    path.write_text("apps:\n  \"7\": {api_key: k7}\n")
    with pytest.raises(ConfigError, match="secret_key"):
        load_config(path)
    path.write_text("server: {tls_cert: a.pem}\n")
    with pytest.raises(ConfigError, match="tls_key"):
        load_config(path)


def test_serve_without_apps_refuses_to_start(tmp_path):
    import os
    import sys
    (tmp_path / "edge.yaml").write_text(f"data_dir: {tmp_path}\n")
    env = {k: v for k, v in os.environ.items() if k != "EDGE_APPS"}
    run = subprocess.run([sys.executable, "-m", "edge.cli", "--config", str(tmp_path / "edge.yaml"), "serve"],
                         capture_output=True, text=True, env={**env, "PYTHONPATH": str(REPO_ROOT)}, timeout=60)
    assert run.returncode == 2 and "no APP_ID configured" in run.stderr and "Traceback" not in run.stderr
