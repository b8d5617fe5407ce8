"""Running a training job in its own process, so the caller stays responsive."""

from __future__ import annotations

import threading
from collections.abc import Callable

from loanrisk.contracts import JobProgress, TrainingRequest, TrainingResult
from loanrisk.jobs.child import run_in_process
from loanrisk.settings import Settings
from loanrisk.training.train import RoundProgress


def train_in_subprocess(
    request: TrainingRequest,
    settings: Settings,
    *,
    on_progress: Callable[[RoundProgress], None] | None = None,
    cancel: threading.Event | None = None,
) -> TrainingResult:
    """Run the training in a child process and return its result (the job's, parsed).

    Raises what the job raised (:class:`~loanrisk.errors.Cancelled` after ``cancel`` is set),
    or :class:`~loanrisk.errors.LoanRiskError` when the process died without an answer. An
    interrupt in the caller (Ctrl-C) cancels the child before it propagates.
    """

    def forward(step: JobProgress) -> None:
        if on_progress is None or step.stage != "train" or step.total is None:
            return
        metrics = {name: float(value) for name, value in (step.metrics or {}).items()}
        elapsed, eta = step.elapsed or 0.0, step.eta or 0.0
        on_progress(RoundProgress(step.done, step.total, elapsed, eta, metrics))

    return TrainingResult.model_validate(
        run_in_process(request, settings, on_progress=forward, cancel=cancel)
    )
