"""Segment clips: cutting WAV/MP4 from decoded media, which parts each agent gets, config
validation of the clip modalities, their cache key and their token estimates.

The MP4s are opened with PyAV and the WAVs with ``wave``: durations, frame counts, sample
counts and pixel values are checked against the segment and the source media.
"""

from __future__ import annotations

import io
import math
import wave
from pathlib import Path

import numpy as np
import pytest

from emoforge.agents.base import AudioPart, Prompt
from emoforge.agents.clips import ClipCutter, ClipNeeds, ClipParts, SegmentClip, clip_needs, clip_parts
from emoforge.agents.costs import CostLedger, cost_usd, estimate_tokens, media_tokens
from emoforge.agents.labels import LabelNormalizer
from emoforge.agents.llm import LLMAnnotator
from emoforge.agents.providers import check_agent, check_providers
from emoforge.configs import ConfigError, load_config
from emoforge.configs.agents import AgentConfig, AgentsConfig, ClipConfig, Price, TaxonomyConfig
from emoforge.configs.sampling import MediaConfig
from emoforge.preprocess.media import MediaDecoder, MediaProber
from emoforge.storage.records import ErrorKind, RunContext, Usage
from tests.agents.conftest import make_clip, make_features, make_media, make_segment
from tests.agents.test_labels_cache_costs import _key


def read_wav(data: bytes) -> tuple[int, int, int, np.ndarray]:
    """(channels, sample width, rate, samples as float) of a WAV."""
    with wave.open(io.BytesIO(data)) as w:
        frames = w.readframes(w.getnframes())
        return w.getnchannels(), w.getsampwidth(), w.getframerate(), np.frombuffer(frames, "<i2") / 32767.0


def probe_mp4(data: bytes) -> dict[str, float]:
    """Stream facts of an MP4 and what it decodes to."""
    import av

    out: dict[str, float] = {}
    with av.open(io.BytesIO(data)) as c:
        v = c.streams.video[0]
        out["video_s"] = float(v.duration * v.time_base)
        out["width"], out["height"] = v.codec_context.width, v.codec_context.height
        out["has_audio"] = float(bool(c.streams.audio))
        if c.streams.audio:
            a = c.streams.audio[0]
            out["audio_s"] = float(a.duration * a.time_base)
            out["audio_rate"] = a.codec_context.sample_rate
    with av.open(io.BytesIO(data)) as c:
        greys = [float(f.to_ndarray(format="gray").mean()) for f in c.decode(video=0)]
        out["frames"] = len(greys)
        out["greys"] = greys  # type: ignore[assignment]
    return out


def test_clip_from_real_fixture_matches_the_segment(media_dir: Path) -> None:
    config = MediaConfig()
    rec = MediaProber(config).probe(media_dir / "sample_00000694.mp4")
    media = MediaDecoder(config).decode(rec)
    seg = make_segment(start_s=2.3, end_s=7.15, rec=rec.id)
    clip = ClipCutter(ClipConfig(), config).cut(media, seg, ClipNeeds(audio=True, video=True))
    assert clip.no_audio is None and clip.no_video is None and clip.segment_id == seg.id
    channels, width, rate, samples = read_wav(clip.audio_wav or b"")
    assert (channels, width, rate) == (1, 2, 16000)
    assert abs(len(samples) - seg.duration_s * 16000) <= 1  # cut to the sample
    source = media.audio_between(seg.start_s, seg.end_s)
    assert np.max(np.abs(samples - np.clip(source, -1, 1))) < 1e-4  # 16-bit PCM of the decoded audio
    facts = probe_mp4(clip.video_mp4 or b"")
    step = 1 / config.frame_fps
    assert facts["frames"] == clip.video_frames == math.ceil(seg.duration_s * config.frame_fps)
    assert 0 <= facts["video_s"] - seg.duration_s < step  # at most one frame longer than the segment
    # AAC adds at most one 1024-sample frame of padding to the soundtrack
    assert facts["has_audio"] and abs(facts["audio_s"] - seg.duration_s) <= 1024 / 16000
    assert (facts["width"], facts["height"]) == (media.frames.width, media.frames.height)  # type: ignore[union-attr]
    # deterministic bytes: the same segment cut again is the same clip (the cache relies on it)
    again = ClipCutter(ClipConfig(), config).cut(media, seg, ClipNeeds(audio=True, video=True))
    assert (again.audio_sha256, again.video_sha256) == (clip.audio_sha256, clip.video_sha256)


def test_each_slot_shows_the_latest_stored_frame() -> None:
    media = make_media(duration_s=6.0)  # frames at 0, 0.5, ... with grey 20 * index
    seg = make_segment(start_s=1.2, end_s=3.4)
    clip = make_clip(seg, media)
    facts = probe_mp4(clip.video_mp4 or b"")
    # slots at 1.2, 1.7, 2.2, 2.7, 3.2 show the frames stored at 1.0, 1.5, 2.0, 2.5, 3.0
    assert facts["frames"] == 5
    expected = [20.0 * i for i in (2, 3, 4, 5, 6)]
    assert np.allclose(facts["greys"], expected, atol=3.0), facts["greys"]
    assert clip.video_has_audio and clip.audio_s == pytest.approx(2.2)


def test_missing_streams_are_reasons_not_errors() -> None:
    seg = make_segment(start_s=1.0, end_s=3.0)
    silent = make_clip(seg, make_media(audio=False))
    assert silent.audio_wav is None and silent.no_audio == "the recording has no decodable audio stream"
    assert silent.video_mp4 is not None and not silent.video_has_audio
    assert not probe_mp4(silent.video_mp4)["has_audio"]
    blind = make_clip(seg, make_media(video=False))
    assert blind.video_mp4 is None and blind.no_video == "the recording has no decodable video stream"
    assert blind.audio_wav is not None
    # the picture stopped at 2 s while the sound goes on: a segment at 4-5 s has no picture
    late = make_clip(make_segment(start_s=4.0, end_s=5.0), make_media(video_end_s=2.0))
    assert late.video_mp4 is None and late.no_video == "no video frames in the segment's span"
    beyond = make_clip(make_segment(start_s=7.0, end_s=8.0), make_media(duration_s=6.0))
    assert beyond.audio_wav is None and beyond.no_audio == "no audio samples in the segment's span"
    broken = make_media()
    broken.frames.jpegs[2] = b"not a jpeg"  # type: ignore[union-attr]
    failed = make_clip(seg, broken)  # the slot at 1.0 s shows stored frame 2
    assert failed.video_mp4 is None and failed.audio_wav is not None
    assert failed.no_video == "video clip encoding failed: ValueError: frame 2 failed to decode"


def test_only_asked_parts_are_cut() -> None:
    seg = make_segment()
    assert make_clip(seg, audio=True, video=False).video_mp4 is None
    only_video = make_clip(seg, audio=False, video=True)
    assert only_video.audio_wav is None and only_video.video_has_audio  # the MP4 keeps its soundtrack
    jury = AgentsConfig(
        jury=[
            AgentConfig(name="gpt", backend="openai", model="m", modalities=["text", "audio"]),
            AgentConfig(name="gem", backend="gemini", model="g", modalities=["video"], enabled=False),
            AgentConfig(name="voice", backend="voice_cues", modalities=["voice", "audio"]),
        ]
    )
    assert clip_needs(jury) == ClipNeeds(audio=True, video=False)  # disabled and cue agents ask nothing
    assert not clip_needs(AgentsConfig()).any  # the offline default cuts nothing


def test_which_parts_an_agent_gets() -> None:
    seg = make_segment()
    clip = make_clip(seg)
    both = clip_parts(["audio", "video"], "gemini", clip)
    # Gemini hears the MP4's soundtrack: the WAV would repeat it
    assert both.audio is None and both.video is not None and both.seen == ["audio", "video"] and not both.missing
    assert both.video.sha256 == clip.video_sha256 and both.video.frames == 6
    heard = clip_parts(["text", "audio"], "openai", clip)
    assert heard.audio is not None and heard.video is None and heard.seen == ["audio"]
    assert heard.audio.duration_s == pytest.approx(3.0)
    silent = clip_parts(["audio", "video"], "gemini", make_clip(seg, make_media(audio=False)))
    assert silent.seen == ["video"]
    assert [k for k, _ in silent.missing] == [ErrorKind.no_audio]
    none = clip_parts(["audio"], "openai", None)
    assert none.missing == ((ErrorKind.no_audio, "no audio: no clip was cut for the segment"),)
    assert clip_parts(["face", "text"], "openai", clip) == clip_parts(["face"], "gemini", None)  # nothing asked


def test_config_validation_of_clip_modalities() -> None:
    def agent(**kwargs: object) -> None:
        check_agent(AgentConfig.model_validate(kwargs))

    with pytest.raises(ValueError, match="modality 'video' is not supported by backend 'openai'"):
        agent(name="gpt", backend="openai", model="m", modalities=["text", "video"])
    with pytest.raises(ValueError, match="modality 'audio' is not supported by backend 'transformers'"):
        agent(name="local", backend="transformers", model="/m", modalities=["audio"])
    with pytest.raises(ValueError, match="'video' is not supported by backend 'openai_compatible'"):
        agent(name="vllm", backend="openai_compatible", model="m", base_url="http://x", modalities=["video"])
    agent(name="vllm", backend="openai_compatible", model="m", base_url="http://x", modalities=["audio"])
    agent(name="gem", backend="gemini", model="g", modalities=["audio", "video"], inline_media_max_mb=5)
    agent(name="voice", backend="voice_cues", modalities=["voice", "video"])  # cue agents ignore clips
    # loaded from YAML data, the error names the agent's key path
    bad = {"agents": {"jury": [{"name": "gpt", "backend": "openai", "model": "m", "modalities": ["video"]}]}}
    with pytest.raises(ConfigError, match=r"agents\.jury\.0: Value error, agent 'gpt': modality 'video'"):
        check_providers(load_config(overrides=bad))
    with pytest.raises(ConfigError, match="inline_media_max_mb"):
        load_config(
            overrides={"agents": {"jury": [{"name": "g", "backend": "gemini", "model": "g", "inline_media_max_mb": 0}]}}
        )


def test_example_jury_config_listens_and_watches() -> None:
    config = load_config(Path(__file__).parents[2] / "configs" / "examples" / "llm-jury.yaml")
    agents = {a.name: a for a in config.agents.jury}
    assert "audio" in agents["gpt-audio"].modalities and "video" in agents["gemini"].modalities
    assert clip_needs(config.agents) == ClipNeeds(audio=True, video=True)


def test_cache_key_follows_the_clip_bytes() -> None:
    seg = make_segment()
    first, same = make_clip(seg), make_clip(seg)
    louder = make_media()
    louder.audio = louder.audio * 1.5  # type: ignore[operator]
    changed = make_clip(seg, louder)
    parts = [clip_parts(["audio"], "openai", c).audio for c in (first, same, changed)]
    keys = [_key(prompt=Prompt(system="s", user="u", audio=p)) for p in parts]
    assert keys[0] == keys[1] and keys[0] != keys[2]
    assert _key(prompt=Prompt(system="s", user="u")) not in keys  # no audio is another request again
    # a prompt without clips keeps the key it had before clips existed: old caches still hit
    assert _key() == "7fc7fe4e588415e9cbde27b5f9095ae4fade3b32248119da4e31735f72146671"
    fake = AudioPart(wav=b"x", duration_s=1.0, sha256=first.audio_sha256 or "")
    assert _key(prompt=Prompt(system="s", user="u", audio=fake)) == keys[0]  # the key is the clip's hash


def test_estimates_count_clip_tokens(ctx: RunContext) -> None:
    taxonomy = TaxonomyConfig(embedding_model=None)
    price = Price(input_per_mtok=1.0, output_per_mtok=4.0, audio_input_per_mtok=10.0)
    seg = make_segment(start_s=1.0, end_s=4.5)  # 3.5 s
    feats = make_features(seg)

    def estimate(backend: str, modalities: list[str], clip: SegmentClip | None = None) -> tuple[Usage, int]:
        """The agent's estimate, and the tokens of its prompt's text alone."""
        config = AgentConfig(name="a", backend=backend, model="m", modalities=modalities, price=price)  # type: ignore[arg-type]
        agent = LLMAnnotator(config, None, ctx, taxonomy, LabelNormalizer(taxonomy), CostLedger())  # type: ignore[arg-type]
        parts = clip_parts(modalities, backend, clip) if clip is not None else ClipParts()  # a dry run assumes the clip
        prompt = agent._prompt(seg, feats, parts)
        text = estimate_tokens(prompt.system + prompt.user + str(prompt.schema))
        return agent.estimate(seg, feats, clip), text

    # dry run (no clip): Gemini video = 4 frames at 1 fps * 258 + 3.5 s of soundtrack * 32
    video, text = estimate("gemini", ["face", "text", "video"])
    assert video.input_tokens - text == 4 * 258 + 112
    assert media_tokens("gemini", 3.5, 3.5) == (4 * 258 + 112, 112)
    # OpenAI audio: 10 tokens a second, billed at the audio rate
    heard, text = estimate("openai", ["face", "text", "audio"])
    assert heard.input_tokens - text == 35 and heard.calls == 1
    expected = cost_usd(price, heard.input_tokens, heard.output_tokens, audio_input_tokens=35)
    assert heard.cost_usd == pytest.approx(expected)
    assert expected - cost_usd(price, heard.input_tokens, heard.output_tokens) == pytest.approx(35 * 9.0 / 1e6)
    # with a clip the parts actually attached count: the 3.5 s WAV
    with_clip, _ = estimate("openai", ["face", "text", "audio"], make_clip(seg))
    assert with_clip.input_tokens == heard.input_tokens
    silent, text = estimate("openai", ["face", "text", "audio"], make_clip(seg, make_media(audio=False)))
    assert silent.input_tokens == text  # the missing audio is neither sent nor counted
    assert cost_usd(price, 1000, 100, audio_input_tokens=400) == pytest.approx((600 * 1 + 400 * 10 + 100 * 4) / 1e6)
