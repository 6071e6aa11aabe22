"""Headless Debian chromium driven over the Chrome DevTools Protocol (websocket-client), for tests.

``load_page`` opens a file:// page in a fresh browser, collects console errors, exceptions,
failed loads and every URL requested, checks images, audio and links in the page, and saves a
screenshot. Nothing here touches the network: the browser runs with background networking off.
"""
from __future__ import annotations

import base64
import json
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import websocket

INSTALL = "make browser (as root it runs `apt-get install -y chromium`), or: sudo apt-get install chromium"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run", "--remote-debugging-port=0",
         "--autoplay-policy=no-user-gesture-required", "--window-size=1280,1600"]

#: Evaluated in the page once it has loaded: the state of every image, audio element and link.
CHECKS = """(async () => {
  const audios = [...document.querySelectorAll('audio')];
  await Promise.all(audios.map(a => a.readyState >= 1 || a.error ? null : new Promise(done => {
    a.addEventListener('loadedmetadata', done); a.addEventListener('error', done); setTimeout(done, 10000);
  })));
  return JSON.stringify({
    images: [...document.images].map(i => ({src: i.src, complete: i.complete, width: i.naturalWidth})),
    audio: audios.map(a => ({src: a.currentSrc || a.src, ready: a.readyState, duration: a.duration,
                             error: a.error ? a.error.code : null})),
    links: [...document.querySelectorAll('a[href]')].map(a => ({href: a.href, raw: a.getAttribute('href'),
                                                                 target: a.hash ? !!document.getElementById(a.hash.slice(1)) : null})),
    scripts: document.scripts.length, stylesheets: document.querySelectorAll('link[rel=stylesheet]').length,
    title: document.title, text: document.body.innerText,
  });
})()"""


def find_chromium() -> str:
    """The chromium executable, or an error saying how to install it."""
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        raise FileNotFoundError(f"chromium not found on PATH: {INSTALL}")
    return path


class Browser:
    """One headless chromium with a fresh profile, and one page target attached (flat sessions)."""

    def __init__(self, executable: str, timeout: float = 60.0):
        self.profile = Path(tempfile.mkdtemp(prefix="chromium-profile-"))
        self.log = tempfile.TemporaryFile()  # chromium's stderr: a file, so that it never blocks on a full pipe
        self.process = subprocess.Popen([executable, *FLAGS, f"--user-data-dir={self.profile}", "about:blank"],
                                        stdout=subprocess.DEVNULL, stderr=self.log)
        self.timeout, self.events, self.next_id, self.socket = timeout, [], 0, None
        try:
            self.socket = websocket.create_connection(self._browser_url(), timeout=timeout)
            target = self.send("Target.createTarget", url="about:blank")["targetId"]
            self.session = self.send("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]
        except BaseException:
            self.close()
            raise

    def _browser_url(self) -> str:
        """The browser's websocket URL, from the DevToolsActivePort file chromium writes in its profile."""
        port_file = self.profile / "DevToolsActivePort"
        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                self.log.seek(0)
                raise RuntimeError(f"chromium exited ({self.process.returncode}): {self.log.read().decode()}")
            lines = port_file.read_text().split() if port_file.is_file() else []
            if len(lines) == 2:
                return f"ws://127.0.0.1:{lines[0]}{lines[1]}"
            time.sleep(0.05)
        raise TimeoutError(f"chromium wrote no {port_file} within {self.timeout} s")

    def send(self, method: str, session: bool = False, **params) -> dict:
        """Send one CDP command (to the page session if ``session``) and return its result."""
        self.next_id += 1
        message = {"id": self.next_id, "method": method, "params": params}
        if session:
            message["sessionId"] = self.session
        self.socket.send(json.dumps(message))
        while True:
            reply = json.loads(self.socket.recv())
            if reply.get("id") == self.next_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply["result"]
            self.events.append(reply)

    def wait_for(self, method: str) -> dict:
        """Read events until ``method`` arrives (events read meanwhile are kept)."""
        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline:
            event = json.loads(self.socket.recv())
            self.events.append(event)
            if event.get("method") == method:
                return event
        raise TimeoutError(f"no {method} within {self.timeout} s")

    def close(self) -> None:
        if self.socket is not None:
            self.socket.close()
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.log.close()
        shutil.rmtree(self.profile, ignore_errors=True)


def load_page(page: Path, screenshot: Path, executable: str | None = None) -> dict:
    """Open ``page`` (file://), check it, save a PNG screenshot; return what was seen.

    The result holds ``errors`` (console errors, uncaught exceptions, log errors), ``failed``
    (loads that failed), ``requests`` (every URL the page asked for), and the page's
    ``images``, ``audio``, ``links`` as reported by :data:`CHECKS`.
    """
    browser = Browser(executable or find_chromium())
    try:
        for domain in ("Page", "Runtime", "Log", "Network"):
            browser.send(f"{domain}.enable", session=True)
        browser.send("Page.navigate", session=True, url=page.resolve().as_uri())
        browser.wait_for("Page.loadEventFired")
        state = json.loads(browser.send("Runtime.evaluate", session=True, expression=CHECKS, awaitPromise=True,
                                        returnByValue=True)["result"]["value"])
        shot = browser.send("Page.captureScreenshot", session=True, format="png", captureBeyondViewport=True)
        screenshot.write_bytes(base64.b64decode(shot["data"]))
        browser.send("Runtime.evaluate", session=True, expression="0")  # flush events that arrived meanwhile
    finally:
        browser.close()
    events = browser.events
    params = [(e.get("method"), e.get("params", {})) for e in events]
    state["errors"] = (
        [" ".join(str(a.get("value", a.get("description", ""))) for a in p["args"])
         for m, p in params if m == "Runtime.consoleAPICalled" and p["type"] in ("error", "assert")]
        + [p["exceptionDetails"].get("exception", {}).get("description", p["exceptionDetails"]["text"])
           for m, p in params if m == "Runtime.exceptionThrown"]
        + [f"{p['entry']['source']}: {p['entry']['text']} {p['entry'].get('url', '')}"
           for m, p in params if m == "Log.entryAdded" and p["entry"]["level"] == "error"])
    urls = {p["requestId"]: p["request"]["url"] for m, p in params if m == "Network.requestWillBeSent"}
    state["failed"] = [f"{urls.get(p['requestId'], p['requestId'])}: {p['errorText']}"
                       for m, p in params if m == "Network.loadingFailed" and not p.get("canceled")]
    state["requests"] = sorted(set(urls.values()))
    return state
