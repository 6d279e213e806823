"""A real Label Studio server for tests: own venv, temp data dir, 127.0.0.1, killed at the end.

Label Studio's Django migrations take minutes on two cores, so ``scripts/setup.sh`` migrates
an empty database once into ``.venv-labelstudio/template/``; each server here starts from a
copy of it (and migrates from scratch when the template is missing).
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests

REPO = Path(__file__).resolve().parents[2]
VENV = Path(os.environ.get("EMOFORGE_LABELSTUDIO_VENV", REPO / ".venv-labelstudio"))


@dataclass
class LabelStudio:
    url: str
    token: str
    user: str
    password: str = ""

    def api(self, method: str, path: str, **kw: Any) -> requests.Response:
        headers = {"Authorization": f"Token {self.token}"}
        return requests.request(method, f"{self.url}{path}", headers=headers, timeout=120, **kw)

    def login(self) -> requests.Session:
        """A browser-like session: the login form with its CSRF token (what a reviewer does)."""
        session = requests.Session()
        session.get(f"{self.url}/user/login/", timeout=60).raise_for_status()
        r = session.post(
            f"{self.url}/user/login/",
            data={"email": self.user, "password": self.password, "csrfmiddlewaretoken": session.cookies["csrftoken"]},
            headers={"Referer": f"{self.url}/user/login/"},
            allow_redirects=False,
            timeout=60,
        )
        if r.status_code != 302 or "sessionid" not in session.cookies:
            raise RuntimeError(f"login failed: {r.status_code} {r.text[:300]}")
        return session


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def label_studio_server(
    data_dir: Path, start_timeout_s: float = 480.0, media_root: Path | None = None
) -> Iterator[LabelStudio]:
    """``media_root``: serve local files under it (LOCAL_FILES_DOCUMENT_ROOT), as docs/release.md sets up."""
    exe = VENV / "bin" / "label-studio"
    if not exe.exists():
        raise RuntimeError(f"{exe} missing: run scripts/setup.sh (it installs Label Studio in its own venv)")
    data_dir.mkdir(parents=True, exist_ok=True)
    template = VENV / "template" / "label_studio.sqlite3"
    if template.exists():
        shutil.copy(template, data_dir / "label_studio.sqlite3")
    port, token, user, password = _free_port(), secrets.token_hex(20), "reviewer@example.org", secrets.token_hex(8)
    env = {
        **os.environ,
        "LATEST_VERSION_CHECK": "false",  # no network here: the PyPI version check only stalls
        "LABEL_STUDIO_ENABLE_LEGACY_API_TOKEN": "true",
        "LABEL_STUDIO_BASE_DATA_DIR": str(data_dir),
        "DJANGO_DB": "sqlite",
    }
    if media_root is not None:
        env |= {"LOCAL_FILES_SERVING_ENABLED": "true", "LOCAL_FILES_DOCUMENT_ROOT": str(media_root)}
    log = open(data_dir / "server.log", "wb")  # noqa: SIM115 - closed in finally
    proc = subprocess.Popen(
        [
            str(exe),
            "start",
            "--no-browser",
            "--internal-host",
            "127.0.0.1",
            "--port",
            str(port),
            "--data-dir",
            str(data_dir),
            "--username",
            user,
            "--password",
            password,
            "--user-token",
            token,
            "--enable-legacy-api-token",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        env=env,
        start_new_session=True,
    )
    server = LabelStudio(url=f"http://127.0.0.1:{port}", token=token, user=user, password=password)
    try:
        deadline = time.monotonic() + start_timeout_s
        while True:
            if proc.poll() is not None:
                raise RuntimeError(
                    f"label-studio exited with {proc.returncode}: {(data_dir / 'server.log').read_text()[-3000:]}"
                )
            try:
                if server.api("GET", "/api/projects").status_code == 200:
                    break
            except requests.ConnectionError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"label-studio not up after {start_timeout_s} s: {(data_dir / 'server.log').read_text()[-3000:]}"
                )
            time.sleep(2)
        yield server
    finally:
        # The server runs in its own session: end its whole process group (ours alone).
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=30)
        except ProcessLookupError:
            pass
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        log.close()
