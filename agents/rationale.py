"""Normalise free-form reasoning into 'Step 1: ..' .. 'Step N: ..', the last stating the label.

Deterministic (no model): existing 'Step k:' markers, numbered or bulleted lines, or
else sentences become steps; whitespace is collapsed, each step is cut at a word
boundary, and if the final step does not name the label a closing step is added.
"""

from __future__ import annotations

import re

_STEP_MARK = re.compile(r"(?i)\bstep\s*\d+\s*[:.)-]\s*")
_LIST_MARK = re.compile(r"^\s*(?:\d+\s*[.)]|[-*\u2022])\s+")
_SENTENCE = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9\"'(])")
_SPACE = re.compile(r"\s+")


def _pieces(raw: str) -> list[str]:
    if _STEP_MARK.search(raw):
        return [p for p in _STEP_MARK.split(raw) if p.strip()]
    lines = [ln for ln in raw.splitlines() if ln.strip()]
    if len(lines) > 1 and all(_LIST_MARK.match(ln) for ln in lines):
        return [_LIST_MARK.sub("", ln) for ln in lines]
    if len(lines) > 1:
        return lines
    return _SENTENCE.split(raw.strip())


def _shorten(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    cut = text[: limit - 1].rsplit(" ", 1)[0]
    return cut.rstrip(",;:") + "…"


def _names_label(step: str, label: str) -> bool:
    return re.search(rf"(?i)\b{re.escape(label)}\b", step) is not None


def normalise_steps(raw: str | list[str], label: str | None, max_steps: int = 6, max_chars: int = 240) -> list[str]:
    """Steps 'Step k: ...' (k = 1..N, N <= max_steps); the last one states ``label``.

    Args:
        raw: free text or a list of step strings (each may carry its own 'Step k:' prefix).
        label: the final (normalised) label; None leaves the steps as they are.
        max_steps: steps kept; the label step counts towards it.
        max_chars: longest step text (after the prefix).
    """
    pieces: list[str] = []
    if isinstance(raw, str):
        pieces = _pieces(raw)
    else:
        # a list is already one step per item; only embedded 'Step k:' markers split it further
        for text in raw:
            pieces.extend(p for p in _STEP_MARK.split(text) if p.strip())
    cleaned = [_shorten(_SPACE.sub(" ", p).strip(" -*\u2022"), max_chars) for p in pieces]
    steps = [c for c in cleaned if c]
    if label is not None and not (steps and _names_label(steps[-1], label)):
        steps = steps[: max_steps - 1]
        steps.append(f"Therefore the label is {label}.")
    else:
        steps = steps[:max_steps]
        if label is not None and not _names_label(steps[-1], label):
            steps[-1] = f"Therefore the label is {label}."
    return [f"Step {i}: {s}" for i, s in enumerate(steps, start=1)]
