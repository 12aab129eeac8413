"""A minimal W3C WebDriver client (the standard JSON-over-HTTP protocol) for Debian's chromedriver.

Enough for the browser smoke tests: open pages, find elements, type, click, drag
with pointer actions, run a script, take screenshots. It needs nothing beyond the
standard library (Selenium's current release needs newer packages than this
project pins).
"""

from __future__ import annotations

import base64
import json
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

ELEMENT = "element-6066-11e4-a52e-4f735466cecf"
# --enable-unsafe-swiftshader: WebGL on the CPU (SwiftShader) without a GPU, for the 3D views (three.js)
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--enable-unsafe-swiftshader",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run",
                  "--window-size=1280,1000"]


def browser_paths() -> tuple[str, str] | None:
    """(chromium, chromedriver) when both are installed, else None."""
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    return (chromium, driver) if chromium and driver else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class WebDriverError(RuntimeError):
    pass


class Browser:
    """One headless Chromium session with a fresh profile; use as a context manager."""

    def __init__(self, chromium: str, driver: str, *, timeout: float = 30.0):
        self.port = _free_port()
        self.profile = tempfile.mkdtemp(prefix="hemiface-chromium-")
        self.log = open(Path(self.profile).parent / f"{Path(self.profile).name}-driver.log", "w")
        self.process = subprocess.Popen([driver, f"--port={self.port}"], stdout=self.log, stderr=subprocess.STDOUT)
        self.base = f"http://127.0.0.1:{self.port}"
        deadline = time.monotonic() + timeout
        while True:
            try:
                if self._call("GET", "/status")["ready"]:
                    break
            except (OSError, WebDriverError):
                pass
            if time.monotonic() > deadline:
                self.close()
                raise WebDriverError("chromedriver did not start")
            time.sleep(0.2)
        caps = {"capabilities": {"alwaysMatch": {"browserName": "chrome", "goog:chromeOptions": {
            "binary": chromium, "args": CHROMIUM_FLAGS + [f"--user-data-dir={self.profile}"]}}}}
        try:
            self.session = self._call("POST", "/session", caps)["sessionId"]
        except Exception:
            self.close()
            raise

    def _call(self, method: str, path: str, body=None):
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.base + path, data=data, method=method,
                                     headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=60) as r:
                return json.loads(r.read() or b"{}").get("value")
        except urllib.error.HTTPError as exc:
            raise WebDriverError(f"{method} {path}: {exc.code} {exc.read()[:500]!r}") from None

    def _s(self, method, path, body=None):
        return self._call(method, f"/session/{self.session}{path}", body)

    # -- navigation and elements
    def get(self, url: str) -> None:
        self._s("POST", "/url", {"url": url})

    @property
    def url(self) -> str:
        return self._s("GET", "/url")

    def find(self, css: str) -> str:
        return self._s("POST", "/element", {"using": "css selector", "value": css})[ELEMENT]

    def find_all(self, css: str) -> list[str]:
        return [e[ELEMENT] for e in self._s("POST", "/elements", {"using": "css selector", "value": css})]

    def text(self, element: str) -> str:
        return self._s("GET", f"/element/{element}/text")

    def click(self, element: str) -> None:
        self._s("POST", f"/element/{element}/click", {})

    def type(self, element: str, text: str) -> None:
        self._s("POST", f"/element/{element}/value", {"text": text})

    def script(self, source: str, *args):
        return self._s("POST", "/execute/sync", {"script": source, "args": list(args)})

    def move_to(self, element: str, x: int = 0, y: int = 0) -> None:
        """Move the mouse to (x, y) CSS pixels from the element's centre."""
        self._s("POST", "/actions", {"actions": [{
            "type": "pointer", "id": "mouse", "parameters": {"pointerType": "mouse"},
            "actions": [{"type": "pointerMove", "origin": {ELEMENT: element}, "x": x, "y": y}]}]})

    def drag(self, element: str, dx: int, dy: int, *, start: tuple[int, int] = (0, 0)) -> None:
        """Press at ``start`` (CSS pixels from the element's centre), move by (dx, dy) in small steps, release."""
        steps = [{"type": "pointerMove", "origin": "pointer", "x": dx // 4, "y": dy // 4, "duration": 50}
                 for _ in range(4)]
        self._s("POST", "/actions", {"actions": [{
            "type": "pointer", "id": "mouse", "parameters": {"pointerType": "mouse"},
            "actions": [{"type": "pointerMove", "origin": {ELEMENT: element}, "x": start[0], "y": start[1]},
                        {"type": "pointerDown", "button": 0}, {"type": "pause", "duration": 50}, *steps,
                        {"type": "pointerUp", "button": 0}]}]})
        self._s("DELETE", "/actions")

    def wait(self, condition, *, timeout: float = 30.0, what: str = "condition"):
        deadline = time.monotonic() + timeout
        while True:
            value = condition()
            if value:
                return value
            if time.monotonic() > deadline:
                raise WebDriverError(f"timed out waiting for {what}")
            time.sleep(0.2)

    def screenshot(self, path: Path) -> Path:
        path.write_bytes(base64.b64decode(self._s("GET", "/screenshot")))
        return path

    def console_errors(self) -> list:
        try:
            return [e for e in self._s("POST", "/se/log", {"type": "browser"}) or [] if e.get("level") == "SEVERE"]
        except WebDriverError:
            return []

    def close(self) -> None:
        try:
            if getattr(self, "session", None):
                self._s("DELETE", "")
        except (OSError, WebDriverError):
            pass
        finally:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
            self.log.close()
            shutil.rmtree(self.profile, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


__all__ = ["Browser", "WebDriverError", "browser_paths", "CHROMIUM_FLAGS"]
