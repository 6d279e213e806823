"""Text recognizer: the shipped USE-multilingual + MELD logistic regression, run for real.

The sentences are not MELD lines; the Chinese ones are the sanity set of
benchmarks/train_text_model.py (never trained on). Several different expected labels per
language, so a model that always answered one class fails.
"""

from __future__ import annotations

import math
from importlib.metadata import version

import numpy as np
import pytest

from emoforge.agents.cues.base import BASIC
from emoforge.agents.recognizers.base import weights_path
from emoforge.agents.recognizers.text import (
    ENCODER_PACKAGE,
    WEIGHTS,
    TextModelAnnotator,
    load_text_model,
    normalise_text,
    word_units,
)
from emoforge.configs.agents import AgentConfig, TaxonomyConfig
from emoforge.storage.records import ErrorKind, Features, RunContext, Status, Transcript, Word
from tests.agents.conftest import make_features, make_segment

ENGLISH = [
    ("I love you guys, this is wonderful!", "happy"),
    ("Shut up! You're such a jerk!", "angry"),
    ("I'm so sad, I miss him so much.", "sad"),
    ("What?! Oh my God! Really?!", "surprised"),
    ("Okay, the meeting is at three o'clock.", "neutral"),
]
CHINESE = [
    ("我太高兴了！", "happy"),
    ("滚出去，我恨你！", "angry"),
    ("她走了，我很伤心", "sad"),
    ("什么？真的吗？", "surprised"),
    ("会议三点开始。", "neutral"),
]


@pytest.fixture(scope="module")
def agent(ctx: RunContext) -> TextModelAnnotator:
    return TextModelAnnotator(AgentConfig(name="text_model", backend="text_model"), ctx, TaxonomyConfig())


def annotate(agent: TextModelAnnotator, text: str, language: str | None, index: int = 0) -> dict[str, float]:
    seg = make_segment(index)
    ann = agent.annotate(seg, Features(segment_id=seg.id, transcript=Transcript(text=text, language=language)))
    assert ann.status == Status.ok, ann.failure
    return ann.label_scores


@pytest.mark.parametrize(("text", "label", "language"), [(*e, "en") for e in ENGLISH] + [(*c, "zh") for c in CHINESE])
def test_clear_sentences_get_their_emotion(agent: TextModelAnnotator, text: str, label: str, language: str) -> None:
    scores = annotate(agent, text, language)
    assert max(scores, key=lambda k: scores[k]) == label
    assert scores[label] > 0.4  # a clear winner, not a coin flip among seven


def test_probabilities_form_a_distribution_and_confidence_follows(agent: TextModelAnnotator) -> None:
    seg = make_segment()
    words = [Word(text=w, start_s=1.2 + 0.3 * i, end_s=1.4 + 0.3 * i) for i, w in enumerate(["I", "hate", "you"])]
    feats = Features(segment_id=seg.id, transcript=Transcript(text="I hate you!", language="en", words=words))
    ann = agent.annotate(seg, feats)
    assert ann.status == Status.ok and set(ann.label_scores) == set(BASIC)
    assert all(0.0 <= p <= 1.0 for p in ann.label_scores.values())
    assert math.isclose(sum(ann.label_scores.values()), 1.0, abs_tol=1e-3)
    primary = ann.primary_label
    assert primary is not None and ann.confidence is not None
    # the calibrated probability itself (reliability is reported, not folded in)
    assert ann.confidence == pytest.approx(ann.label_scores[primary], abs=2e-3)
    assert ann.modalities_seen == ["text"] and ann.backend == "text_model"
    assert ann.provenance.model == TextModelAnnotator.model_id
    assert ann.evidence and all(c.modality == "text" for c in ann.evidence)
    assert {(c.start_s, c.end_s) for c in ann.evidence} == {(1.2, 2.0)}  # first to last word
    assert any('"I hate you!"' in step for step in ann.rationale)


def test_curly_apostrophes_read_like_straight_ones(agent: TextModelAnnotator) -> None:
    straight = annotate(agent, "I'm so sad, I miss him so much. You're all I had.", "en")
    curly = annotate(agent, "I’m so sad, I miss him so much. You’re all I had.", "en")
    mojibake = annotate(agent, "Iâ€™m so sad, I miss him so much. You\x92re all I had.", "en")
    assert straight == curly == mojibake
    assert normalise_text("“Well”…  I—you  ") == '"Well"... I - you'


def test_reliability_counts_chinese_characters_as_half_words() -> None:
    assert word_units("I can't believe it") == 4
    assert word_units("我太高兴了！") == 2.5
    assert word_units("OK 好的") == 2


def test_missing_unreliable_or_uncovered_transcripts_are_typed_failures(agent: TextModelAnnotator) -> None:
    seg = make_segment()
    cases = [
        (make_features(seg, text=None), ErrorKind.no_speech),
        (make_features(seg, text="   "), ErrorKind.no_speech),
        (make_features(seg, reliable=False), ErrorKind.invalid_input),
        (make_features(seg, text="Nimefurahi sana leo!", language="sw"), ErrorKind.invalid_input),
    ]
    for feats, kind in cases:
        ann = agent.annotate(seg, feats)
        assert ann.status == Status.failed and ann.failure is not None and ann.failure.kind == kind
        assert ann.primary_label is None and ann.labels == []
    unreliable = agent.annotate(seg, make_features(seg, reliable=False))
    assert unreliable.failure is not None and "compression_ratio" in unreliable.failure.message


def test_shipped_weights_match_the_installed_encoder() -> None:
    model = load_text_model(str(weights_path(None, WEIGHTS)))
    assert model.classes == BASIC and model.coef.shape == (len(BASIC), 512)
    assert model.metadata["encoder_version"] == version(ENCODER_PACKAGE)
    assert 0.0 < model.temperature < 5.0 and np.all(model.scale > 0)
    assert model.metadata["cv"]["accuracy"] > 0.5  # MELD dev always-neutral is 0.42


def test_angry_mer_clip_reads_angry_in_chinese(agent: TextModelAnnotator, mer_labels: list[dict[str, str]]) -> None:
    """The one MER clip whose words carry its emotion, scored from the Chinese transcript."""
    row = next(r for r in mer_labels if r["emotion"] == "angry")
    scores = annotate(agent, row["transcript_zh"], "zh")
    assert max(scores, key=lambda k: scores[k]) == "angry"
