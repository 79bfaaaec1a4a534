"""The Events page in a real Chromium against a real `edge run` on the demo camera (its
console on a free loopback port): an event of the loop appears live, the history search
finds it, the attendance CSV downloads."""
from __future__ import annotations

import base64
import csv
import io
import time

import pytest

from browser import browser  # noqa: F401 - the fixture
from edge.aip.v3 import AipFace
from edge.config import load_config
from edge.console import terminal as edge_terminal
from edge.events.attendance import CSV_COLUMNS
from edge.models.manifest import REPO_ROOT, sample_path


@pytest.fixture(scope="module")
def terminal(tmp_path_factory):
    folder = tmp_path_factory.mktemp("terminal")
    # the demo photo's person enrolled, liveness off: the demo camera's tracks are recognised
    (folder / "enrol.yaml").write_text(f"data_dir: {folder / 'data'}\nmodels: {{dir: {REPO_ROOT / 'models'}}}\n")
    cfg = load_config(folder / "enrol.yaml")
    photo = base64.b64encode(sample_path("demo", cfg.models_dir).read_bytes()).decode()
    answer = AipFace("edge", "", "", config=cfg).addUser(photo, "BASE64", "visitors", "demo_visitor",
                                                         {"user_info": "Dana Demo", "quality_control": "NONE"})
    assert answer["error_code"] == 0, answer
    term = edge_terminal.start_terminal(folder, "liveness_control: NONE")
    yield term
    assert term.stop() == 0
    assert "Traceback" not in term.output


def test_events_page_live_search_and_attendance_download(terminal, browser, tmp_path):  # noqa: F811
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    browser.execute_cdp_cmd("Browser.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(downloads)})
    browser.login(terminal.url, "admin", terminal.password)
    browser.get(terminal.url + "/console/events")
    browser.wait_text("#live-state", "live")
    # a decision of the loop arrives on the open page, without a reload
    row = browser.wait_css("#live-rows tr.ev-recognised", timeout=90)
    assert "demo_visitor" in row.text and "Dana Demo" in row.text and "demo" in row.text
    assert "score" in row.find_element("css selector", "td:last-child").text
    event_id = row.get_attribute("data-event")
    browser.shot("live")

    # the history finds it by a substring of the person's name, and by kind and camera
    browser.css("input[name=person]").send_keys("dana")
    browser.find_element("css selector", "select[name=kind] option[value=recognised]").click()
    browser.css("#search-go").click()
    browser.wait_css("#history-table")
    ids = [tr.get_attribute("data-event") for tr in browser.all("#history-table tbody tr")]
    assert event_id in ids
    assert all("recognised" in tr.text and "demo_visitor" in tr.text for tr in browser.all("#history-table tbody tr"))
    browser.shot("search")
    browser.css("input[name=person]").clear()
    browser.css("input[name=person]").send_keys("nobody-by-this-name")
    browser.css("#search-go").click()
    browser.wait_css("#history-empty")
    browser.get(terminal.url + "/console/events?code=12x")
    assert "216100" in browser.css("#search-error").text
    browser.shot("bad-code")

    # the attendance export: today's records as `edge attendance` writes them
    browser.get(terminal.url + "/console/events")
    browser.css("#attendance-go").click()
    end = time.monotonic() + 30
    files = []
    while time.monotonic() < end and not files:
        files = [p for p in downloads.glob("attendance-*.csv")]
        time.sleep(0.2)
    assert files, list(downloads.iterdir())
    rows = list(csv.reader(io.StringIO(files[0].read_text(encoding="utf-8"))))
    assert tuple(rows[0]) == CSV_COLUMNS
    assert any(r[2] == "demo_visitor" and r[3] == "visitors" and r[4] == "demo" for r in rows[1:]), rows
    browser.shot("attendance")


def test_a_hubs_events_page_says_where_events_are(tmp_path, browser):  # noqa: F811
    from console_support import start_console
    srv, password = start_console(tmp_path)
    try:
        browser.login(srv.url, "admin", password)
        browser.get(srv.url + "/console/events")
        assert "Events live on the terminals" in browser.css("main").text
        assert not browser.all("#live") and not browser.all("script[src$='events.js']")
        browser.shot("hub")
    finally:
        srv.stop()
