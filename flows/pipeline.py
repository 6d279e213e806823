"""``PIPELINE``: the phases every recording goes through, in order. The one declaration of
them: the phase names (``PHASES``), the flow's tasks and steps (``configured``) and the dry
run (``flows/estimate.py``) all read this list. A new phase is its module in
``flows/phases/`` and its line here."""

from __future__ import annotations

from emoforge.configs.run import RunConfig
from emoforge.flows.phase import Phase
from emoforge.flows.phases.aggregate import Aggregate
from emoforge.flows.phases.annotate import Annotate
from emoforge.flows.phases.judge import Judge
from emoforge.flows.phases.preprocess import Preprocess
from emoforge.flows.phases.probe import Probe
from emoforge.flows.phases.sampling import Sampling
from emoforge.flows.tasks import PhaseTask, phase_task

PIPELINE: tuple[type[Phase], ...] = (Probe, Sampling, Preprocess, Annotate, Judge, Aggregate)


PHASES: tuple[str, ...] = tuple(p.name for p in PIPELINE)
"""The phases' names, in order: their tasks' names and their failures' ``stage`` strings."""


def configured(run: RunConfig) -> list[tuple[type[Phase], PhaseTask]]:
    """Each phase with its task, retries and timeout from the run config, in pipeline order.

    Task runs are named ``{phase}[{file name}]`` (see ``tasks.named``) so the Prefect UI reads
    like a log of recordings."""
    return [
        (p, phase_task.with_options(
            name=p.name, retries=run.task_retries, retry_delay_seconds=run.retry_delay_s,
            timeout_seconds=run.task_timeout_s,
        ))
        for p in PIPELINE
    ]  # fmt: skip
