"""Faithfulness of cited evidence: masking on records, sufficiency/necessity, the judge axis.

Scripted annotators whose true dependence is known must separate: one decides from the face
cues it cites (high on both measures), one cites voice cues but decides from the face (low).
The real cue agents run on test features; the LLM agent runs through the real OpenAI SDK
against scripted replies (the budget cap and exact prompts need a scripted provider).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import soundfile as sf

from emoforge.agents.base import SegmentClip
from emoforge.agents.cache import ResponseCache
from emoforge.agents.cues.face import FaceCueAnnotator
from emoforge.agents.cues.voice import VoiceCueAnnotator
from emoforge.agents.faithfulness import (
    FaithfulnessProbe,
    blank_features,
    blank_spans,
    drop_parts,
    masked_inputs,
    summarise,
)
from emoforge.agents.judge import Judge
from emoforge.agents.judge.faithful import add_faithfulness
from emoforge.agents.recognizers.voice import VoiceModelAnnotator
from emoforge.configs.agents import AgentConfig, TaxonomyConfig
from emoforge.configs.quality import JudgeConfig, JudgeWeights
from emoforge.storage.records import (
    Annotation,
    AUFrame,
    Cue,
    ErrorKind,
    Failure,
    Features,
    KeyFrame,
    RunContext,
    Segment,
    Status,
    Usage,
    Word,
)
from tests.agents.conftest import make_clip, make_features, make_segment
from tests.agents.test_llm_fakes import GOOD, Script, annotator, completion
from tests.agents.test_recognizers_voice import clip_of, hear_file

TAXONOMY = TaxonomyConfig()


@pytest.fixture()
def api_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EMOFORGE_TEST_KEY", "sk-test-SECRET-123")


class FaceReader:
    """Scripted juror: happy iff AU12 >= 0.3; confidence 0.8, or ``partial`` when AU6 is absent.

    ``cite`` chooses what it says it used: the face AU12 (true) or the voice's F0 (false)."""

    backend = "scripted"

    def __init__(self, ctx: RunContext, name: str, cite: str, partial: float = 0.8) -> None:
        self.name, self.ctx, self.cite, self.partial = name, ctx, cite, partial
        self.calls = 0

    def annotate(self, segment: Segment, features: Features, clip: SegmentClip | None = None) -> Annotation:
        self.calls += 1
        base = {
            "id": f"{segment.id}-{self.name}",
            "segment_id": segment.id,
            "agent": self.name,
            "backend": self.backend,
            "provenance": self.ctx.provenance("annotate", "scripted"),
        }
        face = features.face
        if face is None:
            return Annotation(
                **base,
                status=Status.failed,
                failure=Failure(stage="annotate", kind=ErrorKind.no_face, message="no face"),
            )
        happy = face.au_mean.get("AU12", 0.0) >= 0.3
        label = "happy" if happy else "neutral"
        conf = 0.8 if "AU6" in face.au_mean else self.partial
        cue = (
            Cue(modality="face", cue="AU12 lip corner pull", feature="AU12", value=face.au_mean.get("AU12"))
            if self.cite == "face"
            else Cue(modality="voice", cue="bright rising pitch", feature="f0_mean_hz", value=210.0)
        )
        return Annotation(
            **base,
            labels=[label],
            primary_label=label,
            confidence=conf,
            label_scores={label: conf, ("neutral" if happy else "happy"): 1 - conf},
            rationale=["Step 1: AU12 is strong.", f"Step 2: Label {label}."],
            evidence=[cue],
            usage=Usage(),
        )

    def estimate(self, segment: Segment, features: Features, clip: SegmentClip | None = None) -> Usage:
        return Usage()

    def close(self) -> None:
        return None


# ------------------------------------------------------------------ masking


def test_dropping_a_modality_removes_every_part_that_carries_it() -> None:
    seg = make_segment()
    feats = make_features(seg).model_copy(update={"keyframes": [KeyFrame(t_s=2.0, score=1.0, reason="peak")]})
    clip = make_clip(seg)
    assert clip.audio_wav is not None and clip.video_mp4 is not None
    no_voice, c1 = drop_parts(feats, clip, {"prosody", "audio"})
    assert no_voice.prosody is None and no_voice.face is not None and no_voice.transcript is not None
    assert c1 is not None and c1.audio_wav is None and c1.no_audio == "masked"
    # the video carries the sound when it has a track: withheld with the audio
    assert (c1.video_mp4 is None) == clip.video_has_audio
    no_face, c2 = drop_parts(feats, clip, {"face", "keyframes", "video"})
    assert no_face.face is None and no_face.keyframes == [] and no_face.evidence.face is None
    assert c2 is not None and c2.video_mp4 is None and c2.audio_wav == clip.audio_wav
    assert feats.face is not None and feats.keyframes  # the original is untouched


def test_blanking_named_features_and_time_ranges() -> None:
    seg = make_segment()
    feats = make_features(seg)
    only = blank_features(feats, {"AU12", "f0_cv"}, keep=True)
    assert only.face is not None and set(only.face.au_mean) == {"AU12"}
    assert all(set(f.values) == {"AU12"} for f in only.face.au_frames)
    assert only.prosody is not None and only.prosody.f0_mean_hz == 210.0 and only.prosody.f0_sd_hz == 45.0
    assert only.prosody.intensity_mean_db is None and only.prosody.voiced_fraction == 0.6
    without = blank_features(feats, {"AU12", "f0_cv"})
    assert without.face is not None and "AU12" not in without.face.au_mean and "AU6" in without.face.au_mean
    assert (
        without.prosody is not None and without.prosody.f0_sd_hz is None and without.prosody.intensity_mean_db == 68.0
    )
    assert feats.transcript is not None
    words = [Word(text=w, start_s=1.0 + i, end_s=1.5 + i) for i, w in enumerate(["so", "very", "happy"])]
    timed = feats.model_copy(
        update={
            "transcript": feats.transcript.model_copy(update={"words": words, "text": "so very happy"}),
            "face": feats.face.model_copy(update={"au_frames": [AUFrame(t_s=2.2, values={"AU12": 0.9})]})
            if feats.face
            else None,
        }
    )
    cut = blank_spans(timed, [(2.0, 2.5)])
    assert cut.transcript is not None and cut.transcript.text == "so happy"
    assert cut.face is not None and cut.face.au_frames == []


# ------------------------------------------------------------------ scripted jurors


def test_faithful_face_reader_scores_high_and_voice_citing_liar_scores_low(ctx: RunContext) -> None:
    seg = make_segment()
    feats = make_features(seg)
    probe = FaithfulnessProbe()
    honest, liar = FaceReader(ctx, "honest", "face"), FaceReader(ctx, "liar", "voice")
    good = probe.score(honest, seg, feats, honest.annotate(seg, feats))
    bad = probe.score(liar, seg, feats, liar.annotate(seg, feats))
    assert (good.sufficiency, good.necessity) == (1.0, 1.0)
    assert (good.label_only_cited, good.label_without_cited) == ("happy", "neutral")
    assert (bad.sufficiency, bad.necessity) == (0.0, 0.0)
    assert (bad.label_only_cited, bad.label_without_cited) == (None, "happy")  # no face: it could not say
    summary = summarise([good, bad])
    assert summary["honest"]["faithfulness"] == 1.0 and summary["liar"]["faithfulness"] == 0.0
    assert summary["all"] == {
        "n": 2,
        "n_skipped": 0,
        "n_failed": 0,
        "sufficiency": 0.5,
        "necessity": 0.5,
        "faithfulness": 0.5,
    }


def test_sufficiency_is_the_share_of_confidence_kept(ctx: RunContext) -> None:
    # Decides from AU12 (cited) but is surer with AU6 (not cited): shown AU12 alone it keeps
    # 0.4 of its 0.8, so sufficiency is 0.5; removing AU12 flips the label, necessity 1.
    seg = make_segment()
    feats = make_features(seg)
    juror = FaceReader(ctx, "partial", "face", partial=0.4)
    score = FaithfulnessProbe().score(juror, seg, feats, juror.annotate(seg, feats))
    assert score.sufficiency == pytest.approx(0.5) and score.necessity == 1.0
    assert score.faithfulness == pytest.approx(0.75)


def test_uncited_and_failed_annotations_make_no_calls(ctx: RunContext) -> None:
    seg = make_segment()
    feats = make_features(seg)
    juror = FaceReader(ctx, "honest", "face")
    silent = juror.annotate(seg, feats).model_copy(update={"evidence": []})
    failed = juror.annotate(seg, feats.model_copy(update={"face": None}))
    juror.calls = 0
    probe = FaithfulnessProbe()
    assert probe.score(juror, seg, feats, silent).faithfulness == 0.0
    row = probe.score(juror, seg, feats, failed)
    assert row.status == Status.skipped and row.sufficiency is None
    assert juror.calls == 0


# ------------------------------------------------------------------ real cue agents


def test_face_cue_agent_is_faithful_to_its_cited_action_units(ctx: RunContext) -> None:
    seg = make_segment()
    feats = make_features(seg)  # AU6 0.45 + AU12 0.6: happy
    agent = FaceCueAnnotator(AgentConfig(name="face", backend="face_cues"), ctx, TAXONOMY)
    ann = agent.annotate(seg, feats)
    assert ann.primary_label == "happy" and {c.feature for c in ann.evidence} == {"AU6", "AU12"}
    score = FaithfulnessProbe().score(agent, seg, feats, ann)
    # only AU6+AU12: the pattern match is perfect, so it keeps all its confidence
    assert score.label_only_cited == "happy" and score.sufficiency == 1.0
    # without them the strongest AU is 0.1: the neutral baseline wins
    assert score.label_without_cited == "neutral" and score.necessity == 1.0
    assert score.usage.calls == 0 and score.usage.cost_usd == 0.0


def test_voice_cue_agent_on_test_prosody(ctx: RunContext) -> None:
    seg = make_segment()
    feats = make_features(seg)
    agent = VoiceCueAnnotator(AgentConfig(name="voice", backend="voice_cues"), ctx, TAXONOMY)
    ann = agent.annotate(seg, feats)
    assert ann.status == Status.ok and ann.primary_label is not None
    only, without = masked_inputs(ann, feats, None)
    assert only[0].face is None and only[0].transcript is None and only[0].prosody is not None
    score = FaithfulnessProbe().score(agent, seg, feats, ann)
    # with every cited prosody value blanked it has nothing left to read: necessity 1
    assert without[0].prosody is not None and without[0].prosody.f0_mean_hz is None
    assert score.label_without_cited is None and score.necessity == 1.0
    # Its surprise bonus reads the F0 slope (30 Hz/s here), which it never cites: shown only
    # what it cites it still says surprised but keeps 0.68 of its confidence. The probe finds
    # exactly that: citing the slope too makes the cited evidence sufficient.
    assert ann.primary_label == "surprised" and "f0_slope_hz_s" not in {c.feature for c in ann.evidence}
    assert score.label_only_cited == "surprised" and score.sufficiency == pytest.approx(0.6758, abs=1e-4)
    honest = ann.model_copy(
        update={"evidence": [*ann.evidence, Cue(modality="voice", cue="F0 rising 30 Hz/s", feature="f0_slope_hz_s")]}
    )
    assert FaithfulnessProbe().score(agent, seg, feats, honest).sufficiency == 1.0


# ------------------------------------------------------------------ the judge axis


def _judge(ctx: RunContext, d: float) -> Judge:
    weights = JudgeWeights(a=0.4, b=0.3, c=0.3 - d, d=d)
    return Judge(JudgeConfig(weights={"default": weights}), ctx)


def test_judge_faithfulness_axis_lowers_the_liar_and_is_off_by_default(ctx: RunContext) -> None:
    seg = make_segment()
    feats = make_features(seg)
    honest, liar = FaceReader(ctx, "honest", "face"), FaceReader(ctx, "liar", "voice")
    anns = [honest.annotate(seg, feats), liar.annotate(seg, feats)]
    honest.calls = liar.calls = 0
    off = _judge(ctx, 0.0)
    off.use_annotators([honest, liar])
    plain = off.score(seg, feats, anns)
    assert honest.calls == liar.calls == 0  # d = 0: nobody is re-asked
    assert all(len(v.weights) == 3 for v in plain)
    on = _judge(ctx, 0.2)
    on.use_annotators([honest, liar])
    scored = on.score(seg, feats, anns)
    assert honest.calls == liar.calls == 2
    for before, after, faith in zip(plain, scored, (1.0, 0.0), strict=True):
        assert after.weights == [0.4, 0.3, pytest.approx(0.1), 0.2]
        partial = 0.4 * before.s_rec + 0.3 * before.s_reason + 0.1 * before.s_cot
        assert after.s_final == pytest.approx(partial + 0.2 * faith)
        assert any(n.startswith(f"S_faith: {faith:.2f}") for n in after.notes)
    # without an annotator to re-ask the axis is not counted as 0: the rest is renormalised
    alone = _judge(ctx, 0.2).score(seg, feats, anns[:1])[0]
    assert alone.s_final == pytest.approx((0.4 * plain[0].s_rec + 0.3 * plain[0].s_reason + 0.1 * plain[0].s_cot) / 0.8)
    assert "S_faith: not measured (no annotator to re-ask)" in alone.notes


def test_judge_weights_with_faithfulness_must_sum_to_one() -> None:
    with pytest.raises(ValueError, match=r"a\+b\+c\+d must equal 1"):
        JudgeWeights(a=0.4, b=0.3, c=0.3, d=0.2)
    assert JudgeWeights().d == 0.0


# ------------------------------------------------------------------ an LLM agent


def _data_block(request: dict[str, Any]) -> dict[str, Any]:
    user = request["messages"][-1]["content"]
    text = user if isinstance(user, str) else " ".join(p.get("text", "") for p in user if p.get("type") == "text")
    start = text.index("<data>") + len("<data>")
    return json.loads(text[start : text.index("</data>", start)].replace("\\u003c", "<").replace("\\u003e", ">"))


@pytest.mark.usefixtures("api_key")
def test_llm_agent_masked_prompts_cache_and_budget(ctx: RunContext, tmp_path: Path) -> None:
    seg = make_segment()
    feats = make_features(seg)
    neutral = {**GOOD, "primary_label": "neutral", "labels": ["neutral"], "confidence": 0.6}
    script = Script([(200, completion(json.dumps(GOOD)))])
    agent = annotator(script, ctx, tmp_path=tmp_path, modalities=["face", "voice", "text"])
    ann = agent.annotate(seg, feats)
    assert ann.primary_label == "happy" and [c.feature for c in ann.evidence] == ["AU12"]

    # off by default for paid agents: nothing sent, nothing estimated
    skipped = FaithfulnessProbe().score(agent, seg, feats, ann)
    assert skipped.status == Status.skipped and len(script.requests) == 1
    assert FaithfulnessProbe().estimate(agent, seg, feats, ann).calls == 0

    probe = FaithfulnessProbe(include_paid=True, ledger=agent.ledger)
    dry = probe.estimate(agent, seg, feats, ann)
    assert dry.calls == 2 and dry.cost_usd > 0
    script.replies += [(200, completion(json.dumps(GOOD))), (200, completion(json.dumps(neutral)))]
    score = probe.score(agent, seg, feats, ann)
    only, without = (_data_block(r) for r in script.requests[1:])
    assert set(only) == {"face", "voice", "transcript"}
    assert only["voice"] == "no voiced speech" and only["transcript"] == "no transcript"
    assert set(only["face"]["au_mean"]) == {"AU12"}
    assert "AU12" not in without["face"]["au_mean"] and "AU6" in without["face"]["au_mean"]
    assert feats.transcript is not None and without["transcript"]["text"] == feats.transcript.text
    assert (score.sufficiency, score.necessity) == (1.0, 1.0)
    assert score.usage.calls == 2 and agent.ledger.spent_usd == pytest.approx(ann.usage.cost_usd + score.usage.cost_usd)
    assert agent.ledger.total().calls >= 2  # recorded in the run's ledger
    # ... and on the judge's verdict, which is where the corpus ledger reads the judge's spend.
    weights = JudgeWeights(a=0.3, b=0.2, c=0.2, d=0.3)
    verdict = add_faithfulness(Judge(JudgeConfig(), ctx).score(seg, feats, [ann])[0], weights, score)
    assert verdict.usage == score.usage and len(verdict.weights) == 4

    # the masked prompts are cached under their own keys: a rerun sends nothing
    again = annotator(script, ctx, tmp_path=tmp_path, modalities=["face", "voice", "text"])
    assert FaithfulnessProbe(include_paid=True).score(again, seg, feats, ann).sufficiency == 1.0
    assert len(script.requests) == 3 and len(list(ResponseCache(tmp_path).root.rglob("*.json"))) >= 3


@pytest.mark.usefixtures("api_key")
def test_llm_agent_re_asks_stay_within_the_budget(ctx: RunContext) -> None:
    seg = make_segment()
    feats = make_features(seg)
    script = Script([(200, completion(json.dumps(GOOD)))] * 3)
    agent = annotator(script, ctx, budget=0.008)  # room for about one call (~0.005)
    ann = agent.annotate(seg, feats)
    score = FaithfulnessProbe(include_paid=True).score(agent, seg, feats, ann)
    assert score.status == Status.failed and score.error_kind == ErrorKind.budget_exceeded
    # the first call settled below its estimate, so the "only cited" re-ask fitted; the
    # "removed" one did not and was never sent
    assert score.sufficiency is None and score.label_only_cited == "happy" and len(script.requests) == 2
    assert agent.ledger.spent_usd <= 0.008


def test_voice_recognizer_on_ravdess_needs_the_audio_it_cites(ctx: RunContext, fixtures_dir: Path) -> None:
    agent = VoiceModelAnnotator(
        AgentConfig(name="voice-model", backend="voice_model", modalities=["audio"]), ctx, TaxonomyConfig()
    )
    path = fixtures_dir / "ravdess" / "03-01-05-02-01-01-01.flac"  # actor 1, angry, strong
    ann = hear_file(agent, path)
    assert ann.status == Status.ok and {c.modality for c in ann.evidence} == {"voice"}
    audio, _ = sf.read(path, dtype="float32")
    seg = make_segment(start_s=10.0, end_s=10.0 + len(audio) / 16000)
    clip = clip_of(audio, seg)
    feats = Features(segment_id=seg.id)
    (_, only_clip), (_, without_clip) = masked_inputs(ann, feats, clip)
    # its own keys (level_dbfs, voiced_share) cannot be blanked: the voice goes or stays whole
    assert only_clip is not None and only_clip.audio_wav == clip.audio_wav
    assert without_clip is not None and without_clip.audio_wav is None and without_clip.no_audio == "masked"
    score = FaithfulnessProbe().score(agent, seg, feats, ann, clip)
    assert score.label_only_cited == ann.primary_label and score.sufficiency == 1.0
    assert score.label_without_cited is None and score.necessity == 1.0


@pytest.mark.usefixtures("api_key")
def test_dry_run_bound_counts_two_calls_only_for_paid_agents(ctx: RunContext) -> None:
    seg = make_segment()
    feats = Features(segment_id=seg.id)  # a dry run has no features yet
    llm = annotator(Script([]), ctx)
    once = llm.estimate(seg, feats)
    assert FaithfulnessProbe().upper_bound(llm, seg, feats).calls == 0  # off by default
    bound = FaithfulnessProbe(include_paid=True).upper_bound(llm, seg, feats)
    assert bound.calls == 2 and bound.cost_usd == pytest.approx(2 * once.cost_usd)
    face = FaceCueAnnotator(AgentConfig(name="face", backend="face_cues"), ctx, TAXONOMY)
    assert FaithfulnessProbe(include_paid=True).upper_bound(face, seg, feats).calls == 0


def test_the_flow_scores_faithfulness_when_its_weight_is_on(media_dir: Path, tmp_path: Path) -> None:
    """Weight d > 0: the judge stage re-asks the jury's own annotators (the media kept for
    their clips) and S_faith enters S_final; with d = 0 (the default) nobody is re-asked."""
    from emoforge.flows.annotate import annotate_corpus
    from emoforge.storage.shards import read_rows

    jfk = str((media_dir / "jfk.flac").resolve())
    weights = {"judge": {"weights": {"default": {"a": 0.3, "b": 0.2, "c": 0.2, "d": 0.3}}}}
    annotate_corpus(inputs=[jfk], out=str(tmp_path / "faith"), overrides=weights)
    # jfk.flac has no video: the face agent fails and is not judged; voice and text are.
    verdicts = [v for r in read_rows(str(tmp_path / "faith")) for v in r.verdicts if v.status.value == "ok"]
    assert len(verdicts) >= 2 and all(len(v.weights) == 4 for v in verdicts)
    faith = [n for v in verdicts for n in v.notes if n.startswith("S_faith:")]
    assert len(faith) == len(verdicts)  # every judged annotation was re-asked
    # The HTML report shows each annotator's mean sufficiency and necessity, read back
    # from the verdicts' notes.
    from emoforge.agents.judge.faithful import read_faithfulness
    from emoforge.configs.release import ReleaseConfig
    from emoforge.release.report import CorpusReporter

    measured = [read_faithfulness(v) for v in verdicts]
    assert all(m is not None and 0 <= m[0] <= 1 and 0 <= m[1] <= 1 for m in measured)
    html = CorpusReporter(ReleaseConfig()).render(str(tmp_path / "faith"))
    assert "Is the cited evidence really why?" in html
    assert "voice (sufficiency / necessity, n=" in html and "Not measured" not in html


def test_dry_run_prices_the_judges_reasks_only_when_paid_reasks_are_on(media_dir: Path) -> None:
    from emoforge.configs import load_config
    from emoforge.flows.estimate import estimate_cost

    jfk = [str((media_dir / "jfk.flac").resolve())]
    paid = {
        "agents": {
            "jury": [
                {
                    "name": "llm",
                    "backend": "openai_compatible",
                    "model": "m",
                    "base_url": "http://127.0.0.1:9/v1",
                    "price": {"input_per_mtok": 1.0, "output_per_mtok": 2.0},
                }
            ]
        }
    }
    faith = {"judge": {"weights": {"default": {"a": 0.3, "b": 0.2, "c": 0.2, "d": 0.3}}}}
    plain = estimate_cost(jfk, load_config(None, paid))
    off = estimate_cost(jfk, load_config(None, paid | faith))  # faithfulness_paid is off by default
    on = estimate_cost(jfk, load_config(None, paid | {"judge": {**faith["judge"], "faithfulness_paid": True}}))
    assert plain.calls == off.calls == plain.segments > 0 and off.faithfulness_calls == 0
    assert on.faithfulness_calls == 2 * on.segments  # two re-asks per segment for the one paid agent
    assert on.calls == 3 * on.segments and on.cost_usd == pytest.approx(3 * plain.cost_usd)
