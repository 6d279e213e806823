"""A scripted stand-in for generativelanguage.googleapis.com on 127.0.0.1, for the real SDK.

``generateContent`` answers come from ``replies`` in order (then ``default_reply``). The File API is emulated the
way ``google-genai``'s ``files.upload`` speaks it: a ``POST /upload/v1beta/files`` with
``X-Goog-Upload-Protocol: resumable`` and ``X-Goog-Upload-Command: start`` is answered
with an ``X-Goog-Upload-URL`` header; the SDK then POSTs the bytes to that URL with
``X-Goog-Upload-Command: upload, finalize`` and gets the File back with
``X-Goog-Upload-Status: final``. ``GET /v1beta/files/{id}`` reports the next state of
``file_states`` (the last one repeats), ``DELETE`` removes the file.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class FakeFile:
    """One uploaded file as the fake holds it."""

    name: str
    uri: str
    mime_type: str
    data: bytes
    states: list[str] = field(default_factory=list)
    state: str = "ACTIVE"

    def advance(self) -> None:
        if self.states:
            self.state = self.states.pop(0)

    def json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "name": self.name,
            "uri": self.uri,
            "mimeType": self.mime_type,
            "sizeBytes": str(len(self.data)),
            "state": self.state,
        }
        if self.state == "FAILED":
            out["error"] = {"code": 3, "message": "unsupported codec in uploaded media"}
        return out


class GeminiFake:
    """Scripted Gemini API; see the module docstring. ``calls`` logs (method, path) of everything."""

    def __init__(self) -> None:
        self.replies: list[tuple[int, dict[str, Any]]] = []
        self.default_reply: tuple[int, dict[str, Any]] | None = None  # once ``replies`` runs out
        self.requests: list[tuple[str, dict[str, Any], dict[str, str]]] = []  # generateContent only
        self.calls: list[tuple[str, str]] = []
        self.upload_starts: list[dict[str, str]] = []  # headers of each resumable-upload start
        self.file_states: list[str] = ["ACTIVE"]  # state at finalize, then one per files.get
        self.files: dict[str, FakeFile] = {}  # live files
        self.uploads: list[FakeFile] = []  # every file ever uploaded, deleted ones included
        self.deleted: list[str] = []
        self._sessions: dict[str, str] = {}  # upload session id -> mime type
        self._uploaded = 0
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def _send(self, status: int, reply: dict[str, Any], headers: dict[str, str] | None = None) -> None:
                data = json.dumps(reply).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                for key, value in (headers or {}).items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(data)

            def _body(self) -> bytes:
                return self.rfile.read(int(self.headers.get("content-length") or 0))

            def do_POST(self) -> None:
                fake.calls.append(("POST", self.path))
                if self.path.startswith("/upload/"):
                    return self._start_upload()
                if self.path.startswith("/upload-session/"):
                    return self._finish_upload()
                body = json.loads(self._body())
                fake.requests.append((self.path, body, dict(self.headers)))
                status, reply = fake.replies.pop(0) if fake.replies or not fake.default_reply else fake.default_reply
                self._send(status, reply)

            def _start_upload(self) -> None:
                self._body()  # the File's metadata; the mime type also comes as a header
                fake.upload_starts.append(dict(self.headers))
                session = str(len(fake._sessions))
                fake._sessions[session] = self.headers.get("X-Goog-Upload-Header-Content-Type", "")
                self._send(200, {}, {"X-Goog-Upload-URL": f"{fake.url}/upload-session/{session}"})

            def _finish_upload(self) -> None:
                data = self._body()
                session = self.path.rsplit("/", 1)[-1]
                if "finalize" not in self.headers.get("X-Goog-Upload-Command", ""):
                    self._send(200, {}, {"X-Goog-Upload-Status": "active"})
                    return
                fid = f"f{fake._uploaded}"
                fake._uploaded += 1
                file = FakeFile(
                    name=f"files/{fid}",
                    uri=f"{fake.url}/v1beta/files/{fid}",
                    mime_type=fake._sessions[session],
                    data=data,
                    states=list(fake.file_states),
                )
                file.advance()
                fake.files[file.name] = file
                fake.uploads.append(file)
                self._send(200, {"file": file.json()}, {"X-Goog-Upload-Status": "final"})

            def do_GET(self) -> None:
                fake.calls.append(("GET", self.path))
                name = "files/" + self.path.split("?")[0].rsplit("/", 1)[-1]
                file = fake.files.get(name)
                if file is None:
                    self._send(404, {"error": {"code": 404, "message": "no such file", "status": "NOT_FOUND"}})
                    return
                file.advance()
                self._send(200, file.json())

            def do_DELETE(self) -> None:
                fake.calls.append(("DELETE", self.path))
                name = "files/" + self.path.split("?")[0].rsplit("/", 1)[-1]
                fake.deleted.append(name)
                fake.files.pop(name, None)
                self._send(200, {})

            def log_message(self, *args: Any) -> None:
                return None

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def gemini_reply(text: str, finish: str = "STOP", audio_tokens: int = 0) -> dict[str, Any]:
    usage: dict[str, Any] = {"promptTokenCount": 812, "candidatesTokenCount": 95, "totalTokenCount": 907}
    if audio_tokens:
        usage["promptTokensDetails"] = [
            {"modality": "TEXT", "tokenCount": 812 - audio_tokens},
            {"modality": "AUDIO", "tokenCount": audio_tokens},
        ]
    return {
        "candidates": [{"content": {"role": "model", "parts": [{"text": text}]}, "finishReason": finish}],
        "usageMetadata": usage,
        "modelVersion": "gemini-test-001",
    }
