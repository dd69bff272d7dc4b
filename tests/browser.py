"""Open an HTML file in headless Chromium and see what a reader would see.

A test tool, not part of the lrlab package: used by the report tests and
``scripts/report_screenshot.py``. It drives Debian's
``chromium`` through the Chrome DevTools Protocol over a pipe
(``--remote-debugging-pipe``: commands on the child's fd 3, replies on fd 4, each a JSON
message ended by a NUL byte, as Puppeteer's ``pipe: true``), so it needs no browser
download, no open port and no websocket package.

:func:`inspect_page` loads a file, waits for the load event, and returns
:class:`PageReport`: every ``<img>`` with its ``naturalWidth``, the ids of the page's
sections, the number of ``<script>`` elements, the body's font size in CSS pixels, the
page's scroll width and height, every console message and log entry (CSP violations and
failed loads arrive as ``error`` entries), every network request the page attempted, and
a PNG screenshot.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

__all__ = ["BrowserError", "PageReport", "find_chromium", "inspect_page"]

CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")

#: Flags that keep a headless Chromium from touching the network on its own.
QUIET_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-extensions",
    "--disable-default-apps",
    "--disable-dev-shm-usage",
    "--hide-scrollbars",
    "--mute-audio",
)


#: Run as ``python -c`` with the two pipe fds and the command: put them on fds 3 and 4
#: (through copies above 9, so neither can overwrite the other) and exec the command.
_EXEC_ON_3_AND_4 = """
import fcntl, os, sys
given = [int(fd) for fd in sys.argv[1:3]]
a, b = (fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 10) for fd in given)
for fd in given:
    os.close(fd)
os.dup2(a, 3)
os.dup2(b, 4)
os.execv(sys.argv[3], sys.argv[3:])
"""


class BrowserError(RuntimeError):
    """Chromium is missing, did not start, or did not answer in time."""


@dataclasses.dataclass
class PageReport:
    """What the page showed: see the module docstring."""

    title: str
    images: list[dict[str, Any]]
    section_ids: list[str]
    console: list[dict[str, str]]
    requests: list[str]
    screenshot: bytes
    width: int
    height: int
    text: str
    scripts: int = 0
    font_size: float = 0.0

    @property
    def errors(self) -> list[dict[str, str]]:
        """Console messages and log entries of level ``error`` (and uncaught exceptions)."""
        return [m for m in self.console if m["level"] == "error"]


def find_chromium() -> str | None:
    """The path of a Chromium/Chrome binary on ``PATH`` (or ``$LRLAB_CHROMIUM``), else None."""
    env = os.environ.get("LRLAB_CHROMIUM")
    if env:
        return env if Path(env).exists() else shutil.which(env)
    for name in CANDIDATES:
        path = shutil.which(name)
        if path:
            return path
    return None


class _Pipe:
    """A CDP session over the two pipes of a ``--remote-debugging-pipe`` Chromium."""

    def __init__(self, binary: str, profile: str, width: int, height: int):
        to_child_r, self._to_child = os.pipe()
        self._from_child, from_child_w = os.pipe()

        # Chromium reads commands on fd 3 and writes replies to fd 4. A fresh Python process
        # moves the pipe ends there and exec's Chromium: no Python code runs in a forked
        # child (no preexec_fn), which is unsafe in a multithreaded process (JAX, Keras).
        args = [
            binary,
            *QUIET_FLAGS,
            "--remote-debugging-pipe",
            f"--user-data-dir={profile}",
            f"--window-size={width},{height}",
            "about:blank",
        ]
        self.proc = subprocess.Popen(
            [sys.executable, "-c", _EXEC_ON_3_AND_4, str(to_child_r), str(from_child_w), *args],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            pass_fds=(to_child_r, from_child_w),
        )
        os.close(to_child_r)
        os.close(from_child_w)
        self._buffer = b""
        self._next_id = 0
        self.events: list[dict[str, Any]] = []

    def send(self, method: str, params: dict | None = None, session: str | None = None) -> int:
        self._next_id += 1
        message: dict[str, Any] = {"id": self._next_id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        os.write(self._to_child, json.dumps(message).encode() + b"\0")
        return self._next_id

    def call(
        self, method: str, params: dict | None = None, session: str | None = None, timeout=60.0
    ) -> dict[str, Any]:
        wanted = self.send(method, params, session)
        deadline = time.monotonic() + timeout
        while True:
            message = self._read(deadline, method)
            if message.get("id") == wanted:
                if "error" in message:
                    raise BrowserError(f"{method}: {message['error'].get('message')}")
                return message.get("result", {})
            self.events.append(message)

    def wait_for(self, method: str, timeout: float = 60.0) -> dict[str, Any]:
        for i, event in enumerate(self.events):
            if event.get("method") == method:
                return self.events.pop(i)
        deadline = time.monotonic() + timeout
        while True:
            message = self._read(deadline, method)
            if message.get("method") == method:
                return message
            self.events.append(message)

    def _read(self, deadline: float, what: str) -> dict[str, Any]:
        import select

        while b"\0" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0:
                raise BrowserError(f"chromium did not answer {what} in time")
            ready, _, _ = select.select([self._from_child], [], [], left)
            if not ready:
                continue
            chunk = os.read(self._from_child, 1 << 20)
            if not chunk:
                raise BrowserError(f"chromium exited (code {self.proc.poll()}) during {what}")
            self._buffer += chunk
        raw, self._buffer = self._buffer.split(b"\0", 1)
        return json.loads(raw)

    def close(self) -> None:
        try:
            self.send("Browser.close")
            self.proc.wait(timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            self.proc.kill()
            self.proc.wait()
        finally:
            for fd in (self._to_child, self._from_child):
                try:
                    os.close(fd)
                except OSError:
                    pass


_PROBE = """(() => ({
  title: document.title,
  images: Array.from(document.images).map(i => ({
    alt: i.alt, naturalWidth: i.naturalWidth, naturalHeight: i.naturalHeight,
    complete: i.complete, src: i.currentSrc.slice(0, 40)})),
  sections: Array.from(document.querySelectorAll('section[id]')).map(s => s.id),
  scripts: document.scripts.length,
  fontSize: parseFloat(getComputedStyle(document.body).fontSize),
  width: document.documentElement.scrollWidth,
  height: document.documentElement.scrollHeight,
  text: document.body ? document.body.innerText : ''
}))()"""


def inspect_page(
    path: str | Path,
    *,
    width: int = 1280,
    height: int = 900,
    full_page: bool = True,
    mobile: bool = False,
    timeout: float = 90.0,
    binary: str | None = None,
) -> PageReport:
    """Load ``path`` in headless Chromium at ``width`` x ``height`` CSS pixels; see module doc.

    ``full_page`` makes the screenshot cover the whole page height; ``mobile`` emulates a
    phone (touch, device scale factor 2, mobile viewport meta honoured).

    Raises:
        BrowserError: no Chromium found, or it did not start or answer within ``timeout``.
    """
    binary = binary or find_chromium()
    if binary is None:
        raise BrowserError("no chromium on PATH; install it (apt-get install -y chromium)")
    url = Path(path).resolve().as_uri()
    with tempfile.TemporaryDirectory(prefix="lrlab-chromium-") as profile:
        pipe = _Pipe(binary, profile, width, height)
        try:
            return _inspect(pipe, url, width, height, full_page, mobile, timeout)
        finally:
            pipe.close()


def _inspect(
    pipe: _Pipe, url: str, width: int, height: int, full_page: bool, mobile: bool, timeout: float
) -> PageReport:
    target = pipe.call("Target.createTarget", {"url": "about:blank"}, timeout=timeout)
    session = pipe.call("Target.attachToTarget", {"targetId": target["targetId"], "flatten": True})[
        "sessionId"
    ]
    for domain in ("Page", "Runtime", "Log", "Network"):
        pipe.call(f"{domain}.enable", session=session)
    pipe.call(
        "Emulation.setDeviceMetricsOverride",
        {
            "width": width,
            "height": height,
            "deviceScaleFactor": 2 if mobile else 1,
            "mobile": mobile,
        },
        session=session,
    )
    pipe.call("Page.navigate", {"url": url}, session=session, timeout=timeout)
    pipe.wait_for("Page.loadEventFired", timeout=timeout)
    probe = pipe.call(
        "Runtime.evaluate", {"expression": _PROBE, "returnByValue": True}, session=session
    )["result"]["value"]
    params: dict[str, Any] = {"format": "png"}
    if full_page:
        params["captureBeyondViewport"] = True
        params["clip"] = {
            "x": 0,
            "y": 0,
            "width": max(width, probe["width"]),
            "height": probe["height"],
            "scale": 1,
        }
    shot = base64.b64decode(pipe.call("Page.captureScreenshot", params, session=session)["data"])
    pipe.call("Runtime.evaluate", {"expression": "1"}, session=session)  # flush late events
    console: list[dict[str, str]] = []
    requests: list[str] = []
    for event in pipe.events:
        method, p = event.get("method"), event.get("params", {})
        if method == "Runtime.consoleAPICalled":
            text = " ".join(str(a.get("value", a.get("description", ""))) for a in p["args"])
            console.append({"level": "error" if p["type"] == "error" else p["type"], "text": text})
        elif method == "Runtime.exceptionThrown":
            console.append({"level": "error", "text": p["exceptionDetails"].get("text", "")})
        elif method == "Log.entryAdded":
            entry = p["entry"]
            console.append({"level": entry["level"], "text": entry.get("text", "")})
        elif method == "Network.requestWillBeSent":
            requests.append(p["request"]["url"])
    return PageReport(
        title=probe["title"],
        images=probe["images"],
        section_ids=probe["sections"],
        console=console,
        requests=requests,
        screenshot=shot,
        width=probe["width"],
        height=probe["height"],
        text=probe["text"],
        scripts=probe["scripts"],
        font_size=probe["fontSize"],
    )
