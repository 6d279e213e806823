"""Corpus operations at scale: a synthetic corpus of N committed rows (default 1,000,000).

Rows have the real schema and small payloads: 1,000 template rows built by
``tests/release/factory.make_row`` (three agents' annotations, verdicts, consensus, jury;
no key-frame JPEGs) are copied with new row and recording ids, ten segments a recording,
into shards of ``storage.max_rows_per_shard`` rows; then a "retry tail" of small shards
(``--tail-shards`` x ``--tail-rows``, half of them rewriting committed ids, as retried rows
do) that compaction merges.

Each measure runs in a fresh child process and reports its wall time and peak RSS
(``ru_maxrss``, the interpreter and pyarrow included):

- ``plan``: what ``annotate`` does before it submits a task: open the writer (lock,
  recovery: every shard's size and footer checked), ``resume_state``, ``plan_inputs`` for
  ``--inputs`` new files (``seconds``, ``peak_rss_mb``); then, apart, one
  ``recording_state`` per recording (what each sampling task gets) and the pickled size of
  the corpus's state against one recording's.
- ``resume``: ``resume_state`` alone; ``resume_before``: the code before this change
  (sha256 of every shard, whole annotation columns), loaded from git at ``--before``.
- ``inspect``: ``summarize`` (what ``emoforge inspect`` prints: each shard's summary columns
  counted in Arrow, streamed); ``inspect_before``: ``summarize`` as it was at
  ``--before-reads`` (every summary column of every row in one table, a Python loop over
  the rows), loaded from git; ``verify_full``: sha256 of every shard (``emoforge verify``).
- ``export``: ``emoforge export`` on a ``--export-rows`` corpus (it holds every row as a
  record until the release is written, so it is measured smaller and extrapolated
  linearly); ``report``: ``emoforge report`` (HTML page and a 200-clip browser) on the same
  corpus, which holds every row as a record too.
- ``compact``: ``emoforge compact`` of the tail.

    .venv/bin/python benchmarks/bench_scale.py [--rows 1000000] [--out benchmarks/results/scale.json]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import pickle
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import pyarrow as pa  # noqa: E402
import pyarrow.compute as pc  # noqa: E402

from emoforge.configs.storage import StorageConfig  # noqa: E402
from emoforge.storage.schema import rows_to_table  # noqa: E402
from emoforge.storage.shards import CorpusWriter, read_manifest  # noqa: E402

TEMPLATE_ROWS = 1000
SEGMENTS_PER_RECORDING = 10


def _templates() -> pa.Table:
    from tests.release.factory import TAXONOMY, make_row

    rows = []
    for i in range(TEMPLATE_ROWS):
        label = TAXONOMY[i % len(TAXONOMY)]
        # One row in 50 with a refused vote: resume reads the failure kinds of parts too.
        votes = (label, None, label) if i % 50 == 0 else None
        rows.append(make_row(f"tpl{i // SEGMENTS_PER_RECORDING:04d}", i % SEGMENTS_PER_RECORDING, label, votes=votes))
    return rows_to_table(rows)


def _block(template: pa.Table, first: int, n: int, run_id: str) -> pa.Table:
    """Rows ``first`` .. ``first + n`` of the synthetic corpus: the template's rows (cycled)
    with their ids, recording and segment ids rewritten."""
    idx = pa.array([(first + k) % TEMPLATE_ROWS for k in range(n)], pa.int64())
    t = template.take(idx)
    recs = [(first + k) // SEGMENTS_PER_RECORDING for k in range(n)]
    rec_ids = [f"clip{r:07d}-{r * 7919 % 10**10:010d}" for r in recs]
    row_ids = [f"{r}-{(first + k) % SEGMENTS_PER_RECORDING:05d}" for k, r in enumerate(rec_ids)]

    def with_fields(column: str, values: dict[str, pa.Array]) -> pa.Array:
        struct = t.column(column).combine_chunks()
        fields = [struct.type.field(i) for i in range(struct.type.num_fields)]
        children = [values.get(f.name, pc.struct_field(struct, f.name)) for f in fields]
        return pa.StructArray.from_arrays(children, fields=fields, mask=pc.invert(struct.is_valid()))

    counts = pa.array([SEGMENTS_PER_RECORDING] * n, pa.int64())
    t = t.set_column(t.schema.get_field_index("row_id"), t.schema.field("row_id"), pa.array(row_ids))
    t = t.set_column(t.schema.get_field_index("run_id"), t.schema.field("run_id"), pa.array([run_id] * n))
    rec = with_fields("recording", {"id": pa.array(rec_ids), "segment_count": counts})
    t = t.set_column(t.schema.get_field_index("recording"), t.schema.field("recording"), rec)
    seg = with_fields("segment", {"id": pa.array(row_ids), "recording_id": pa.array(rec_ids)})
    return t.set_column(t.schema.get_field_index("segment"), t.schema.field("segment"), seg)


def build(root: Path, rows: int, tail_shards: int, tail_rows: int) -> dict[str, Any]:
    """Write the synthetic corpus; returns its shape."""
    t0 = time.perf_counter()
    template = _templates()
    config = StorageConfig()
    writer = CorpusWriter(str(root), config, "run-bench-0")
    per_shard = config.max_rows_per_shard
    for first in range(0, rows, per_shard):
        entry = writer.write_shard(_block(template, first, min(per_shard, rows - first), "run-bench-0"), "run-bench-0")
        writer.manifest["shards"].append(entry)
        writer.save_manifest(entry["name"])
    writer.close()
    # The retry tail: small shards, half of each rewriting ids committed above (a retried row).
    writer = CorpusWriter(str(root), config, "run-bench-1")
    for k in range(tail_shards):
        fresh = _block(template, rows + k * tail_rows // 2, tail_rows // 2, "run-bench-1")
        retried = _block(template, k * 997 % max(rows - tail_rows, 1), tail_rows - tail_rows // 2, "run-bench-1")
        entry = writer.write_shard(pa.concat_tables([fresh, retried]), "run-bench-1")
        writer.manifest["shards"].append(entry)
        writer.save_manifest(entry["name"])
    writer.close()
    manifest = read_manifest(str(root))
    return {
        "rows_committed": rows + tail_shards * (tail_rows // 2),
        "physical_rows": sum(s["rows"] for s in manifest["shards"]),
        "shards": len(manifest["shards"]),
        "bytes": sum(s["bytes"] for s in manifest["shards"]),
        "build_s": round(time.perf_counter() - t0, 1),
    }


def _load_before(commit: str) -> tuple[Any, Any]:
    """``done_rows`` and ``resume_state`` as they were at ``commit`` (shards.py and work.py
    read from git; work.py's import of the shards module pointed at the old one)."""
    tmp = Path(tempfile.mkdtemp())
    shards_src = subprocess.run(
        ["git", "show", f"{commit}:storage/shards.py"], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout
    work_src = subprocess.run(
        ["git", "show", f"{commit}:flows/work.py"], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout
    (tmp / "old_shards.py").write_text(shards_src)
    (tmp / "old_work.py").write_text(work_src.replace("from emoforge.storage.shards import", "from old_shards import"))
    sys.path.insert(0, str(tmp))
    spec = importlib.util.spec_from_file_location("old_work", tmp / "old_work.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["old_work"] = module  # dataclasses look their module up while decorating
    spec.loader.exec_module(module)
    return module.resume_state, sys.modules["old_shards"].verify


def measure(what: str, root: str, args: argparse.Namespace) -> dict[str, Any]:
    """One measure, in this (fresh) process."""
    out: dict[str, Any] = {}
    t0 = time.perf_counter()
    if what == "plan":
        from emoforge.flows.incremental import HashIndex, plan_inputs
        from emoforge.flows.work import RecordingWork, recording_state, resume_state
        from emoforge.storage.records import MediaInput, Recording

        media = Path(tempfile.mkdtemp())
        items = []
        for i in range(args.inputs):
            path = media / f"new{i:05d}.wav"
            path.write_bytes(i.to_bytes(4, "little") * 256)
            items.append(MediaInput(uri=str(path)))
        writer = CorpusWriter(root, StorageConfig(), "run-plan")
        state = resume_state(root)
        out["open_and_resume_s"] = round(time.perf_counter() - t0, 2)
        plan = plan_inputs(items, state, "transient", HashIndex(root))
        out["planned_inputs"] = len(plan.todo)
        out["committed_rows_in_state"] = len(state.rows)
        # Planning ends here; what follows is per task (a recording's state) or measurement.
        out["seconds"] = round(time.perf_counter() - t0, 2)
        out["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
        t1 = time.perf_counter()
        slices = [
            recording_state(state, RecordingWork(item=items[0], recording=_recording(Recording, rec_id)))
            for rec_id in state.by_recording
        ]
        out["recording_states"] = len(slices)
        out["recording_state_us_each"] = round((time.perf_counter() - t1) / max(len(slices), 1) * 1e6, 1)
        out["pickled_state_bytes"] = {"corpus": len(pickle.dumps(state)), "one_recording": len(pickle.dumps(slices[0]))}
        writer.close(status="interrupted")
    elif what == "resume":
        from emoforge.flows.work import resume_state

        out["rows"] = len(resume_state(root).rows)
    elif what == "resume_before":
        old_resume, _ = _load_before(args.before)
        t0 = time.perf_counter()  # the old modules' import is not the old code's cost
        out["rows"] = len(old_resume(root).rows)
    elif what == "inspect":
        from emoforge.storage.summary import summarize

        info = summarize(root)
        out["rows"] = info["rows"]
        out["problems"] = len(info["problems"])
    elif what == "inspect_before":
        old_summarize = _load_module(args.before_reads, "storage/summary.py", "old_summary").summarize
        t0 = time.perf_counter()
        info = old_summarize(root)
        out["rows"] = info["rows"]
        out["problems"] = len(info["problems"])
    elif what == "inspect_before_verify":
        _, old_verify = _load_before(args.before)
        t0 = time.perf_counter()
        out["problems"] = len(old_verify(root))
    elif what == "verify_full":
        from emoforge.storage.shards import verify

        out["problems"] = len(verify(root, full=True))
    elif what == "export":
        from typer.testing import CliRunner

        from emoforge.cli import app

        result = CliRunner().invoke(app, ["export", root, "--out", tempfile.mkdtemp() + "/release", "--all"])
        out["exit_code"] = result.exit_code
    elif what == "report":
        from typer.testing import CliRunner

        from emoforge.cli import app

        result = CliRunner().invoke(app, ["report", root, "--out", tempfile.mkdtemp() + "/report.html"])
        out["exit_code"] = result.exit_code
    elif what == "compact":
        from emoforge.storage.compaction import compact

        report = compact(root, StorageConfig())
        out.update(report.model_dump(exclude={"replaced", "written"}))
    out.setdefault("seconds", round(time.perf_counter() - t0, 2))
    out.setdefault("peak_rss_mb", round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024))
    return out


def _load_module(commit: str, path: str, name: str) -> Any:
    """The module at ``path`` as it was at ``commit`` (read from git), imported as ``name``."""
    tmp = Path(tempfile.mkdtemp())
    src = subprocess.run(["git", "show", f"{commit}:{path}"], cwd=REPO, capture_output=True, text=True, check=True)
    (tmp / f"{name}.py").write_text(src.stdout)
    spec = importlib.util.spec_from_file_location(name, tmp / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _recording(cls: Any, rec_id: str) -> Any:
    return cls(id=rec_id, uri=f"{rec_id}.wav", sha256="0" * 64, size_bytes=1)


def _child(what: str, root: Path, args: argparse.Namespace) -> dict[str, Any]:
    cmd = [sys.executable, __file__, "--measure", what, "--corpus", str(root), "--before", args.before]
    cmd += ["--before-reads", args.before_reads]
    cmd += ["--inputs", str(args.inputs)]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        return {"error": proc.stderr[-2000:]}
    result: dict[str, Any] = json.loads(proc.stdout.splitlines()[-1])
    print(what, result, file=sys.stderr, flush=True)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--tail-shards", type=int, default=100)
    parser.add_argument("--tail-rows", type=int, default=200)
    parser.add_argument("--export-rows", type=int, default=40_000)
    parser.add_argument("--inputs", type=int, default=100, help="New input files planned against the corpus.")
    parser.add_argument("--before", default="165fb08", help="Commit whose resume/verify code is the baseline.")
    parser.add_argument(
        "--before-reads", default="cc526e2", help="Commit whose summarize is the baseline of inspect_before."
    )
    parser.add_argument("--skip", nargs="*", default=[], help="Measures to leave out.")
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "scale.json")
    parser.add_argument("--measure", help=argparse.SUPPRESS)
    parser.add_argument("--corpus", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        print(json.dumps(measure(args.measure, args.corpus, args)))
        return
    work = Path(args.workdir or tempfile.mkdtemp(prefix="bench-scale-"))
    results: dict[str, Any] = {
        "machine": {
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "load_at_start": list(os.getloadavg()),
        },
        "rows": args.rows,
        "date": time.strftime("%Y-%m-%d"),
    }
    big = work / "corpus"
    results["corpus"] = build(big, args.rows, args.tail_shards, args.tail_rows)
    print("built", results["corpus"], file=sys.stderr, flush=True)
    order = ["plan", "resume", "resume_before", "inspect", "inspect_before", "inspect_before_verify", "verify_full"]
    order.append("compact")
    for what in order:
        if what not in args.skip:
            results[what] = _child(what, big, args)
    if not {"export", "report"} <= set(args.skip):
        small = work / "export-corpus"
        shape = build(small, args.export_rows, 0, 0)
    for what in ("export", "report"):
        if what in args.skip:
            continue
        measured = _child(what, small, args)
        measured["rows"] = shape["rows_committed"]
        if "seconds" in measured:
            measured["extrapolated_s_at_rows"] = round(measured["seconds"] * args.rows / args.export_rows)
        results[what] = measured
    results["machine"]["load_at_end"] = list(os.getloadavg())
    plan = results.get("plan", {})
    inspect = results.get("inspect", {})
    results["verdict"] = {
        "plan_under_30_s": plan.get("seconds", 1e9) < 30,
        "plan_under_1_gb": plan.get("peak_rss_mb", 1e9) < 1024,
        "inspect_under_60_s": inspect.get("seconds", 1e9) < 60,
        "inspect_under_1_gb": inspect.get("peak_rss_mb", 1e9) < 1024,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
