"""A scripted OpenAI-compatible chat server on 127.0.0.1 for failure tests.

Real HTTP through the real ``openai`` SDK, but the answer is chosen per model name, so a
test can make one agent's provider fail while another's answers, then fix it:

- ``ok``: a valid annotation (``GOOD``), or a judge verdict when the system text is the judge's;
- ``429``: rate limited (with ``Retry-After: 0``);
- ``500``: a server error whose body echoes the request's ``Authorization`` header and a
  ``?key=`` URL, as misconfigured gateways do;
- ``timeout``: holds the request longer than the client's ``timeout_s``, then answers.

Every request is counted per model and kept (path, model, headers, body) for assertions.
"""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Literal

from tests.agents.test_llm_fakes import GOOD, completion

Behaviour = Literal["ok", "429", "500", "timeout"]

JUDGE_REPLY = {"s_rec": 0.8, "s_reason": 0.7, "s_cot": 0.6, "step_scores": [1.0], "notes": ["fine"]}


@dataclass
class Seen:
    model: str
    headers: dict[str, str]  # names lower-cased
    body: dict[str, Any]


@dataclass
class ScriptedProvider:
    """Behaviour per model name; ``hold_s`` is how long a ``timeout`` request is held."""

    behaviour: dict[str, Behaviour] = field(default_factory=dict)
    hold_s: float = 3.0
    requests: Counter[str] = field(default_factory=Counter)
    seen: list[Seen] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        provider = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["content-length"])))
                provider._answer(self, body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.base_url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def set(self, **behaviour: Behaviour) -> None:
        with self._lock:
            self.behaviour.update(behaviour)

    def reset_counts(self) -> None:
        with self._lock:
            self.requests.clear()
            self.seen.clear()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def _answer(self, handler: BaseHTTPRequestHandler, body: dict[str, Any]) -> None:
        model = str(body.get("model"))
        with self._lock:
            self.requests[model] += 1
            self.seen.append(Seen(model, {k.lower(): v for k, v in handler.headers.items()}, body))
            behaviour = self.behaviour.get(model, "ok")
        if behaviour == "429":
            self._send(handler, 429, {"error": {"message": "slow down", "type": "rate_limit"}}, {"retry-after": "0"})
            return
        if behaviour == "500":
            auth = handler.headers.get("authorization", "")
            echo = f"upstream rejected headers: Authorization: {auth}; retry at https://gw.example/v1?key={auth[7:]}"
            self._send(handler, 500, {"error": {"message": echo, "type": "server_error"}})
            return
        if behaviour == "timeout":
            time.sleep(self.hold_s)  # the client gave up before this; the late answer goes nowhere
        system = body["messages"][0]["content"]
        reply = JUDGE_REPLY if "judge of emotion annotations" in system else GOOD
        self._send(handler, 200, completion(json.dumps(reply)))

    @staticmethod
    def _send(
        handler: BaseHTTPRequestHandler, status: int, body: dict[str, Any], headers: dict[str, str] | None = None
    ) -> None:
        data = json.dumps(body).encode()
        try:
            handler.send_response(status)
            handler.send_header("content-type", "application/json")
            handler.send_header("content-length", str(len(data)))
            for k, v in (headers or {}).items():
                handler.send_header(k, v)
            handler.end_headers()
            handler.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            pass  # a client that timed out has closed the connection
