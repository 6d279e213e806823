"""Preprocessing tools are declared once (``TOOL`` beside each tool, listed in ``preprocess/tools.py``),
and a new one runs through the real pipeline with nothing else changed.

Adding a per-segment tool touches 2 files outside tests: its own module (the class and its
``TOOL = ToolSpec(...)``) and one line in ``preprocess/tools.py``. The toy below stands in
for both: a class in this module, registered where ``tools.py`` would list it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from emoforge.configs import PipelineConfig
from emoforge.flows.annotate import annotate_corpus
from emoforge.preprocess import tools
from emoforge.preprocess.media import Media
from emoforge.preprocess.tool import ToolSettings, ToolSpec
from emoforge.storage.records import Features, Segment
from emoforge.storage.shards import read_rows


class NoopTool:
    """Fills nothing; remembers what it was shown, so the test sees it ran after the face tool."""

    model_id = "noop-v0"
    seen: list[tuple[str, bool]] = []

    def fill(self, media: Media, segment: Segment, features: Features) -> dict[str, Any] | None:
        NoopTool.seen.append((segment.id, features.face is not None))
        return {}


NOOP = ToolSpec(name="noop", phase="preprocess", section=None, fills=(), build=lambda settings: NoopTool())


def register(monkeypatch: pytest.MonkeyPatch, spec: ToolSpec) -> None:
    """What the line in tools.py does: list the tool before the timeline, which reads them all."""
    listed = dict(tools.TOOLS)
    timeline = listed.pop("timeline")
    monkeypatch.setattr(tools, "TOOLS", {**listed, spec.name: spec, timeline.name: timeline})


def test_a_noop_tool_runs_in_the_pipeline_and_its_provenance_reaches_the_rows(
    tmp_path: Path, silent_video: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    register(monkeypatch, NOOP)
    monkeypatch.setattr(NoopTool, "seen", [])
    out = tmp_path / "corpus"
    annotate_corpus(inputs=[str(silent_video)], out=str(out), overrides={"run": {"workers": 1}})

    # A silent test pattern has no face, so the jury fails these rows; their features are stored.
    rows = [r for r in read_rows(str(out)) if r.features is not None]
    assert rows
    assert sorted(NoopTool.seen) == sorted((r.row_id, True) for r in rows)  # each segment, face filled first
    for row in rows:
        assert row.features is not None
        stages = [p.stage for p in row.features.provenance]
        # After the listed tools before it, before the evidence timeline that reads them all.
        assert stages.index("keyframes") < stages.index("noop") < stages.index("timeline")
        assert {p.model for p in row.features.provenance if p.stage == "noop"} == {"noop-v0"}
        assert row.features.keyframes  # the tools around it still ran


def test_a_tool_that_fills_a_field_outside_its_spec_fails_as_a_row_not_a_crash(
    tmp_path: Path, silent_video: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    class Overreach(NoopTool):
        def fill(self, media: Media, segment: Segment, features: Features) -> dict[str, Any] | None:
            return {"peak_t_s": 0.0}

    spec = ToolSpec(name="overreach", phase="preprocess", section=None, fills=(), build=lambda s: Overreach())
    register(monkeypatch, spec)
    out = tmp_path / "corpus"
    annotate_corpus(inputs=[str(silent_video)], out=str(out), overrides={"run": {"workers": 1}})
    rows = [r for r in read_rows(str(out)) if r.features is not None]
    assert rows
    for row in rows:
        assert row.features is not None
        [failure] = [f for f in row.features.failures if f.stage == "overreach"]
        assert failure.kind == "invalid_input" and "peak_t_s" in failure.message
        assert "overreach" not in {p.stage for p in row.features.provenance}


def test_a_spec_cannot_name_a_field_features_lacks() -> None:
    with pytest.raises(ValueError, match="Features does not have"):
        ToolSpec(name="typo", phase="preprocess", section=None, fills=("keyframe",))


def _section(config: PipelineConfig, path: str) -> object:
    node: object = config
    for part in path.split("."):
        node = getattr(node, part)
    return node


def test_every_listed_tool_names_a_config_section_that_exists_and_unique_names() -> None:
    config = PipelineConfig()
    for name, spec in tools.TOOLS.items():
        assert spec.name == name
        if spec.section is not None:
            assert _section(config, spec.section) is not None, spec.name
    settings = ToolSettings(preprocess=config.preprocess, keyframes=config.sampling.keyframes)
    built = [name for name, spec in tools.TOOLS.items() if spec.build is not None and spec.build(settings)]
    assert built == ["keyframes", "timeline"]  # per-segment tools today; the extractor wires the rest
