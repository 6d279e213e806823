"""Shared shape of the trained recognizers: calibrated class probabilities -> Annotation."""

from __future__ import annotations

import functools
from importlib import resources
from pathlib import Path

import numpy as np

from emoforge.agents.cues.base import CueAnnotator, CueReading
from emoforge.agents.providers import providers
from emoforge.configs.agents import AgentsConfig


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


def npz_prior(model: str | None, shipped: str) -> dict[str, float] | None:
    """See ``_npz_prior``; a fresh dict each call, read from disk once per process (the
    aggregate stage asks for every recording)."""
    prior = _npz_prior(model, shipped)
    return dict(prior) if prior is not None else None


@functools.lru_cache(maxsize=32)
def _npz_prior(model: str | None, shipped: str) -> tuple[tuple[str, float], ...] | None:
    """The label distribution the weights were trained on (what the recognizer says on
    average), as their training script wrote it into the ``.npz`` (``output_prior``), or None:
    weights of the user's own without it, or not ``.npz``, are read against a uniform prior."""
    path = weights_path(model, shipped)
    if path.suffix != ".npz":
        return None
    with np.load(path, allow_pickle=False) as z:
        if "output_prior" not in z.files:
            return None
        return tuple((str(c), float(p)) for c, p in zip(z["classes"], z["output_prior"], strict=True))


def output_prior(backend: str, model: str | None) -> dict[str, float] | None:
    """The output prior of ``backend``'s weights (``model``, None = shipped), or None when the
    backend declares none (cue rules, LLMs, names no provider declares)."""
    spec = providers().get(backend)
    if spec is None or spec.output_prior is None:
        return None
    return spec.output_prior(model)


def vote_priors(agents: AgentsConfig) -> dict[str, dict[str, float]]:
    """Agent name -> output prior, for every enabled agent of the jury whose backend has one."""
    priors = {}
    for agent in agents.jury:
        if agent.enabled:
            prior = output_prior(agent.backend, agent.model)
            if prior is not None:
                priors[agent.name] = prior
    return priors
