"""The live view's figures (scripts/bench_live.py, docs/console.md "Live view"): a real
`edge run` on the demo camera, a real headless Chromium drawing its live view, and
extra WebSocket viewers; per phase the loop's processed fps and CPU, the browser's
capture-to-drawn latency (Date.now() minus the frame's capture time: one clock, one
machine) and the bytes per second each viewer receives."""
from __future__ import annotations

import asyncio
import re
import threading
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edge.console.chromium import start as start_chromium
from edge.console.terminal import Terminal, free_port, start_terminal
from edge.procstat import cpu_seconds



@dataclass
class Phase:
    viewers: int
    loop_fps: float              # the loop's processed frames a second (its status, mean of samples)
    loop_cpu: float              # CPU seconds a second of the whole `edge run` process
    latency_p50_ms: float | None = None
    latency_p95_ms: float | None = None
    drawn_fps: float | None = None
    kb_per_s: list[float] | None = None   # per viewer

    def line(self) -> str:
        text = f"{self.viewers} viewer(s): loop {self.loop_fps:.1f} fps, edge run CPU {100 * self.loop_cpu:.0f} %"
        if self.latency_p50_ms is not None:
            text += (f"; browser: {self.drawn_fps:.1f} fps drawn, capture -> drawn p50 {self.latency_p50_ms:.0f} ms"
                     f" p95 {self.latency_p95_ms:.0f} ms")
        if self.kb_per_s:
            text += "; kB/s per viewer " + ", ".join(f"{k:.0f}" for k in self.kb_per_s)
        return text


def login(driver, term: Terminal) -> None:
    from selenium.webdriver.common.by import By
    driver.get(term.url + "/console/login")
    driver.find_element(By.CSS_SELECTOR, "#username").send_keys("admin")
    driver.find_element(By.CSS_SELECTOR, "#password").send_keys(term.password)
    driver.find_element(By.CSS_SELECTOR, "#login").click()
    time.sleep(1.0)


def loop_fps(metrics_port: int) -> float:
    text = urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=10).read().decode()
    m = re.search(r'^edge_loop_fps\{camera="demo"\} ([0-9.]+)', text, re.M)
    return float(m.group(1)) if m else float("nan")


async def _ws_viewers(term: Terminal, cookies: dict, n: int, seconds: float) -> list[float]:
    import aiohttp
    url = term.url.replace("http", "ws", 1) + "/console/api/live/demo"

    async def one() -> float:
        got, start = 0, time.monotonic()
        async with aiohttp.ClientSession(cookies=cookies) as s, s.ws_connect(url) as ws:
            while time.monotonic() - start < seconds:
                msg = await ws.receive(timeout=5)
                if msg.type != aiohttp.WSMsgType.BINARY:
                    break
                got += len(msg.data)
                await ws.send_str("next")
        return got / (time.monotonic() - start) / 1024
    return list(await asyncio.gather(*(one() for _ in range(n))))


def phase(term: Terminal, metrics_port: int, seconds: float, driver=None, extra: int = 0, cookies=None) -> Phase:
    extra_kb: list[float] = []
    thread = None
    if extra:
        thread = threading.Thread(target=lambda: extra_kb.extend(
            asyncio.run(_ws_viewers(term, cookies, extra, seconds))), daemon=True)
        thread.start()
    time.sleep(2.0)   # the fps window and the viewers settle
    before = driver.execute_script("return [window.edgeLive.frames, window.edgeLive.bytes, "
                                   "window.edgeLive.latencies.length]") if driver else None
    cpu0, t0, fps = cpu_seconds(term.proc.pid), time.monotonic(), []
    while time.monotonic() - t0 < seconds - 2.0:
        time.sleep(1.0)
        fps.append(loop_fps(metrics_port))
    elapsed = time.monotonic() - t0
    out = Phase(1 if driver else 0, float(np.nanmean(fps)), (cpu_seconds(term.proc.pid) - cpu0) / elapsed)
    if driver:
        frames, nbytes, lat = driver.execute_script(
            "var s = window.edgeLive; return [s.frames, s.bytes, s.latencies.slice(arguments[0])]", before[2])
        out.drawn_fps = (frames - before[0]) / elapsed
        out.latency_p50_ms, out.latency_p95_ms = (float(np.percentile(lat, q)) for q in (50, 95))
        out.kb_per_s = [(nbytes - before[1]) / elapsed / 1024]
    if thread:
        thread.join(seconds + 10)
        out.viewers += extra
        out.kb_per_s = (out.kb_per_s or []) + extra_kb
    return out


def encode_ms(models_dir, frames: int = 200) -> float:
    """Milliseconds to scale and JPEG-encode one demo frame the way the hub does."""
    from edge.camera.sources import DemoSource
    from edge.console.live import LiveHub, _Kept
    demo = DemoSource(models_dir=models_dir)
    demo.open()
    hub, images = LiveHub(["demo"]), [demo.render(i * 7) for i in range(20)]
    t0 = time.perf_counter()
    for i in range(frames):
        hub._encode("demo", _Kept(images[i % 20], {}, 0.0))
    return (time.perf_counter() - t0) * 1000 / frames


def overlay_ms(config, folder: Path, frames: int = 150) -> tuple[float, float]:
    """(ms to process a demo frame, ms to build its overlay): what a watched frame adds to
    the processing thread (an in-process Pipeline on the demo, an empty library)."""
    import dataclasses
    from edge.aip.runtime import get_runtime
    from edge.camera.sources import DemoSource
    from edge.loop.pipeline import Pipeline
    from edge.loop.runner import loop_rules
    from edge.loop.views import overlay
    cfg = dataclasses.replace(config, data_dir=str(folder / "overlay-data"))
    rt = get_runtime(cfg)
    pipeline = Pipeline(rt.analyser, rt.library(cfg.run.app_id), loop_rules(cfg), "demo")
    demo = DemoSource(models_dir=cfg.models_dir)
    demo.open()
    spent = [0.0, 0.0]
    for i in range(frames):
        image = demo.render(i)
        t0 = time.perf_counter()
        pipeline.process(image, i / 15)
        t1 = time.perf_counter()
        overlay(pipeline, image.shape, i / 15)
        spent[0] += t1 - t0
        spent[1] += time.perf_counter() - t1
    pipeline.close()
    return spent[0] * 1000 / frames, spent[1] * 1000 / frames


def run_bench(folder: Path, seconds: float = 20.0, fps: float = 30.0, extra: int = 2) -> list[Phase]:
    """No viewer, one browser, the browser and `extra` WebSocket viewers; the demo camera
    at `fps` so that the loop, not the camera, sets the processed rate."""
    port = free_port()
    term = start_terminal(folder, f"metrics_port: {port}", fps=fps)
    driver = None
    try:
        phases = [phase(term, port, seconds)]
        driver = start_chromium(folder / "chromium-profile")
        login(driver, term)
        driver.get(term.url + "/console/live")
        time.sleep(2.0)
        phases.append(phase(term, port, seconds, driver))
        cookies = {c["name"]: c["value"] for c in driver.get_cookies()}
        phases.append(phase(term, port, seconds, driver, extra, cookies))
        driver.quit()
        driver = None
        phases.append(phase(term, port, seconds))
        return phases
    finally:
        if driver is not None:
            driver.quit()
        term.stop()
