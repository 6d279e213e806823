"""The CLI process as a user meets it: Ctrl-C ends a run promptly and resumably, a SIGKILLed
CLI takes Prefect's temporary server with it, and native log lines stay off the terminal.

Every process here is started by the test and stopped by its pid.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

EMOFORGE = str(Path(sys.executable).with_name("emoforge"))


def _cli(*args: str, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [EMOFORGE, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env or dict(os.environ)
    )


def _children(pid: int, needle: str) -> list[int]:
    """Pids whose parent is ``pid`` and whose command line contains ``needle``."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        if ppid == pid and needle in cmdline:
            found.append(int(entry.name))
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"  # a zombie has exited; only its parent's wait is missing


def _wait_for(check: Any, timeout_s: float, what: str) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout_s}s waiting for {what}")


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.kill()
        proc.wait(timeout=30)


@pytest.fixture
def huge_sparse_file(tmp_path: Path) -> Path:
    """200 GB that take no disk: hashing it keeps the probe busy for minutes, like a slow mount."""
    path = tmp_path / "media" / "huge.wav"
    path.parent.mkdir()
    with open(path, "wb") as fh:
        fh.truncate(200 << 30)
    return path


def _config(tmp_path: Path, name: str, max_file_bytes: int | None) -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump({"sampling": {"media": {"max_file_bytes": max_file_bytes}}}))
    return path


@pytest.mark.slow
def test_sigkilled_cli_takes_its_temporary_prefect_server_along(huge_sparse_file: Path, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}  # the temporary server, not a shared one
    proc = _cli("annotate", str(huge_sparse_file), "--out", str(tmp_path / "corpus"), env=env)
    servers: list[int] = []
    try:
        servers = _wait_for(lambda: _children(proc.pid, "uvicorn"), 120, "the temporary Prefect server")
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
        _wait_for(lambda: not any(_alive(p) for p in servers), 10, "the orphaned server to exit")
    finally:
        _stop(proc)
        for pid in servers:  # only if the test failed: do not leave it running
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)


@pytest.mark.slow
def test_ctrl_c_ends_a_run_promptly_and_it_resumes(huge_sparse_file: Path, tmp_path: Path) -> None:
    """The probe is hashing 200 GB when Ctrl-C arrives: the CLI used to wait for it (minutes);
    now it exits within its grace (1 s here, 5 s by default), the run is marked interrupted,
    and a rerun into the same corpus finishes."""
    out = tmp_path / "corpus"
    env = {**os.environ, "EMOFORGE_INTERRUPT_GRACE_S": "1"}
    proc = _cli(
        "annotate",
        str(huge_sparse_file),
        "--out",
        str(out),
        "--config",
        str(_config(tmp_path, "a.yaml", None)),
        env=env,
    )
    try:
        manifest = out / "manifest.json"
        _wait_for(lambda: manifest.exists() and '"running"' in manifest.read_text(), 120, "the run to start")
        time.sleep(1.0)  # inside the probe task by now: nothing else precedes it
        os.kill(proc.pid, signal.SIGINT)
        sent = time.monotonic()
        _, err = proc.communicate(timeout=20)
        waited = time.monotonic() - sent
    finally:
        _stop(proc)
    assert proc.returncode == 130, err.decode()[-2000:]
    assert waited < 8, waited  # hashing the rest of the file takes minutes
    assert b"Rerun the same command to resume" in err
    assert b"Traceback" not in err
    runs = json.loads(manifest.read_text())["runs"]
    assert [r["status"] for r in runs] == ["interrupted"]

    # Resumable: the same corpus takes a new run, and the huge file now fails its size cap.
    small_cap = _config(tmp_path, "b.yaml", 1 << 20)
    resume = subprocess.run(
        [EMOFORGE, "annotate", str(huge_sparse_file), "--out", str(out), "--config", str(small_cap)],
        capture_output=True,
        timeout=300,
        env=dict(os.environ),
    )
    assert resume.returncode == 0, resume.stderr.decode()[-2000:]
    from emoforge.storage.shards import read_table

    rows = read_table(str(out), columns=["status", "failure"]).to_pylist()
    assert [(r["status"], r["failure"]["kind"]) for r in rows] == [("failed", "unsupported_media")]
    assert [r["status"] for r in json.loads(manifest.read_text())["runs"]][-1] != "running"


@pytest.mark.parametrize("verbose", [False, True])
def test_native_log_lines_leave_the_terminal_unless_verbose(tmp_path: Path, verbose: bool) -> None:
    """A C++ library writing to descriptor 2 (mediapipe's W0000 lines) lands in the log file;
    Python's own stderr (progress bar, errors) stays on the terminal."""
    log = tmp_path / "native.log"
    code = (
        "import os, sys\n"
        "from emoforge.nativelog import route_native_stderr\n"
        f"if not {verbose}:\n"
        f"    route_native_stderr(__import__('pathlib').Path({str(log)!r}))\n"
        "os.write(2, b'W0000 inference_feedback_manager.cc:114] native noise\\n')\n"
        "print('progress from python', file=sys.stderr)\n"
        "subprocess = __import__('subprocess')\n"
        "subprocess.run(['sh', '-c', 'echo child noise >&2'], check=True)\n"
        "import warnings; warnings.warn('library deprecation noise', UserWarning)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert b"progress from python" in done.stderr
    if verbose:
        assert b"native noise" in done.stderr and b"child noise" in done.stderr
        assert b"library deprecation noise" in done.stderr
        assert not log.exists()
    else:
        for noise in ("native noise", "child noise", "library deprecation noise"):
            assert noise.encode() not in done.stderr
            assert noise in log.read_text()


def test_cli_routes_native_logs_by_default(tmp_path: Path) -> None:
    """`emoforge` itself redirects descriptor 2 unless --verbose (checked through the log path)."""
    log = tmp_path / "cli-native.log"
    env = {**os.environ, "EMOFORGE_NATIVE_LOG": str(log)}
    quiet = subprocess.run([EMOFORGE, "inspect", str(tmp_path / "nope")], capture_output=True, env=env, timeout=120)
    assert quiet.returncode == 2 and b"no such folder" in quiet.stderr
    assert log.exists()
    log.unlink()
    loud = subprocess.run(
        [EMOFORGE, "--verbose", "inspect", str(tmp_path / "nope")], capture_output=True, env=env, timeout=120
    )
    assert loud.returncode == 2 and b"no such folder" in loud.stderr
    assert not log.exists()
