"""Headless Chromium driven over the Chrome DevTools Protocol, for pages that need JavaScript.

``chromium --screenshot`` (as tests/release/test_report.py uses) cannot log in or read a media
element's state, so this speaks CDP over the page's websocket with ``websockets`` (already in
the lock through uvicorn), and needs no driver binary.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

from websockets.sync.client import ClientConnection, connect


class Page:
    """One browser tab: send CDP commands, evaluate JavaScript, take screenshots."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self._id = 0
        self.errors: list[str] = []  # uncaught page exceptions, for failure messages

    def call(self, method: str, **params: Any) -> dict[str, Any]:
        self._id += 1
        self.ws.send(json.dumps({"id": self._id, "method": method, "params": params}))
        while True:
            msg = json.loads(self.ws.recv(timeout=120))
            if msg.get("method") == "Runtime.exceptionThrown":
                self.errors.append(str(msg["params"]["exceptionDetails"].get("text", ""))[:200])
            if msg.get("id") == self._id:
                if "error" in msg:
                    raise RuntimeError(f"{method}: {msg['error']}")
                return dict(msg["result"])

    def evaluate(self, expression: str, await_promise: bool = False) -> Any:
        res = self.call("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=await_promise)
        if "exceptionDetails" in res:
            raise RuntimeError(f"page script failed: {res['exceptionDetails']}")
        return res["result"].get("value")

    def wait_for(self, expression: str, timeout_s: float = 60.0) -> Any:
        """Poll ``expression`` until it is truthy; its last value otherwise."""
        deadline, value = time.monotonic() + timeout_s, None
        while time.monotonic() < deadline:
            value = self.evaluate(expression)
            if value:
                return value
            time.sleep(0.5)
        return value

    def screenshot(self, path: Path) -> Path:
        path.write_bytes(base64.b64decode(self.call("Page.captureScreenshot", format="png")["data"]))
        return path


@contextmanager
def chromium_page(width: int = 1280, height: int = 1400) -> Iterator[Page]:
    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    if exe is None:
        raise RuntimeError("chromium not installed: run scripts/setup.sh")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    profile = tempfile.mkdtemp(prefix="emoforge-chromium-")
    proc = subprocess.Popen(
        [
            exe,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--mute-audio",
            # play() without a click, as a reviewer's click would allow
            "--autoplay-policy=no-user-gesture-required",
            f"--remote-debugging-port={port}",
            f"--user-data-dir={profile}",
            f"--window-size={width},{height}",
            "about:blank",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        targets: list[dict[str, Any]] = []
        deadline = time.monotonic() + 60
        while not targets:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/json", timeout=5) as r:
                    targets = [t for t in json.load(r) if t.get("type") == "page"]
            except OSError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise RuntimeError("chromium did not open its DevTools port") from None
                time.sleep(0.3)
        with connect(targets[0]["webSocketDebuggerUrl"], max_size=64 * 2**20) as ws:
            page = Page(ws)
            page.call("Runtime.enable")
            page.call("Network.enable")
            yield page
    finally:
        try:
            _end(proc.pid)
            proc.wait(timeout=30)
        finally:
            shutil.rmtree(profile, ignore_errors=True)


def _end(pid: int) -> None:
    """End chromium's own process group (it was started in a new session: ours alone)."""
    with suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGTERM)
