"""Deployments on a real Prefect server: `emoforge serve` executes a triggered run to
completion; `schedule` registers a cron/interval deployment on a work pool; provider
limits become global concurrency limits on the server."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from emoforge.configs import load_config
from emoforge.configs.run import RunConfig
from emoforge.flows.runners import ensure_provider_limits, provider_limit_names
from emoforge.flows.schedule import DeploymentSpec, register
from tests.integration.orchestration.conftest import copy_clips, raw_row_ids, row_digest, stop_process


def _deployment(name: str, wait_s: float = 0.0) -> object:
    from prefect.client.orchestration import get_client
    from prefect.exceptions import ObjectNotFound

    deadline = time.monotonic() + wait_s
    with get_client(sync_client=True) as client:
        while True:
            try:
                return client.read_deployment_by_name(f"annotate_corpus/{name}")
            except ObjectNotFound:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.5)


def _trigger(name: str) -> Any:
    """run_deployment and wait for the run to end (sync call: returns the FlowRun)."""
    from prefect.deployments import run_deployment

    return run_deployment(name, timeout=600)


@pytest.mark.slow
def test_served_deployment_runs_to_completion(
    clips: list[Path], reference_corpus: Path, tmp_path: Path, prefect_api: str
) -> None:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId
    from prefect.client.schemas.sorting import TaskRunSort

    folder = copy_clips(clips, tmp_path / "incoming")
    out = tmp_path / "corpus"
    emoforge = str(Path(sys.executable).with_name("emoforge"))
    log = open(tmp_path / "serve.log", "wb")  # noqa: SIM115 - closed in finally
    serve = subprocess.Popen(
        [emoforge, "serve", "nightly", str(folder), "--out", str(out), "--cron", "0 3 * * *"],
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        env=dict(os.environ),
    )
    try:
        deployment = _deployment("nightly", wait_s=180)
        assert [s.schedule.cron for s in deployment.schedules] == ["0 3 * * *"]  # type: ignore[attr-defined]
        assert deployment.parameters["out"] == str(out)  # type: ignore[attr-defined]
        assert deployment.global_concurrency_limit.limit == 1  # type: ignore[attr-defined]

        run = _trigger("annotate_corpus/nightly")
        assert run.state is not None and run.state.is_completed(), (tmp_path / "serve.log").read_text()[-3000:]
        assert row_digest(str(out)) == row_digest(str(reference_corpus))

        # Task runs carry the stage and the recording in their names (what the UI shows).
        with get_client(sync_client=True) as client:
            tasks = client.read_task_runs(
                flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[run.id])),
                sort=TaskRunSort.EXPECTED_START_TIME_DESC,
                limit=200,
            )
        names = {t.name for t in tasks}
        assert {f"{stage}[{c.name}]" for stage in ("probe", "aggregate") for c in clips} <= names
        assert all(t.state is not None and t.state.is_completed() for t in tasks)

        # A second (scheduled or triggered) run of the unchanged folder does no work.
        again = _trigger("annotate_corpus/nightly")
        assert again.state is not None and again.state.is_completed()
        with get_client(sync_client=True) as client:
            tasks = client.read_task_runs(
                flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[again.id])),
                sort=TaskRunSort.EXPECTED_START_TIME_DESC,
                limit=200,
            )
        assert tasks == []
        ids = raw_row_ids(str(out))
        assert len(ids) == len(set(ids)) == len(row_digest(str(reference_corpus)))
    finally:
        stop_process(serve)
        log.close()


def test_schedule_registers_on_a_work_pool(tmp_path: Path) -> None:
    from prefect.client.orchestration import get_client

    config = tmp_path / "cfg.yaml"
    config.write_text("run: {workers: 2}\n")
    spec = DeploymentSpec(
        name="hourly",
        inputs=[str(tmp_path / "in")],
        out=str(tmp_path / "out"),
        config_path=str(config),
        interval_s=3600,
    )
    register(spec, work_pool="emoforge-test")
    deployment = _deployment("hourly")
    assert deployment.work_pool_name == "emoforge-test"  # type: ignore[attr-defined]
    assert deployment.entrypoint == "emoforge.flows.annotate.annotate_corpus"  # type: ignore[attr-defined]
    assert deployment.parameters == {  # type: ignore[attr-defined]
        "inputs": [str(tmp_path / "in")],
        "out": str(tmp_path / "out"),
        "config_path": str(config),
        "overrides": None,
        "retry": "transient",
    }
    assert [s.schedule.interval for s in deployment.schedules] == [timedelta(hours=1)]  # type: ignore[attr-defined]
    with get_client(sync_client=True) as client:
        assert client.read_work_pool("emoforge-test").type == "process"


def test_spec_rejects_two_schedules() -> None:
    with pytest.raises(ValueError, match="either cron or interval_s"):
        DeploymentSpec(name="x", inputs=["a"], out="b", cron="* * * * *", interval_s=60)


def test_provider_limits_are_global_concurrency_limits() -> None:
    from prefect.client.orchestration import get_client

    agents = load_config(
        None,
        {
            "agents": {
                "jury": [
                    {"name": "gpt", "backend": "openai", "model": "gpt-4o-mini"},
                    {"name": "local", "backend": "openai_compatible", "model": "gemma", "base_url": "http://x/v1"},
                    {"name": "voice", "backend": "voice_cues"},
                ]
            }
        },
    ).agents
    run = RunConfig(provider_limits={"openai": 2, "gemini": 1})
    # Only remote backends the jury uses and that have a limit hold a slot.
    assert provider_limit_names(agents, run) == ["emoforge-provider-openai"]
    assert ensure_provider_limits(run) == {"emoforge-provider-gemini": 1, "emoforge-provider-openai": 2}
    ensure_provider_limits(RunConfig(provider_limits={"openai": 5}))
    with get_client(sync_client=True) as client:
        assert client.read_global_concurrency_limit_by_name("emoforge-provider-openai").limit == 5
        assert client.read_global_concurrency_limit_by_name("emoforge-provider-gemini").limit == 1
