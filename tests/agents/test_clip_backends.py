"""Audio and video clips through the real SDKs: OpenAI ``input_audio``, Gemini inline parts and
the Gemini File API (resumable upload, polling, delete), the missing-clip policy, the cache,
the annotate task releasing the decoded media once the clips are cut, and the real flow on
a real fixture (one clip per segment; a second corpus sharing the cache makes no call).

OpenAI runs on an httpx MockTransport under the ``openai`` SDK (``test_llm_fakes.py``);
Gemini on the scripted local server (``gemini_server.py``). Not exercised: the real
services, so whether a given model accepts these parts (and e.g. ``json_schema`` together
with audio) is not checked here.
"""

from __future__ import annotations

import base64
import io
import json
import math
import wave
from pathlib import Path
from typing import Any

import pytest

from emoforge.configs import load_config
from emoforge.flows.annotate import annotate_corpus
from emoforge.flows.phase import PhaseEnv
from emoforge.flows.phases.annotate import Annotate
from emoforge.flows.tasks import phase_task
from emoforge.flows.work import RecordingWork, segment_row
from emoforge.storage.records import ErrorKind, MediaInput, Recording, RunContext, Status
from emoforge.storage.shards import read_rows
from tests.agents.conftest import make_clip, make_features, make_media, make_segment
from tests.agents.gemini_server import GeminiFake, gemini_reply
from tests.agents.test_gemini_transformers import gemini_agent
from tests.agents.test_llm_fakes import (
    GOOD,
    Script,
    annotator,
    api_key,  # noqa: F401 - autouse: sets the key annotator() reads
    completion,
)

AUDIO_MODALITIES = ["face", "voice", "text", "audio"]


def wav_seconds(data: bytes) -> float:
    with wave.open(io.BytesIO(data)) as w:
        assert (w.getnchannels(), w.getsampwidth(), w.getframerate()) == (1, 2, 16000)
        return w.getnframes() / w.getframerate()


def mp4_facts(data: bytes) -> tuple[int, float, bool]:
    """(decoded video frames, video stream seconds, has a soundtrack) of an MP4."""
    import av

    with av.open(io.BytesIO(data)) as c:
        stream = c.streams.video[0]
        seconds = float(stream.duration * stream.time_base)
        has_audio = bool(c.streams.audio)
        frames = sum(1 for _ in c.decode(video=0))
    return frames, seconds, has_audio


def inline_parts(body: dict[str, Any]) -> list[dict[str, Any]]:
    """The inline blobs of the first turn, keys as the SDK writes them (snake_case inside)."""
    parts = body["contents"][0]["parts"]
    return [p["inlineData"] for p in parts if "inlineData" in p]


def file_parts(body: dict[str, Any]) -> list[dict[str, Any]]:
    parts = body["contents"][0]["parts"]
    return [p["fileData"] for p in parts if "fileData" in p]


# ---------------------------------------------------------------------------------- OpenAI


def test_openai_request_carries_the_segment_audio(ctx: RunContext) -> None:
    reply = completion(json.dumps(GOOD))
    reply["usage"]["prompt_tokens_details"] = {"audio_tokens": 30, "cached_tokens": 0}
    script = Script([(200, reply)])
    seg = make_segment(start_s=1.0, end_s=4.0)
    agent = annotator(script, ctx, modalities=AUDIO_MODALITIES)
    ann = agent.annotate(seg, make_features(seg), make_clip(seg))
    assert ann.status == Status.ok and ann.modalities_seen == ["face", "voice", "text", "audio"]
    content = script.requests[0]["messages"][1]["content"]
    audio = [p for p in content if p["type"] == "input_audio"]
    assert len(audio) == 1 and audio[0]["input_audio"]["format"] == "wav"
    assert wav_seconds(base64.b64decode(audio[0]["input_audio"]["data"])) == pytest.approx(seg.duration_s)
    assert content[0]["type"] == "text" and "Modalities given to you: face, voice, text, audio." in content[0]["text"]
    # 30 of the 1000 prompt tokens were audio, billed at input_per_mtok (2.0) as no audio price is set
    assert ann.usage.cost_usd == pytest.approx((1000 * 2.0 + 200 * 8.0) / 1e6)


def test_openai_audio_cache_hit_and_changed_clip(ctx: RunContext, tmp_path: Path) -> None:
    script = Script([(200, completion(json.dumps(GOOD)))] * 2)
    seg = make_segment()
    feats = make_features(seg)
    first = annotator(script, ctx, tmp_path=tmp_path, modalities=AUDIO_MODALITIES).annotate(seg, feats, make_clip(seg))
    rerun = annotator(script, ctx, tmp_path=tmp_path, modalities=AUDIO_MODALITIES)
    assert rerun.estimate(seg, feats, make_clip(seg)).calls == 0
    again = rerun.annotate(seg, feats, make_clip(seg))
    assert len(script.requests) == 1 and again.usage.cached and again.labels == first.labels
    louder = make_media()
    louder.audio = louder.audio * 1.5  # type: ignore[operator]
    changed = rerun.annotate(seg, feats, make_clip(seg, louder))
    assert len(script.requests) == 2 and not changed.usage.cached


def test_openai_missing_audio_follows_the_policy(ctx: RunContext) -> None:
    seg = make_segment()
    feats = make_features(seg)
    silent = make_clip(seg, make_media(audio=False))
    # annotate (default): the call goes out without audio, and the record says what was seen
    script = Script([(200, completion(json.dumps(GOOD)))])
    ann = annotator(script, ctx, modalities=AUDIO_MODALITIES).annotate(seg, feats, silent)
    assert ann.status == Status.ok and ann.modalities_seen == ["face", "voice", "text"]
    user = script.requests[0]["messages"][1]["content"]
    assert isinstance(user, str) and "Modalities given to you: face, voice, text." in user
    # fail: a typed failure and no call
    script = Script([])
    ann = annotator(script, ctx, modalities=AUDIO_MODALITIES, on_missing_media="fail").annotate(seg, feats, silent)
    assert ann.failure is not None and ann.failure.kind == ErrorKind.no_audio and not script.requests
    assert "no decodable audio stream" in ann.failure.message
    # an agent that only listens has nothing left: no_audio even under 'annotate'
    ann = annotator(script, ctx, modalities=["audio"]).annotate(seg, feats, silent)
    assert ann.failure is not None and ann.failure.kind == ErrorKind.no_audio and not script.requests


# ---------------------------------------------------------------------------------- Gemini


def test_gemini_inline_audio(gemini: GeminiFake, ctx: RunContext) -> None:
    gemini.replies.append((200, gemini_reply(json.dumps(GOOD), audio_tokens=96)))
    seg = make_segment(start_s=1.0, end_s=4.0)
    ann = gemini_agent(gemini, ctx, [], modalities=["text", "audio"]).annotate(seg, make_features(seg), make_clip(seg))
    assert ann.status == Status.ok and ann.modalities_seen == ["text", "audio"]
    [audio] = inline_parts(gemini.requests[0][1])
    assert audio["mime_type"] == "audio/wav"
    assert wav_seconds(base64.urlsafe_b64decode(audio["data"])) == pytest.approx(3.0)
    assert not any(m == "POST" and p.startswith("/upload") for m, p in gemini.calls)  # small: inline


def test_gemini_inline_video_with_its_soundtrack(gemini: GeminiFake, ctx: RunContext) -> None:
    gemini.replies.append((200, gemini_reply(json.dumps(GOOD))))
    seg = make_segment(start_s=1.2, end_s=3.4)
    agent = gemini_agent(gemini, ctx, [], modalities=["face", "text", "audio", "video"])
    ann = agent.annotate(seg, make_features(seg), make_clip(seg))
    assert ann.status == Status.ok and ann.modalities_seen == ["face", "text", "audio", "video"]
    body = gemini.requests[0][1]
    # one MP4 carries picture and sound; the WAV is not sent on top of it
    [video] = inline_parts(body)
    assert video["mime_type"] == "video/mp4"
    frames, seconds, has_audio = mp4_facts(base64.urlsafe_b64decode(video["data"]))
    assert frames == 5 and has_audio and 0 <= seconds - seg.duration_s < 0.5
    texts = [p["text"] for p in body["contents"][0]["parts"] if "text" in p]
    assert any(t.startswith("Video of the segment (2.50 s, 5 frames, with its soundtrack)") for t in texts)


def test_gemini_file_api_upload_reference_and_delete(gemini: GeminiFake, ctx: RunContext) -> None:
    gemini.replies.append((200, gemini_reply(json.dumps(GOOD))))
    gemini.file_states = ["PROCESSING", "ACTIVE"]  # one poll before it can be used
    seg = make_segment(start_s=1.0, end_s=4.0)
    clip = make_clip(seg)
    agent = gemini_agent(gemini, ctx, [], modalities=["text", "video"], inline_media_max_mb=0.001, upload_poll_s=0.01)
    ann = agent.annotate(seg, make_features(seg), clip)
    assert ann.status == Status.ok and ann.modalities_seen == ["text", "audio", "video"]
    [start] = gemini.upload_starts
    assert start["X-Goog-Upload-Protocol"] == "resumable" and start["X-Goog-Upload-Command"] == "start"
    assert start["X-Goog-Upload-Header-Content-Type"] == "video/mp4"
    assert start["X-Goog-Upload-Header-Content-Length"] == str(len(clip.video_mp4 or b""))
    methods = [m for m, _ in gemini.calls]
    assert methods == ["POST", "POST", "GET", "POST", "DELETE"]  # start, bytes, poll, generate, delete
    body = gemini.requests[0][1]
    assert not inline_parts(body)
    [ref] = file_parts(body)
    assert ref == {"file_uri": f"{gemini.url}/v1beta/files/f0", "mime_type": "video/mp4"}
    assert gemini.deleted == ["files/f0"] and not gemini.files
    # what was uploaded is the clip itself, whole
    assert [(f.data, f.mime_type) for f in gemini.uploads] == [(clip.video_mp4, "video/mp4")]


def test_gemini_upload_that_fails_processing_is_typed(gemini: GeminiFake, ctx: RunContext) -> None:
    gemini.file_states = ["PROCESSING", "FAILED"]
    seg = make_segment()
    agent = gemini_agent(gemini, ctx, [], modalities=["audio"], inline_media_max_mb=0.001, upload_poll_s=0.01)
    ann = agent.annotate(seg, make_features(seg), make_clip(seg))
    assert ann.status == Status.failed and ann.failure is not None
    assert ann.failure.kind == ErrorKind.unsupported_media and not ann.failure.transient
    assert "audio/wav failed processing: unsupported codec" in ann.failure.message
    assert not gemini.requests and gemini.deleted == ["files/f0"]  # no generate call; the file is gone
    assert ann.usage.attempts == 1  # deterministic: not retried


def test_gemini_upload_still_processing_times_out_and_cleans_up(gemini: GeminiFake, ctx: RunContext) -> None:
    gemini.file_states = ["PROCESSING"]
    seg = make_segment()
    sleeps: list[float] = []
    agent = gemini_agent(
        gemini, ctx, sleeps, modalities=["audio"], inline_media_max_mb=0.001,
        upload_poll_s=0.01, upload_timeout_s=0.05, max_retries=1,
    )  # fmt: skip
    ann = agent.annotate(seg, make_features(seg), make_clip(seg))
    assert ann.failure is not None and ann.failure.kind == ErrorKind.timeout and ann.failure.transient
    assert ann.usage.attempts == 2 and len(sleeps) == 1  # retried once, as timeouts are
    assert gemini.deleted == ["files/f0", "files/f1"] and not gemini.files  # each attempt cleaned up


# ---------------------------------------------------------------------------------- flow task


def test_annotate_task_cuts_clips_and_releases_the_media(gemini: GeminiFake, ctx: RunContext, tmp_path: Path) -> None:
    agent = {
        "name": "gem", "backend": "gemini", "model": "gemini-test", "base_url": gemini.url,
        "api_key_env": "EMOFORGE_GEMINI_KEY", "modalities": ["text", "audio"], "max_retries": 0,
    }  # fmt: skip
    config = load_config(overrides={"agents": {"jury": [agent], "taxonomy": {"embedding_model": None}}})
    segments = [make_segment(0, 0.5, 2.0), make_segment(1, 2.0, 5.5)]
    rec = Recording(id=segments[0].recording_id, uri="generated.mp4", sha256="0" * 64, size_bytes=1)
    rows = [segment_row(rec, s, 2, ctx.run_id, ctx.config_hash) for s in segments]
    for row, s in zip(rows, segments, strict=True):
        row.features = make_features(s)
    work = RecordingWork(item=MediaInput(uri="generated.mp4"), recording=rec, media=make_media(), rows=rows)
    gemini.replies += [(200, gemini_reply(json.dumps(GOOD)))] * 2
    done = phase_task.fn(work, Annotate, PhaseEnv(config=config, ctx=ctx, cache_dir=str(tmp_path / "cache")))
    assert done.failure is None and done.media is None  # released once the clips were cut
    assert [a.modalities_seen for [a] in (r.annotations for r in done.rows)] == [["text", "audio"]] * 2
    seconds = [wav_seconds(base64.urlsafe_b64decode(inline_parts(b)[0]["data"])) for _, b, _ in gemini.requests]
    assert seconds == pytest.approx([1.5, 3.5])  # each segment got its own clip


@pytest.mark.slow
def test_flow_sends_each_segment_its_clip_and_a_rerun_hits_the_cache(
    gemini: GeminiFake, media_dir: Path, tmp_path: Path
) -> None:
    """The real flow on a real fixture: media kept past feature extraction, one MP4 per segment
    matching it, then a second corpus sharing the response cache makes no call (same clip bytes)."""
    agent = {
        "name": "gem", "backend": "gemini", "model": "gemini-test", "base_url": gemini.url,
        "api_key_env": "EMOFORGE_GEMINI_KEY", "modalities": ["text", "audio", "video"], "max_retries": 0,
    }  # fmt: skip
    agents = {"jury": [agent], "taxonomy": {"embedding_model": None}, "cache": {"path": str(tmp_path / "cache")}}
    gemini.default_reply = (200, gemini_reply(json.dumps(GOOD)))
    clip = str(media_dir / "sample_00000694.mp4")
    annotate_corpus(inputs=[clip], out=str(tmp_path / "first"), overrides={"agents": agents})
    rows = sorted(read_rows(str(tmp_path / "first")), key=lambda r: r.segment.index)  # type: ignore[union-attr]
    assert rows and len(gemini.requests) == len(rows)
    for row, (_, body, _) in zip(rows, gemini.requests, strict=True):
        [ann] = row.annotations
        assert ann.status == Status.ok and ann.modalities_seen == ["text", "audio", "video"]
        [video] = inline_parts(body)
        frames, seconds, has_audio = mp4_facts(base64.urlsafe_b64decode(video["data"]))
        assert row.segment is not None and has_audio and 0 <= seconds - row.segment.duration_s < 0.5
        assert frames == math.ceil(row.segment.duration_s * 2 - 1e-6)  # sampling.media.frame_fps = 2
    annotate_corpus(inputs=[clip], out=str(tmp_path / "second"), overrides={"agents": agents})
    assert len(gemini.requests) == len(rows)  # same clips, same keys: all from the cache
    again = list(read_rows(str(tmp_path / "second")))
    assert len(again) == len(rows) and all(r.annotations[0].usage.cached for r in again)
