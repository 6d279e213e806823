"""Inputs a careless manifest or a user's first day produces: paths escaping the input root,
Excel's UTF-8-with-BOM CSV, non-UTF-8 files, special files, missing paths, bad configs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from emoforge.configs import ConfigError, load_config
from emoforge.storage.inputs import InputError, discover_inputs, publishable_path, publishable_paths
from emoforge.storage.records import ErrorKind

EMOFORGE = str(Path(sys.executable).with_name("emoforge"))


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """project/{manifest.csv, media/a.wav, media/link.wav -> ../../secret.wav}, secret.wav outside."""
    project = tmp_path / "project"
    (project / "media").mkdir(parents=True)
    (project / "media" / "a.wav").write_bytes(b"RIFF")
    (tmp_path / "secret.wav").write_bytes(b"RIFF")
    (project / "media" / "link.wav").symlink_to(tmp_path / "secret.wav")
    return project


def test_manifest_entries_outside_its_folder_are_refused_unread(tree: Path, tmp_path: Path) -> None:
    manifest = tree / "manifest.csv"
    manifest.write_text(
        "uri,speaker\n"
        "media/a.wav,s1\n"
        "../secret.wav,s2\n"  # traversal
        f"{tmp_path / 'secret.wav'},s3\n"  # absolute path outside
        "media/link.wav,s4\n"  # symlink pointing outside
        f"file://{tmp_path / 'secret.wav'},s5\n"  # file URL outside
        "s3://bucket/clip.wav,s6\n"  # remote URLs are fsspec's business
    )
    items = {i.speaker: i for i in discover_inputs([manifest])}
    assert items["s1"].refused is None and items["s1"].rel_path == "media/a.wav"
    assert items["s1"].uri == str(tree / "media" / "a.wav")
    for spk in ("s2", "s3", "s4", "s5"):
        refused = items[spk].refused
        assert refused is not None and refused.kind == ErrorKind.outside_input_root, spk
        assert items[spk].rel_path is None
    # the refused entry keeps the uri as written: no resolved absolute path is recorded for it
    assert items["s2"].uri == "../secret.wav"
    assert items["s6"].refused is None and items["s6"].uri == "s3://bucket/clip.wav"

    # --input-root widens the root: everything local is inside, relative to it; the four
    # spellings of secret.wav are one file, kept once
    wide = {i.speaker: i for i in discover_inputs([manifest], input_root=tmp_path)}
    assert {s: i.rel_path for s, i in wide.items()} == {"s1": "project/media/a.wav", "s2": "secret.wav", "s6": None}
    assert all(i.refused is None for i in wide.values())


def test_folders_use_their_own_root(tree: Path, tmp_path: Path) -> None:
    items = {Path(i.uri).name: i for i in discover_inputs([tree / "media"])}
    assert items["a.wav"].rel_path == "a.wav" and items["a.wav"].refused is None
    refused = items["link.wav"].refused
    assert refused is not None and refused.kind == ErrorKind.outside_input_root
    with pytest.raises(InputError, match="not a folder"):
        discover_inputs([tree / "media"], input_root=tmp_path / "nope")


def test_publishable_paths_are_relative(tree: Path) -> None:
    assert publishable_path(str(tree / "media" / "a.wav"), tree) == "media/a.wav"
    assert publishable_path("https://host.example/private/x/clip.mp4?token=abc", tree) == "clip.mp4"
    with pytest.raises(ValueError):
        publishable_path("/etc/passwd", tree)
    uris = [str(tree / "media" / "a.wav"), str(tree / "b" / "c.wav"), "https://host.example/p/z.mp4"]
    assert publishable_paths(uris) == {uris[0]: "media/a.wav", uris[1]: "b/c.wav", uris[2]: "z.mp4"}
    assert publishable_paths([uris[0]]) == {uris[0]: "a.wav"}


def test_excel_csv_with_bom(tmp_path: Path) -> None:
    (tmp_path / "a.wav").write_bytes(b"RIFF")
    manifest = tmp_path / "excel.csv"
    manifest.write_bytes("\ufeffpath,speaker\r\na.wav,spk1\r\n".encode())
    (item,) = discover_inputs([manifest])
    assert item.speaker == "spk1" and item.rel_path == "a.wav"


@pytest.mark.parametrize("suffix", [".csv", ".jsonl"])
def test_non_utf8_manifest_is_one_clear_error(tmp_path: Path, suffix: str) -> None:
    manifest = tmp_path / f"latin1{suffix}"
    body = "path\ncaf\u00e9.wav\n" if suffix == ".csv" else '{"uri": "caf\u00e9.wav"}\n'
    manifest.write_bytes(body.encode("latin-1"))
    with pytest.raises(InputError, match=r"not UTF-8 text \(byte \d+\)"):
        discover_inputs([manifest])


def test_special_file_argument_is_a_clear_error() -> None:
    with pytest.raises(InputError, match="/dev/zero: not a regular file or folder"):
        discover_inputs(["/dev/zero"])


def test_config_errors_name_the_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such config file"):
        load_config(tmp_path / "missing.yaml")
    bad = tmp_path / "latin1.yaml"
    bad.write_bytes("name: caf\u00e9\n".encode("latin-1"))
    with pytest.raises(ConfigError, match=r"latin1.yaml: not UTF-8 text \(byte 9\)"):
        load_config(bad)


def test_missing_input_records_no_run(tmp_path: Path) -> None:
    """The flow checks its inputs before it opens the corpus: no run is left marked running."""
    from emoforge.flows.annotate import annotate_corpus

    out = tmp_path / "corpus"
    with pytest.raises(InputError, match="no such file or folder"):
        annotate_corpus.fn(inputs=[str(tmp_path / "missing.wav")], out=str(out))
    assert not (out / "manifest.json").exists()


def test_refused_inputs_become_failure_rows_once(tree: Path, tmp_path: Path) -> None:
    """Only refused entries: no task runs, so the flow body runs without a Prefect server."""
    from emoforge.flows.annotate import annotate_corpus
    from emoforge.storage.shards import read_manifest, read_table

    manifest = tree / "escape.jsonl"
    manifest.write_text(
        json.dumps({"uri": "../secret.wav", "speaker": "x"}) + "\n" + json.dumps({"uri": "/etc/hostname"}) + "\n"
    )
    out = tmp_path / "corpus"
    summary = annotate_corpus.fn(inputs=[str(manifest)], out=str(out))
    assert summary.failures == {"input:outside_input_root": 2}
    rows = read_table(str(out), columns=["status", "failure", "recording"]).to_pylist()
    assert sorted(r["recording"]["uri"] for r in rows) == ["../secret.wav", "/etc/hostname"]
    assert {(r["status"], r["failure"]["kind"]) for r in rows} == {("failed", "outside_input_root")}
    again = annotate_corpus.fn(inputs=[str(manifest)], out=str(out))
    assert again.rows_written == 0  # final failures are not rewritten (no duplicate rows)
    assert [r["status"] for r in read_manifest(str(out))["runs"]] == ["finished", "finished"]


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([EMOFORGE, *args], capture_output=True, cwd=cwd, timeout=120, env=dict(os.environ))


def test_cli_errors_are_one_line_without_traceback(tmp_path: Path) -> None:
    latin = tmp_path / "latin1.yaml"
    latin.write_bytes("name: caf\u00e9\n".encode("latin-1"))
    (tmp_path / "not-a-corpus").mkdir()
    cases = [
        (["annotate", "missing.wav", "--out", "c1"], b"missing.wav: no such file or folder"),
        (["annotate", "/dev/zero", "--out", "c2"], b"/dev/zero: not a regular file or folder"),
        (["annotate", ".", "--out", "c3", "--config", "nope.yaml"], b"nope.yaml: no such config file"),
        (["annotate", ".", "--out", "c4", "--config", str(latin)], b"not UTF-8 text"),
        (["inspect", "not-a-corpus"], b"not an emoforge corpus"),
    ]
    for args, message in cases:
        done = _cli(*args, cwd=tmp_path)
        assert done.returncode == 2, (args, done.stderr)
        assert message in done.stderr, (args, done.stderr)
        assert b"Traceback" not in done.stderr and len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert not any((tmp_path / c).exists() for c in ("c1", "c2", "c3", "c4"))  # no run recorded
