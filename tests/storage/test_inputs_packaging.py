"""Input discovery, package layout, and the generated sample media of `emoforge demo`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tomllib
from pathlib import Path

import fsspec
import pytest

from emoforge.samples import make_sample_media
from emoforge.storage.inputs import InputError, discover_inputs

REPO = Path(__file__).resolve().parents[2]


def test_folders_files_and_manifests(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    for name in ("x.wav", "y.mp4", "notes.txt"):
        (tmp_path / "a" / name).write_bytes(b"")
    (tmp_path / "a" / "sub").mkdir()
    (tmp_path / "a" / "sub" / "z.flac").write_bytes(b"")
    csv = tmp_path / "m.csv"
    csv.write_text("path,source,speaker\na/x.wav,showA,spk1\n")
    jsonl = tmp_path / "m.jsonl"
    jsonl.write_text(json.dumps({"uri": str(tmp_path / "a" / "y.mp4"), "speaker": "spk2"}) + "\n\n")
    items = discover_inputs([csv, jsonl, tmp_path / "a"])
    by_name = {Path(i.uri).name: i for i in items}
    assert sorted(by_name) == ["x.wav", "y.mp4", "z.flac"]  # duplicates kept once, txt ignored
    assert by_name["x.wav"].source == "showA" and by_name["x.wav"].speaker == "spk1"
    assert by_name["y.mp4"].speaker == "spk2"
    assert by_name["z.flac"].source == "sub"  # first sub-folder names the source
    assert discover_inputs([tmp_path / "a" / "x.wav"])[0].source is None


def test_a_url_ending_in_a_slash_lists_its_media_objects() -> None:
    """A bucket prefix is a folder of objects; a URL without the slash is one object, as given.
    (fsspec's in-memory filesystem stands in for a bucket: tests/integration/orchestration/
    test_object_storage.py lists a real S3 server's.)"""
    fs = fsspec.filesystem("memory")
    for name in ("in/x.wav", "in/notes.txt", "in/sub/z.flac", "other/y.wav"):
        fs.pipe_file(f"/listing-test/{name}", b"")
    try:
        items = discover_inputs(["memory://listing-test/in/", "memory://listing-test/other/y.wav"])
    finally:
        fs.rm("/listing-test", recursive=True)
    assert [(i.uri, i.source) for i in items] == [
        ("memory:///listing-test/in/sub/z.flac", "sub"),  # first sub-folder names the source
        ("memory:///listing-test/in/x.wav", None),
        ("memory://listing-test/other/y.wav", None),
    ]


def test_bad_inputs_raise_clearly(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no such file"):
        discover_inputs([tmp_path / "missing.mp4"])
    bad = tmp_path / "bad.csv"
    bad.write_text("name\nfoo\n")
    with pytest.raises(InputError, match=r"bad.csv:2: needs one of the columns"):
        discover_inputs([bad])
    badj = tmp_path / "bad.jsonl"
    badj.write_text("{nope\n")
    with pytest.raises(InputError, match=r"bad.jsonl:1: invalid JSON"):
        discover_inputs([badj])
    with pytest.raises(InputError, match=r"^nosuchscheme://bucket/in/: cannot list the folder"):
        discover_inputs(["nosuchscheme://bucket/in/"])


def test_every_subpackage_is_declared_for_wheels() -> None:
    """Editable installs find undeclared sub-packages; wheels silently drop them."""
    cfg = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]
    declared = set(cfg["packages"])
    mapping = cfg["package-dir"]
    found = set()
    for name, folder in mapping.items():
        for init in (REPO / folder).rglob("__init__.py"):
            rel = init.parent.relative_to(REPO / folder)
            found.add(".".join([name, *rel.parts]) if rel.parts else name)
    assert found <= declared, sorted(found - declared)


def test_sample_media_for_the_demo(tmp_path: Path) -> None:
    from emoforge.configs.sampling import MediaConfig
    from emoforge.preprocess.media import MediaProber

    files = make_sample_media(tmp_path)
    prober = MediaProber(MediaConfig())
    recs = [prober.probe(f) for f in files]
    assert all(r.status.value == "ok" for r in recs)
    video = recs[-1]
    assert video.has_video and video.has_audio and 3.0 < (video.duration_s or 0) < 9.0
    assert all(r.has_audio and not r.has_video for r in recs[:-1])


@pytest.mark.parametrize("user_value", [None, "7"])
def test_importing_emoforge_gives_prefects_temporary_server_time_to_start(user_value: str | None) -> None:
    """A first run starts a temporary Prefect server and migrates a fresh database, which took
    longer than Prefect's 20 s default on the 2-core CI machine; emoforge's default must be in
    force whenever an emoforge module is imported before Prefect, and a user's value must win."""
    env = {k: v for k, v in os.environ.items() if k != "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS"}
    if user_value is not None:
        env["PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS"] = user_value
    code = (
        "import emoforge.flows.annotate\n"
        "from prefect.settings import PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS as s\n"
        "print(s.value())\n"
    )
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip().splitlines()[-1] == (user_value or "180")
