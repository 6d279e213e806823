"""Scripted stand-ins for the OpenAI Batch API and Gemini batch mode on 127.0.0.1, spoken to by
the real ``openai`` and ``google-genai`` SDKs (paths as the SDKs call them).

OpenAI: ``POST /v1/files`` (multipart, purpose=batch), ``POST /v1/batches``, ``GET
/v1/batches/{id}``, ``GET /v1/batches`` (newest first), ``GET /v1/files/{id}/content``.
Gemini: ``POST /v1beta/models/{model}:batchGenerateContent``, ``GET /v1beta/batches/{id}``,
``GET /v1beta/batches`` (the SDK says ``v1`` under a custom base URL); jobs are long-running
operations whose ``metadata`` holds the state and, once done, ``output.inlinedResponses``.

Both answer every line with a valid annotation (``GOOD``) unless scripted otherwise:
``polls_before_end`` retrieves report the batch still running; then it ends as ``final``
(``completed``/``expired``/``cancelled``; Gemini: ``SUCCEEDED``/``EXPIRED``/...), lines in
``fail_lines`` (custom id -> HTTP status) answer with that error, and an expired OpenAI
or cancelled batch answers only its first ``answered_before_end`` lines (the rest of an expired
one come back as ``batch_expired`` error lines, of a cancelled one not at all). ``create_delay_s`` holds the
create response after the batch exists: the window a kill between "created" and "id
recorded" falls in.
"""

from __future__ import annotations

import abc
import contextlib
import json
import threading
import time
from collections.abc import Callable
from email.parser import BytesParser
from email.policy import default as email_policy
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from tests.agents.gemini_server import gemini_reply
from tests.agents.test_llm_fakes import GOOD, completion


class _Server(abc.ABC):
    """A threaded HTTP server whose handler dispatches to ``route``."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str]] = []
        self.lock = threading.Lock()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def _reply(self, status: int, body: Any, content_type: str = "application/json") -> None:
                data = body if isinstance(body, bytes) else json.dumps(body).encode()
                self.send_response(status)
                self.send_header("content-type", content_type)
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _handle(self, method: str) -> None:
                raw = self.rfile.read(int(self.headers.get("content-length") or 0))
                with fake.lock:
                    fake.calls.append((method, self.path))
                status, body, ctype = fake.route(method, self.path.split("?")[0], raw, dict(self.headers))
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):  # a killed client
                    self._reply(status, body, ctype)

            def do_GET(self) -> None:
                self._handle("GET")

            def do_POST(self) -> None:
                self._handle("POST")

            def log_message(self, *args: Any) -> None:
                return None

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @abc.abstractmethod
    def route(self, method: str, path: str, raw: bytes, headers: dict[str, str]) -> tuple[int, Any, str]:
        """(status, body, content type) of one request."""

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class OpenAIBatchFake(_Server):
    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.batches: dict[str, dict[str, Any]] = {}
        self.creates: list[dict[str, Any]] = []
        self.polls_before_end = 0
        self.final = "completed"
        self.fail_lines: dict[str, int] = {}
        self.answered_before_end = 0
        self.create_delay_s = 0.0
        # Rewrites a result file's text before it is served (a garbled or hostile provider output).
        self.mangle: Callable[[str, str], str] | None = None
        self._polls: dict[str, int] = {}
        super().__init__()
        self.base_url = f"{self.url}/v1"

    def input_lines(self, batch_id: str) -> list[dict[str, Any]]:
        raw = self.files[self.batches[batch_id]["input_file_id"]].decode()
        return [json.loads(line) for line in raw.splitlines() if line.strip()]

    def route(self, method: str, path: str, raw: bytes, headers: dict[str, str]) -> tuple[int, Any, str]:
        now = int(time.time())
        if method == "POST" and path == "/v1/files":
            message = BytesParser(policy=email_policy).parsebytes(
                f"Content-Type: {headers.get('Content-Type') or headers.get('content-type')}\r\n\r\n".encode() + raw
            )
            fields = {p.get_param("name", header="content-disposition"): p for p in message.iter_parts()}
            file_part = fields["file"]
            data = file_part.get_payload(decode=True)
            with self.lock:
                fid = f"file-{len(self.files)}"
                self.files[fid] = data
            body = {"id": fid, "object": "file", "bytes": len(data), "created_at": now,
                    "filename": file_part.get_filename(), "purpose": "batch", "status": "processed"}  # fmt: skip
            return 200, body, "application/json"
        if method == "POST" and path == "/v1/batches":
            req = json.loads(raw)
            with self.lock:
                self.creates.append(req)
                bid = f"batch_{len(self.batches)}"
                self.batches[bid] = {
                    "id": bid, "object": "batch", "endpoint": req["endpoint"], "input_file_id": req["input_file_id"],
                    "completion_window": req["completion_window"], "status": "validating", "created_at": now,
                    "metadata": req.get("metadata"), "request_counts": {"total": 0, "completed": 0, "failed": 0},
                }  # fmt: skip
                self._polls[bid] = self.polls_before_end
            time.sleep(self.create_delay_s)
            return 200, self.batches[bid], "application/json"
        if method == "GET" and path == "/v1/batches":
            data = sorted(self.batches.values(), key=lambda b: b["id"], reverse=True)
            return 200, {"object": "list", "data": data, "has_more": False}, "application/json"
        if method == "GET" and path.startswith("/v1/batches/"):
            return 200, self._retrieve(path.rsplit("/", 1)[-1]), "application/json"
        if method == "GET" and path.startswith("/v1/files/") and path.endswith("/content"):
            return 200, self.files[path.split("/")[3]], "application/octet-stream"
        return 404, {"error": {"message": f"no route {method} {path}"}}, "application/json"

    def _retrieve(self, bid: str) -> dict[str, Any]:
        with self.lock:
            batch = self.batches[bid]
            if batch["status"] in ("completed", "expired", "cancelled", "failed"):
                return batch
            if self._polls[bid] > 0:
                self._polls[bid] -= 1
                batch["status"] = "in_progress"
                return batch
            out, err = [], []
            for i, line in enumerate(self.input_lines(bid)):
                cid = line["custom_id"]
                if self.final == "cancelled" and i >= self.answered_before_end:
                    continue
                if self.final == "expired" and i >= self.answered_before_end:
                    error = {
                        "code": "batch_expired",
                        "message": "This request could not be executed before the completion window expired.",
                    }
                    err.append({"id": f"req_{i}", "custom_id": cid, "response": None, "error": error})
                elif cid in self.fail_lines:
                    code = self.fail_lines[cid]
                    body = {"error": {"message": "upstream overloaded", "type": "server_error"}}
                    err.append({"id": f"req_{i}", "custom_id": cid, "response": {"status_code": code, "body": body}})
                else:
                    body = completion(json.dumps(GOOD))
                    out.append({"id": f"req_{i}", "custom_id": cid, "response": {"status_code": 200, "body": body}})
            for kind, lines in (("output", out), ("error", err)):
                if lines:
                    fid = f"file-{kind}-{bid}"
                    text = "".join(json.dumps(x) + "\n" for x in lines)
                    self.files[fid] = (self.mangle(kind, text) if self.mangle else text).encode()
                    batch[f"{kind}_file_id"] = fid
            total = len(out) + len(err)
            batch["request_counts"] = {"total": total, "completed": len(out), "failed": len(err)}
            batch["status"] = self.final
            return batch


class GeminiBatchFake(_Server):
    def __init__(self) -> None:
        self.jobs: dict[str, dict[str, Any]] = {}
        self.requests: dict[str, list[dict[str, Any]]] = {}
        self.creates: list[dict[str, Any]] = []
        self.polls_before_end = 0
        self.final = "BATCH_STATE_SUCCEEDED"
        self.fail_lines: dict[str, int] = {}
        self.create_delay_s = 0.0
        # Rewrites a result file's text before it is served (a garbled or hostile provider output).
        self.mangle: Callable[[str, str], str] | None = None
        self._polls: dict[str, int] = {}
        super().__init__()

    def route(self, method: str, path: str, raw: bytes, headers: dict[str, str]) -> tuple[int, Any, str]:
        path = "/" + path.split("/", 2)[2]  # the SDK's API version (v1beta, or v1 with a base_url) aside
        if method == "POST" and path.endswith(":batchGenerateContent"):
            body = json.loads(raw)
            model = path[1:].split(":", 1)[0]
            with self.lock:
                self.creates.append(body)
                name = f"batches/b{len(self.jobs)}"
                self.requests[name] = body["batch"]["inputConfig"]["requests"]["requests"]
                self.jobs[name] = {
                    "name": name,
                    "metadata": {"name": name, "displayName": body["batch"].get("displayName"), "model": model,
                                 "state": "BATCH_STATE_PENDING", "createTime": "2026-11-29T00:00:00Z"},
                }  # fmt: skip
                self._polls[name] = self.polls_before_end
            time.sleep(self.create_delay_s)
            return 200, self.jobs[name], "application/json"
        if method == "GET" and path == "/batches":
            return 200, {"operations": list(reversed(self.jobs.values()))}, "application/json"
        if method == "GET" and path.startswith("/batches/"):
            return 200, self._get("batches/" + path.rsplit("/", 1)[-1]), "application/json"
        return (
            404,
            {"error": {"code": 404, "message": f"no route {method} {path}", "status": "NOT_FOUND"}},
            "application/json",
        )

    def _get(self, name: str) -> dict[str, Any]:
        with self.lock:
            job = self.jobs[name]
            meta = job["metadata"]
            if meta["state"] not in ("BATCH_STATE_PENDING", "BATCH_STATE_RUNNING"):
                return job
            if self._polls[name] > 0:
                self._polls[name] -= 1
                meta["state"] = "BATCH_STATE_RUNNING"
                return job
            meta["state"] = self.final
            if self.final == "BATCH_STATE_SUCCEEDED":
                answers = []
                for req in self.requests[name]:
                    cid = req["metadata"]["custom_id"]
                    if cid in self.fail_lines:
                        answers.append(
                            {
                                "error": {"code": self.fail_lines[cid], "message": "internal"},
                                "metadata": req["metadata"],
                            }
                        )
                    else:
                        answers.append({"response": gemini_reply(json.dumps(GOOD)), "metadata": req["metadata"]})
                meta["output"] = {"inlinedResponses": {"inlinedResponses": answers}}
                job["done"] = True
            return job
