"""Emotion knowledge, in one place: the default taxonomy, label synonyms, circumplex
coordinates and the EMFACS action-unit prototypes of the basic emotions.

Cue agents (``agents/cues``), the rules judge (``agents/judge/rules.py``), the label
normaliser (``agents/labels.py``), the consensus (``emoforge/quality/consensus.py``) and the config
defaults (``configs/agents.py``, ``configs/sampling.py``) all read these tables; none keeps
its own copy. The module lives in ``configs/`` because that is the bottom layer: the
taxonomy default is config data, and every other layer may import ``configs`` (see
``tests/project/test_imports.py``), whereas ``configs`` importing ``agents`` would point up.
It is plain data and imports nothing from the package.
"""

from __future__ import annotations

# The default taxonomy: neutral + Ekman's six basic emotions, in the order the trained
# recognizers' weights store their classes (agents/recognizers: ``classes == BASIC``).
DEFAULT_LABELS: tuple[str, ...] = ("neutral", "happy", "sad", "angry", "fearful", "disgusted", "surprised")

# Synonyms of the default taxonomy (neutral + Ekman six). Keys are lower-case stems.
SYNONYMS: dict[str, str] = {
    **dict.fromkeys(
        [
            "neutral",
            "neutrality",
            "calm",
            "none",
            "no emotion",
            "emotionless",
            "flat",
            "indifferent",
            "composed",
            "relaxed",
            "bored",
            "neu",
            "n",
        ],
        "neutral",
    ),
    **dict.fromkeys(
        [
            "happy",
            "happiness",
            "joy",
            "joyful",
            "glad",
            "pleased",
            "delighted",
            "cheerful",
            "amused",
            "amusement",
            "excited",
            "content",
            "elated",
            "hap",
            "h",
        ],
        "happy",
    ),
    **dict.fromkeys(
        [
            "sad",
            "sadness",
            "unhappy",
            "sorrow",
            "sorrowful",
            "grief",
            "depressed",
            "melancholy",
            "disappointed",
            "upset",
            "crying",
            "sad/sadness",
            "s",
        ],
        "sad",
    ),
    **dict.fromkeys(
        [
            "angry",
            "anger",
            "mad",
            "furious",
            "annoyed",
            "irritated",
            "rage",
            "frustrated",
            "frustration",
            "hostile",
            "ang",
            "a",
        ],
        "angry",
    ),
    **dict.fromkeys(
        [
            "fear",
            "fearful",
            "afraid",
            "scared",
            "frightened",
            "anxious",
            "anxiety",
            "worried",
            "nervous",
            "terrified",
            "panic",
            "fea",
            "f",
        ],
        "fearful",
    ),
    **dict.fromkeys(
        ["disgust", "disgusted", "revulsion", "repulsed", "grossed out", "contempt", "dis", "d"], "disgusted"
    ),
    **dict.fromkeys(["surprise", "surprised", "astonished", "amazed", "shocked", "startled", "sur", "su"], "surprised"),
}

# Circumplex (valence, arousal) of each basic emotion, both in [-1, 1], after Russell (1980,
# "A circumplex model of affect", J. Pers. Soc. Psychol. 39(6)), approximate. Cue agents
# give the expectation of these under their label distribution; the consensus falls back to
# the valence when an annotator gives none (``LABEL_VALENCE``).
#
# Surprised = +0.2: Russell's scaling puts "astonished" in the pleasant, high-arousal
# quadrant close to the arousal axis, and surprise can be pleasant or unpleasant by
# context, so its valence is small and positive. (The consensus once used 0.0 and the cue
# agents 0.2; 0.2 keeps every cue reading unchanged and stays below the consensus's
# default ``review.conflict_min_valence`` of 0.25, so a surprised vote alone still never
# raises a modality conflict.)
CIRCUMPLEX: dict[str, tuple[float, float]] = {
    "neutral": (0.0, 0.0),
    "happy": (0.8, 0.5),
    "sad": (-0.7, -0.4),
    "angry": (-0.6, 0.7),
    "fearful": (-0.6, 0.6),
    "disgusted": (-0.6, 0.3),
    "surprised": (0.2, 0.8),
}
LABEL_VALENCE: dict[str, float] = {label: valence for label, (valence, _) in CIRCUMPLEX.items()}

# EMFACS prototype action units of the basic emotions (Friesen & Ekman's EMFACS, 1983, in
# its commonly tabulated form): happy AU6+AU12; sad AU1+AU4+AU15; surprised AU1+AU2+AU5+AU26;
# fearful AU1+AU2+AU4+AU5+AU7+AU20+AU26; angry AU4+AU5+AU7+AU23; disgusted AU9+AU15+AU16.
# Surprise's AUs are a subset of fear's: a reader must weigh the pattern, not only presence.
EMFACS_PROTOTYPES: dict[str, tuple[str, ...]] = {
    "happy": ("AU6", "AU12"),
    "sad": ("AU1", "AU4", "AU15"),
    "surprised": ("AU1", "AU2", "AU5", "AU26"),
    "fearful": ("AU1", "AU2", "AU4", "AU5", "AU7", "AU20", "AU26"),
    "angry": ("AU4", "AU5", "AU7", "AU23"),
    "disgusted": ("AU9", "AU15", "AU16"),
}
# FACS names of the action units above, for rationales a person can read.
AU_NAMES: dict[str, str] = {
    "AU1": "inner brow raiser",
    "AU2": "outer brow raiser",
    "AU4": "brow lowerer",
    "AU5": "upper lid raiser",
    "AU6": "cheek raiser",
    "AU7": "lid tightener",
    "AU9": "nose wrinkler",
    "AU12": "lip corner puller",
    "AU15": "lip corner depressor",
    "AU16": "lower lip depressor",
    "AU20": "lip stretcher",
    "AU23": "lip tightener",
    "AU26": "jaw drop",
}
