"""``loanrisk tune``: search XGBoost's parameters on a dataset's training split (Optuna), in
its own process with progress and Ctrl-C, the study stored with the dataset and resumable."""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from loanrisk.cli.common import StorageOpt, cli_errors, err, out, progress_bar, settings_from
from loanrisk.errors import InvalidInput

if TYPE_CHECKING:
    from loanrisk.training.tune import TuneSummary

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smh]?)\s*$")


_UNIT = {"": 1, "s": 1, "m": 60, "h": 3600}


def parse_duration(text: str) -> float:
    """``90``, ``90s``, ``10m`` or ``2h`` as seconds."""
    found = _DURATION.match(text)
    if not found:
        raise InvalidInput(f"--time-budget {text!r}: a duration such as 90s, 10m or 2h")
    return float(found.group(1)) * _UNIT[found.group(2)]


def _print_summary(summary: TuneSummary) -> None:
    table = Table(
        "trial",
        "CV AUC",
        "tree nodes",
        "rounds",
        "",
        title=(
            f"study {summary.study} of dataset {summary.dataset}: "
            f"{summary.trials} trials, the AUC/cost frontier"
        ),
        title_justify="left",
    )
    best, lean = summary.best.number, summary.lean.number
    for t in summary.frontier:
        tags = ", ".join(n for n, k in (("best", best), ("lean", lean)) if t.number == k)
        table.add_row(str(t.number), f"{t.auc:.4f}", f"{t.nodes:,.0f}", str(t.rounds), tags)
    out.print(table)
    for pick, trial in (("best", summary.best), ("lean", summary.lean)):
        params = ", ".join(
            f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in trial.params.items()
        )
        out.print(
            f"{pick}: trial {trial.number}, CV AUC {trial.auc:.4f} "
            f"(± {trial.auc_std:.4f}), {trial.nodes:,.0f} nodes, "
            f"{trial.rounds} rounds; {params}",
            highlight=False,
        )
    out.print(
        f"train from it: loanrisk train --dataset {summary.dataset} "
        f"--params-from {summary.study}:lean",
        highlight=False,
    )


def tune(
    dataset: Annotated[str, typer.Option(help="Dataset id, or 'latest'.")] = "latest",
    study: Annotated[str, typer.Option(help="Study name; a stored study is resumed.")] = "tune",
    trials: Annotated[
        int | None, typer.Option(min=1, help="Complete trials the study should reach \\[30].")
    ] = None,
    time_budget: Annotated[
        str | None, typer.Option(help="Stop starting trials after this long (90s, 10m, 2h).")
    ] = None,
    objective: Annotated[
        str, typer.Option(help="auc, or auc-per-cost (a Pareto search on AUC and tree nodes).")
    ] = "auc",
    folds: Annotated[int, typer.Option(min=2, max=10, help="Stratified CV folds.")] = 3,
    monotone: Annotated[
        bool, typer.Option(help="Search with the schema's monotone constraints on.")
    ] = False,
    lean_tolerance: Annotated[
        float, typer.Option(help="'lean': the cheapest trial this close to the best AUC.")
    ] = 0.001,
    storage: StorageOpt = None,
    directory: Annotated[str, typer.Option(help="Directory of datasets.")] = "data",
    nthread: Annotated[int | None, typer.Option(min=1, help="Threads.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")] = False,
) -> None:
    """Search XGBoost's parameters by cross-validation on the training split (never the test
    split); report the AUC/cost frontier, the best and the lean trial."""
    from loanrisk.contracts import JobProgress, TuneOptions
    from loanrisk.jobs.child import run_in_process
    from loanrisk.requests import tune_job

    with cli_errors():
        settings = settings_from(storage=storage, nthread=nthread)
        if objective not in ("auc", "auc-per-cost"):
            raise InvalidInput(f"--objective {objective!r}: auc or auc-per-cost")
        options = TuneOptions(
            study=study,
            trials=trials,
            time_budget=parse_duration(time_budget) if time_budget else None,
            objective=objective,
            folds=folds,
            monotone=monotone,
            lean_tolerance=lean_tolerance,
        )
        job = tune_job(options, settings, dataset=dataset, data_directory=directory)
        with progress_bar() as progress:

            def show(step: JobProgress) -> None:
                progress("tune", step.done, step.total or step.done + 1)

            summary = run_in_process(job, settings, on_progress=show)
        from loanrisk.training.tune import TuneSummary  # xgboost: loaded once the study ran

        result = TuneSummary.model_validate(summary)
        if as_json:
            out.print_json(json.dumps(summary))
        else:
            _print_summary(result)
        err.print(f"study stored with dataset {result.dataset}", highlight=False)
