"""The console in a real Chromium (headless, selenium) against a real `edge serve`:
log in, browse the library, enrol a person by upload (one photo refused, its Baidu code
and reason shown), see the person listed, delete them, log out; a wrong password is
refused. Every page is saved to var/screenshots/ (tests/browser.py)."""
from __future__ import annotations

from pathlib import Path

import pytest

from browser import browser  # noqa: F401 - the fixture
from console_support import add_user, start_console
from conftest import LFW, MULTIFACE

PERSON = LFW / "images" / "Colin_Powell"
NO_FACE = MULTIFACE / "inspireface_view_noface.jpg"     # a real photo with no face in it: 222202


@pytest.fixture(scope="module")
def hub(tmp_path_factory):
    srv, password = start_console(tmp_path_factory.mktemp("console-browser"))
    yield srv, password
    srv.stop()


def _photos() -> list[Path]:
    photos = sorted(PERSON.glob("*.jpg"))[:2]
    assert len(photos) == 2 and NO_FACE.exists()
    return photos


def test_wrong_password_refused(hub, browser):  # noqa: F811
    srv, _ = hub
    browser.login(srv.url, "admin", "not-the-password")
    browser.wait_text(".alert", "Wrong user name or password")
    assert "/console/login" in browser.current_url
    browser.shot("refused")
    browser.get(srv.url + "/console/library")
    assert "/console/login" in browser.current_url          # still not logged in


def test_enrol_browse_delete_logout(hub, browser):  # noqa: F811
    srv, password = hub
    browser.login(srv.url, "admin", password)
    browser.wait_text("h1", "Status")
    assert [a.text for a in browser.all(".nav a")] == ["Events", "Enrol", "Library", "Status", "Terminals"]
    browser.shot("status")

    browser.css(".nav a[href='/console/library']").click()
    browser.wait_text("h1", "Library")
    assert "No groups" in browser.css("main").text
    browser.shot("library-empty")

    browser.css(".nav a[href='/console/enrol']").click()
    browser.wait_css("#enrol-form")
    browser.css("#group").send_keys("staff")
    browser.css("#user").send_keys("colin_powell")
    browser.css("#user_info").send_keys("Colin Powell, visitor desk")
    first, second = _photos()
    browser.css("#photos").send_keys("\n".join(str(p) for p in (first, NO_FACE, second)))
    browser.shot("enrol-form")
    browser.css("#enrol").click()
    browser.wait_css("#outcomes", timeout=120)
    items = browser.all("#outcomes li")
    assert [li.get_attribute("data-status") for li in items] == ["enrolled", "rejected", "enrolled"]
    assert "222202" in items[1].text and "pic not has face" in items[1].text
    assert NO_FACE.name in items[1].text
    assert "2 of 3 photo(s) enrolled" in browser.css("#outcomes h2").text
    browser.shot("enrol-outcomes")

    browser.set_window_size(800, 1100)                     # a tablet at the gate, portrait
    browser.shot("enrol-outcomes-tablet")
    browser.set_window_size(1280, 900)

    browser.css("#outcomes a").click()                     # "See colin_powell in the library"
    browser.wait_text("h1", "colin_powell")
    assert len(browser.all(".faces tbody tr")) == 2
    assert "Colin Powell, visitor desk" in browser.css(".membership").text
    browser.shot("user")
    browser.set_window_size(390, 844)                      # a phone
    browser.shot("user-phone")
    browser.set_window_size(1280, 900)

    browser.get(srv.url + "/console/library")
    browser.css("a[href*='group=staff']").click()
    browser.wait_css("#members")
    rows = browser.all("#members tbody tr")
    assert len(rows) == 1 and "colin_powell" in rows[0].text and "visitor desk" in rows[0].text
    browser.shot("group")

    browser.css("#q").send_keys("visitor desk")            # search by user_info
    browser.css("#search").click()
    browser.wait_css("#hits")
    assert "colin_powell" in browser.css("#hits").text
    browser.shot("search")

    browser.css("#hits a").click()
    browser.wait_text("h1", "colin_powell")
    browser.css("button.delete-user").click()
    alert = browser.wait(lambda d: d.switch_to.alert)      # confirmed before it is sent
    assert "Delete colin_powell" in alert.text
    alert.dismiss()                                        # not this time ...
    assert len(browser.all(".faces tbody tr")) == 2
    browser.css("button.delete-user").click()
    browser.wait(lambda d: d.switch_to.alert).accept()     # ... this time
    browser.wait_css("#members")
    assert "colin_powell deleted from staff" in browser.css(".notice").text
    assert "No one in this group" in browser.css("#members").text
    browser.shot("deleted")

    browser.css(".logout button").click()
    browser.wait_css("#login")
    browser.shot("logged-out")
    browser.get(srv.url + "/console/library")
    assert "/console/login" in browser.current_url


def test_viewer_sees_no_write_controls(hub, browser):  # noqa: F811
    srv, _ = hub
    assert add_user(srv.config_path, "vic", "viewer-password-2", "viewer").returncode == 0
    browser.login(srv.url, "vic", "viewer-password-2")
    browser.wait_text("h1", "Status")
    browser.get(srv.url + "/console/enrol")
    assert "needs the admin role" in browser.css("main").text and not browser.all("#enrol-form")
    browser.shot("viewer-enrol")
    browser.get(srv.url + "/console/terminals")
    browser.wait_text("h1", "Terminals")
    browser.shot("terminals")


def test_terminals_page_shows_a_following_terminal(tmp_path, browser):  # noqa: F811
    """A real terminal (`edge serve` with `sync:`) following a real hub appears on the
    hub's Terminals page with its cursor and no changes behind once it caught up."""
    from serving import wait_until
    from sync_support import feed_key, free_port, hub_config, start, terminal_config
    cfg = hub_config(tmp_path / "hub", free_port())
    assert add_user(cfg, "root", "admin-password-9", "admin").returncode == 0
    hub = start(cfg)
    terminal = None
    try:
        browser.login(hub.url, "root", "admin-password-9")
        browser.wait_text("h1", "Status")
        assert browser.css(".brand .role").text == "hub"
        browser.css(".nav a[href='/console/library']").click()   # make one change on the hub first
        browser.wait_css("input[name=group]").send_keys("lobby")
        browser.css("form[action='/console/library/group'] button").click()
        browser.wait_text(".notice", "group lobby created")
        terminal = start(terminal_config(tmp_path / "door", hub.url, "1001"))

        def row():
            browser.get(hub.url + "/console/terminals")
            rows = [r for r in browser.all("#terminals tbody tr") if feed_key("1001")[0] in r.text]
            return rows[0] if rows and rows[0].find_element("css selector", ".lag").text == "0" else None
        assert wait_until(row, timeout=60, step=1.0)
        text = row().text
        assert "1001" in text and "127.0.0.1" in text and "following" in text
        browser.shot("terminals")
        # the terminal's own console: its follower's state on Status
        import re
        password = re.search(r"created user admin with password (\S+)", terminal.log_text()).group(1)
        browser.css(".logout button").click()
        browser.wait_css("#login")   # the hub's logout answered before the terminal's login page is asked for
        browser.login(terminal.url, "admin", password)
        browser.wait_text("h1", "Status")
        assert wait_until(lambda: (browser.refresh(), "following" in browser.css("#sync").text)[1], timeout=30, step=1.0)
        assert "cursor / hub head" in browser.css("#sync").text.lower()
        assert browser.css(".brand .role").text == "replica"
        browser.shot("terminal-status")
        # its library is the hub's replica: a change made here is refused as the API refuses it
        browser.get(terminal.url + "/console/library?app=1001")
        assert "lobby" in browser.css("#groups").text
        browser.css("input[name=group]").send_keys("local")
        browser.css("form[action='/console/library/group'] button").click()
        refusal = browser.wait_css(".alert").text
        browser.shot("terminal-replica-refused")
        assert refusal.split()[0] == "6" and "follows the hub " + hub.url in refusal, refusal
    finally:
        if terminal is not None:
            terminal.stop()
        hub.stop()
