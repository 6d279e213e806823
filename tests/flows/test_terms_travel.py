"""An input's terms of use travel from discovery through probing into every row it makes."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from emoforge.configs import load_config
from emoforge.flows.phase import PhaseEnv, run_phase
from emoforge.flows.phases.probe import Probe
from emoforge.flows.work import RecordingWork
from emoforge.storage.inputs import discover_inputs
from emoforge.storage.records import RunContext, Segment, Status, Terms

CTX = RunContext(run_id="run-1", config_hash="cfg", emoforge_version="0")
RESEARCH = Terms(licence="CC-BY-NC-SA-4.0", consent="research", attribution="RAVDESS")


def test_probed_recordings_and_their_rows_carry_the_folder_terms(tmp_path: Path, fixtures_dir: Path) -> None:
    folder = tmp_path / "ravdess"
    folder.mkdir()
    shutil.copy(fixtures_dir / "ravdess" / "03-01-01-01-01-01-01.flac", folder / "clip.flac")
    (folder / "broken.wav").write_bytes(b"RIFF not audio")
    (folder / "terms.json").write_text(json.dumps(RESEARCH.model_dump(exclude_none=True)))
    config = load_config()
    clip, broken = sorted(discover_inputs([folder], terms=config.inputs), key=lambda i: i.uri, reverse=True)

    work = run_phase(Probe(PhaseEnv(config=config, ctx=CTX)), RecordingWork(item=clip))
    assert work.recording is not None and work.recording.status == Status.ok
    assert work.recording.terms == RESEARCH
    seg = Segment(
        id=f"{work.recording.id}-00000", recording_id=work.recording.id, index=0, start_s=0, end_s=1, kind="full"
    )
    work.start_rows([seg], 1, CTX)
    assert [r.recording.terms for r in work.finished_rows(CTX)] == [RESEARCH]

    # A file that fails probing still says under which terms it came: its failure row carries them.
    failed = run_phase(Probe(PhaseEnv(config=config, ctx=CTX)), RecordingWork(item=broken))
    assert failed.recording is not None and failed.recording.status == Status.failed
    (row,) = failed.finished_rows(CTX)
    assert row.status == Status.failed and row.recording.terms == RESEARCH
