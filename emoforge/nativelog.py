"""Keep native libraries' log lines off the user's terminal.

mediapipe, TFLite, absl and glog write straight to file descriptor 2 from C++ (lines like
``W0000 00:00:... inference_feedback_manager.cc:114] Feedback manager requires...``), so
neither Python's logging levels nor ``GLOG_minloglevel`` stop all of them (absl ignores it
until ``absl::InitializeLog`` is called, which mediapipe never does). The CLI therefore
points descriptor 2 at a log file and gives Python's ``sys.stderr`` (progress bar, errors,
tracebacks) a duplicate of the terminal; third-party Python warnings go to the same file.
``--verbose`` leaves both alone.
"""

from __future__ import annotations

import logging
import os
import sys
import tempfile
from pathlib import Path

ENV_LOG = "EMOFORGE_NATIVE_LOG"


def native_log_path() -> Path:
    """``$EMOFORGE_NATIVE_LOG``, else ``<tmp>/emoforge-<uid>/native.log``."""
    configured = os.environ.get(ENV_LOG)
    if configured:
        return Path(configured)
    return Path(tempfile.gettempdir()) / f"emoforge-{os.getuid()}" / "native.log"


def _is_process_stderr() -> bool:
    # Only the real descriptor 2: under pytest or typer's CliRunner sys.stderr is a capture
    # object, and redirecting the test process's descriptor would hide its own output.
    try:
        return sys.stderr is not None and sys.stderr.fileno() == 2
    except (AttributeError, OSError, ValueError):
        return False


def route_native_stderr(path: Path | None = None) -> Path | None:
    """Send descriptor 2 to ``path`` (appending); keep ``sys.stderr`` on the terminal.

    Call before logging handlers are created: a handler keeps the stream it was given.
    Child processes (Prefect's server, Dask workers) inherit the redirected descriptor.

    Returns:
        The log file, or None when nothing was redirected (stderr is not descriptor 2, or
        the log file cannot be opened: then the lines stay on the terminal).
    """
    if not _is_process_stderr():
        return None
    path = path or native_log_path()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        log_fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    except OSError:
        return None
    sys.stderr.flush()
    terminal = os.dup(2)
    os.dup2(log_fd, 2)
    os.close(log_fd)
    sys.stderr = open(  # noqa: SIM115 - lives as long as the process, like the original
        terminal, "w", buffering=1, encoding=sys.stderr.encoding, errors="backslashreplace", closefd=True
    )
    _route_python_warnings(path)
    return path


def _route_python_warnings(path: Path) -> None:
    """Libraries' Python warnings (torchaudio deprecations, ...) go to the same log file.

    They are about the libraries, not the user's run; emoforge itself reports through logging.
    """
    logging.captureWarnings(True)
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(name)s: %(message)s"))
    from emoforge.storage.secrets import SECRET_FILTER

    handler.addFilter(SECRET_FILTER)
    warnings_log = logging.getLogger("py.warnings")
    warnings_log.addHandler(handler)
    warnings_log.propagate = False
