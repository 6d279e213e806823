"""One home for emotion knowledge (configs/emotions.py), and its readers agree with it.

The EMFACS table and the circumplex valence used to have two copies each, and the valence
copies disagreed (surprised: +0.2 in the cue agents, 0.0 in the consensus).
"""

from __future__ import annotations

import ast

import pytest

from emoforge.agents.cues.base import BASIC, CIRCUMPLEX
from emoforge.agents.judge.rules import label_words
from emoforge.configs.agents import TaxonomyConfig
from emoforge.configs.emotions import DEFAULT_LABELS, EMFACS_PROTOTYPES, SYNONYMS
from emoforge.configs.sampling import InstructionConfig
from emoforge.quality.consensus import valence_of
from tests.project.test_imports import REPO, package_modules
from tests.quality.records import annotation

LABELS = set(DEFAULT_LABELS)


@pytest.mark.parametrize("label", DEFAULT_LABELS)
def test_consensus_falls_back_to_the_valence_the_cue_agents_use(label: str) -> None:
    vote = annotation("agent0", [label]).model_copy(update={"valence": None})
    assert valence_of(vote) == CIRCUMPLEX[label][0]


def test_every_default_taxonomy_is_the_one_list() -> None:
    assert BASIC == DEFAULT_LABELS
    assert TaxonomyConfig().labels == list(DEFAULT_LABELS)
    assert InstructionConfig().taxonomy == list(DEFAULT_LABELS)
    assert set(CIRCUMPLEX) == LABELS and set(EMFACS_PROTOTYPES) == LABELS - {"neutral"}
    # Every label is its own synonym, and the judge finds a label by its synonyms.
    assert all(SYNONYMS[label] == label for label in DEFAULT_LABELS if label != "fearful")
    assert "joyful" in label_words("happy")


def _knowledge_value(node: ast.expr) -> bool:
    """A number, or a tuple of numbers or AU names: what configs/emotions.py holds. Sentences
    and word lists keyed by emotion (the text agent's prototypes and lexicon) are an agent's
    own data, not a copy."""
    if isinstance(node, ast.UnaryOp):
        node = node.operand
    if isinstance(node, ast.Constant):
        return isinstance(node.value, int | float) or (isinstance(node.value, str) and node.value.startswith("AU"))
    return isinstance(node, ast.Tuple) and all(_knowledge_value(e) for e in node.elts)


def _emotion_table(node: ast.AST) -> bool:
    """A literal that restates emotion knowledge: a dict keyed by most of the default labels
    whose values are numbers or AU sets, or a list/tuple of exactly the default labels."""
    if isinstance(node, ast.Dict):
        keys = {k.value for k in node.keys if isinstance(k, ast.Constant)}
        return len(keys & LABELS) >= 5 and all(_knowledge_value(v) for v in node.values)
    if isinstance(node, ast.List | ast.Tuple):
        values = [e.value for e in node.elts if isinstance(e, ast.Constant) and isinstance(e.value, str)]
        return len(values) == len(node.elts) and sorted(values) == sorted(DEFAULT_LABELS)
    return False


# The trained face model's output classes, in the order its weights store them: a fact
# about that model, not a taxonomy (it is mapped onto the configured one).
MODEL_CLASS_ORDERS = {"agents/recognizers/face.py"}


def test_no_module_keeps_its_own_copy_of_the_emotion_tables() -> None:
    copies = []
    for path in package_modules().values():
        rel = path.relative_to(REPO).as_posix()
        if rel == "configs/emotions.py" or rel in MODEL_CLASS_ORDERS:
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        copies += [f"{rel}:{n.lineno}" for n in ast.walk(tree) if _emotion_table(n)]
    assert copies == []


def test_the_copy_finder_finds_the_old_copies() -> None:
    old_consensus = "LABEL_VALENCE = {'happy': 0.8, 'surprised': 0.0, 'neutral': 0.0, 'sad': -0.7, 'angry': -0.6}"
    old_judge = "P = {'happy': (6, 12), 'sad': (1, 4, 15), 'surprised': (1, 2), 'fearful': (1,), 'angry': (4,)}"
    old_config = "labels = ['neutral', 'happy', 'sad', 'angry', 'fearful', 'disgusted', 'surprised']"
    old_face = "P = {'happy': ('AU6', 'AU12'), 'sad': ('AU1',), 'surprised': ('AU1',), 'fearful': (), 'angry': ()}"
    text_cue = "S = {'happy': ('glad',), 'sad': ('miss',), 'angry': ('mad',), 'fearful': ('help',), 'surprised': ()}"
    for source in (old_consensus, old_judge, old_face, old_config):
        assert any(_emotion_table(n) for n in ast.walk(ast.parse(source))), source
    assert not any(_emotion_table(n) for n in ast.walk(ast.parse(text_cue)))
