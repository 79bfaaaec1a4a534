"""Helpers for the console's tests: a real `edge serve` with the console, and a
requests session logged in through the login form (its CSRF cookie and field)."""
from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import requests

from serving import start_server

APPS = {"1001": ("AKconsole", "SKconsole-secret", 1000)}
TOKEN_RE = re.compile(r'name="csrf_token" value="([^"]+)"')


def start_console(tmp: Path, console: dict | None = None, server: dict | None = None):
    """(server, admin password printed at its first start)."""
    srv = start_server(tmp, APPS, server=server, extra={"console": console or {}})
    found = re.search(r"created user admin with password (\S+)", srv.log_text())
    return srv, found.group(1) if found else None


def csrf(html: str) -> str:
    found = TOKEN_RE.search(html)
    assert found, html[:500]
    return found.group(1)


def login(url: str, user: str, password: str, session: requests.Session | None = None):
    """(session, the login POST's response, not followed)."""
    s = session or requests.Session()
    form = s.get(url + "/console/login", timeout=10)
    answer = s.post(url + "/console/login", data={"username": user, "password": password, "csrf_token": csrf(form.text)},
                    allow_redirects=False, timeout=30)
    return s, answer


def page_token(s: requests.Session, url: str) -> str:
    return csrf(s.get(url + "/console/status", timeout=10).text)


def add_user(config: Path, name: str, password: str, role: str) -> subprocess.CompletedProcess:
    """`edge console user add` with the password on stdin (never argv)."""
    return subprocess.run([sys.executable, "-m", "edge.cli", "--config", str(config), "console", "user", "add", name,
                           "--role", role], input=password + "\n", capture_output=True, text=True, timeout=60)
