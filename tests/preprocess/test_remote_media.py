"""Media named by URL: probed and decoded from a spool of the object (read through fsspec,
hashed while it streams, deleted after the task), against a real local HTTP server that
answers byte ranges, as object stores do."""

from __future__ import annotations

import re
import tempfile
import threading
from collections.abc import Iterator
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from emoforge.configs import load_config
from emoforge.configs.sampling import MediaConfig
from emoforge.flows.phase import PhaseEnv, run_phase
from emoforge.flows.phases.probe import Probe
from emoforge.flows.phases.sampling import Sampling
from emoforge.flows.work import RecordingWork
from emoforge.preprocess.media import MediaProber
from emoforge.storage.records import ErrorKind, MediaInput, RunContext, Status, file_sha256, recording_id_for
from emoforge.storage.shards import CorpusState


class RangeHandler(SimpleHTTPRequestHandler):
    """Static files with ``Range: bytes=a-b`` answered as 206 (what fsspec's HTTP files ask for)."""

    ranges: list[str] = []

    def send_head(self):  # type: ignore[no-untyped-def]
        match = re.fullmatch(r"bytes=(\d+)-(\d*)", self.headers.get("Range", ""))
        path = Path(self.translate_path(self.path))
        if match is None or not path.is_file():
            return super().send_head()
        RangeHandler.ranges.append(self.headers["Range"])
        size = path.stat().st_size
        start, end = int(match[1]), min(int(match[2] or size - 1), size - 1)
        fh = path.open("rb")
        fh.seek(start)
        self.send_response(206)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Range", f"bytes {start}-{end}/{size}")
        self.send_header("Content-Length", str(end - start + 1))
        self.send_header("Accept-Ranges", "bytes")
        self.end_headers()
        self._left = end - start + 1
        return fh

    def copyfile(self, source, outputfile):  # type: ignore[no-untyped-def]
        left = getattr(self, "_left", None)
        if left is None:
            return super().copyfile(source, outputfile)
        outputfile.write(source.read(left))
        return None

    def log_message(self, format: str, *args: object) -> None:
        return


@pytest.fixture()
def server(media_dir: Path) -> Iterator[str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), partial(RangeHandler, directory=str(media_dir)))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture()
def spool_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The spools go here: each test sees what a task left behind."""
    folder = tmp_path / "tmp"
    folder.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    return folder


@pytest.mark.parametrize("name", ["jfk.flac", "sample_00003358.mp4"])
def test_an_https_input_is_probed_like_the_local_file_and_its_spool_deleted(
    server: str, spool_dir: Path, media_dir: Path, name: str
) -> None:
    RangeHandler.ranges.clear()
    prober = MediaProber(MediaConfig())
    remote = prober.probe(f"{server}/{name}")
    local = prober.probe(media_dir / name)
    assert remote.status == Status.ok, remote.failure
    assert remote.sha256 == file_sha256(media_dir / name) == local.sha256
    assert remote.id == recording_id_for(media_dir / name, local.sha256) == local.id
    assert remote.uri == f"{server}/{name}"
    assert remote.model_dump(exclude={"uri"}) == local.model_dump(exclude={"uri"})
    assert RangeHandler.ranges, "read through ranged requests"
    assert list(spool_dir.iterdir()) == []


def test_unreadable_and_oversized_objects_are_failure_rows(server: str, spool_dir: Path) -> None:
    missing = MediaProber(MediaConfig()).probe(f"{server}/nope.wav")
    assert missing.status == Status.failed and missing.failure is not None
    assert missing.failure.kind == ErrorKind.invalid_input and missing.uri == f"{server}/nope.wav"
    big = MediaProber(MediaConfig(max_file_bytes=100_000)).probe(f"{server}/jfk.flac")
    assert big.failure is not None and big.failure.kind == ErrorKind.unsupported_media
    assert "exceeds sampling.media.max_file_bytes=100000" in big.failure.message
    assert list(spool_dir.iterdir()) == []


def test_sampling_decodes_a_url_from_a_spool_into_the_same_segments(
    server: str, spool_dir: Path, media_dir: Path
) -> None:
    config = load_config(None)
    ctx = RunContext(run_id="run-r", config_hash="h", emoforge_version="0")

    def sampled(uri: str) -> RecordingWork:
        env = PhaseEnv(config=config, ctx=ctx, state=CorpusState(rows={}, segment_counts={}), retry="transient")
        work = run_phase(Probe(env), RecordingWork(item=MediaInput(uri=uri)))
        return run_phase(Sampling(env), work)

    remote, local = sampled(f"{server}/two_speakers.wav"), sampled(str(media_dir / "two_speakers.wav"))
    assert remote.failure is None and remote.media is not None and local.media is not None
    assert [r.segment for r in remote.rows] == [r.segment for r in local.rows] and len(remote.rows) > 1
    assert remote.media.audio is not None and local.media.audio is not None
    assert remote.media.audio.tobytes() == local.media.audio.tobytes()
    assert remote.media.recording.uri == f"{server}/two_speakers.wav"  # not the deleted spool
    assert {r.recording.uri for r in remote.rows} == {f"{server}/two_speakers.wav"}
    assert list(spool_dir.iterdir()) == []
