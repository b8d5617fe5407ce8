"""``loanrisk tune``: search XGBoost's parameters on a dataset's training split (Optuna), in
its own process with progress and Ctrl-C, the study stored with the dataset and resumable;
with ``--fairness ATTR``, the search for a less discriminatory alternative (docs/fairness.md),
whose alternative ``--train-lda`` trains as a new version, never promoted."""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from loanrisk.cli.common import (
    ModelDirOpt,
    StorageOpt,
    cli_errors,
    err,
    out,
    progress_bar,
    settings_from,
)
from loanrisk.defaults import LDA_AUC_LOSS, LDA_MIN_AIR_GAIN
from loanrisk.errors import InvalidInput

if TYPE_CHECKING:
    from loanrisk.fairness.lda import LdaFinding
    from loanrisk.settings import Settings
    from loanrisk.training.tune import TuneSummary

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smh]?)\s*$")


_UNIT = {"": 1, "s": 1, "m": 60, "h": 3600}


def parse_duration(text: str) -> float:
    """``90``, ``90s``, ``10m`` or ``2h`` as seconds."""
    found = _DURATION.match(text)
    if not found:
        raise InvalidInput(f"--time-budget {text!r}: a duration such as 90s, 10m or 2h")
    return float(found.group(1)) * _UNIT[found.group(2)]


def _air(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def _print_lda(summary: TuneSummary, lda: LdaFinding) -> None:
    table = Table(
        "trial",
        "CV AUC",
        f"AIR ({lda.attribute})",
        "tree nodes",
        "",
        title=(
            f"study {summary.study} of dataset {summary.dataset}: {summary.trials} trials, "
            f"the AUC/AIR frontier (approved: PD <= {lda.threshold:g})"
        ),
        title_justify="left",
    )
    alternative = lda.alternative.number if lda.alternative is not None else None
    tags = (("best", lda.baseline.number), ("alternative", alternative))
    for t in summary.frontier:
        tag = ", ".join(n for n, k in tags if t.number == k)
        table.add_row(str(t.number), f"{t.auc:.4f}", _air(t.air), f"{t.nodes:,.0f}", tag)
    out.print(table)
    out.print(f"less discriminatory alternative: {lda.statement}", highlight=False)
    if lda.alternative is not None:
        out.print(
            f"train it: loanrisk train --dataset {summary.dataset} "
            f"--params-from {summary.study}:lda --no-promote (or tune again with --train-lda)",
            highlight=False,
        )


def _print_summary(summary: TuneSummary) -> None:
    if summary.lda is not None:
        _print_lda(summary, summary.lda)
        return
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
        str | None,
        typer.Option(
            help="auc, auc-per-cost (a Pareto search on AUC and tree nodes) or auc-air (with "
            "--fairness, its default) \\[auc]."
        ),
    ] = None,
    folds: Annotated[int, typer.Option(min=2, max=10, help="Stratified CV folds.")] = 3,
    monotone: Annotated[
        bool, typer.Option(help="Search with the schema's monotone constraints on.")
    ] = False,
    lean_tolerance: Annotated[
        float, typer.Option(help="'lean': the cheapest trial this close to the best AUC.")
    ] = 0.001,
    fairness: Annotated[
        str | None,
        typer.Option(
            help="A protected attribute of the schema: search for a less discriminatory "
            "alternative (a Pareto search on AUC and its adverse impact ratio)."
        ),
    ] = None,
    auc_loss: Annotated[
        float | None,
        typer.Option(
            min=0.0,
            max=0.1,
            help=f"CV AUC an alternative may lose against the best trial "
            f"(LOANRISK_LDA_AUC_LOSS) \\[{LDA_AUC_LOSS}].",
        ),
    ] = None,
    min_air_gain: Annotated[
        float | None,
        typer.Option(
            min=0.0,
            max=1.0,
            help=f"AIR gain that is material (LOANRISK_LDA_MIN_AIR_GAIN) \\[{LDA_MIN_AIR_GAIN}].",
        ),
    ] = None,
    threshold: Annotated[
        float | None,
        typer.Option(
            help="Approvals counted at this PD threshold (default: the one --model's "
            "champion decides at, else LOANRISK_THRESHOLD)."
        ),
    ] = None,
    train_lda: Annotated[
        bool,
        typer.Option(
            help="Train the alternative found as a new version of --model (never promoted)."
        ),
    ] = False,
    model: Annotated[
        str,
        typer.Option(
            help="The model whose champion the search is measured against: its threshold "
            "and, with --train-lda, the model the alternative is added to."
        ),
    ] = "loan-default",
    model_directory: ModelDirOpt = "models",
    storage: StorageOpt = None,
    directory: Annotated[str, typer.Option(help="Directory of datasets.")] = "data",
    nthread: Annotated[int | None, typer.Option(min=1, help="Threads.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")] = False,
) -> None:
    """Search XGBoost's parameters by cross-validation on the training split (never the test
    split); report the AUC/cost frontier, the best and the lean trial. With --fairness, the
    AUC/AIR frontier and whether a trial within --auc-loss of the best AUC has a materially
    higher adverse impact ratio (docs/fairness.md)."""
    from loanrisk.contracts import JobProgress, TuneOptions
    from loanrisk.jobs.child import run_in_process
    from loanrisk.requests import tune_job
    from loanrisk.storage import open_storage

    with cli_errors():
        settings = settings_from(storage=storage, nthread=nthread)
        if objective not in (None, "auc", "auc-per-cost", "auc-air"):
            raise InvalidInput(f"--objective {objective!r}: auc, auc-per-cost or auc-air")
        if train_lda and fairness is None:
            raise InvalidInput("--train-lda: search with --fairness ATTR")
        given = {
            "objective": objective,
            "fairness": fairness,
            "auc_loss": auc_loss,
            "min_air_gain": min_air_gain,
            "threshold": threshold,
        }
        options = TuneOptions(
            study=study,
            trials=trials,
            time_budget=parse_duration(time_budget) if time_budget else None,
            folds=folds,
            monotone=monotone,
            lean_tolerance=lean_tolerance,
            **{k: v for k, v in given.items() if v is not None},
        )
        target = open_storage(settings)
        job = tune_job(
            options,
            settings,
            target,
            dataset=dataset,
            data_directory=directory,
            model_name=model,
            model_directory=model_directory,
        )
        if job.fairness is not None:
            err.print(
                f"approvals counted at PD <= {job.threshold:g}: "
                f"{'--threshold' if job.threshold_source == 'given' else job.threshold_source}",
                highlight=False,
                soft_wrap=True,
            )
        with progress_bar() as progress:

            def show(step: JobProgress) -> None:
                progress("tune", step.done, step.total or step.done + 1)

            summary = run_in_process(job, settings, on_progress=show)
        from loanrisk.training.tune import TuneSummary  # xgboost: loaded once the study ran

        result = TuneSummary.model_validate(summary)
        if as_json and not train_lda:
            out.print_json(json.dumps(summary))
        elif not as_json:
            _print_summary(result)
        err.print(f"study stored with dataset {result.dataset}", highlight=False)
        if train_lda:
            _train_alternative(
                result,
                settings,
                data_directory=directory,
                model=model,
                model_directory=model_directory,
                as_json=as_json,
            )


def _train_alternative(
    result: TuneSummary,
    settings: Settings,
    *,
    data_directory: str,
    model: str,
    model_directory: str,
    as_json: bool,
) -> None:
    """Train the alternative ``result`` found as a new version of ``model``, never promoted:
    a challenger to shadow, compare and promote through the usual guards. It takes the
    champion's decision settings (bands, master scale, points scaling; the threshold is the
    search's), so that it decides, grades and scores as the version it would replace. With
    ``as_json`` the summary and the version's manifest are printed as one JSON document."""
    from loanrisk.cli.train import train_summary
    from loanrisk.contracts import TrainingOptions
    from loanrisk.jobs.training import train_in_subprocess
    from loanrisk.requests import champion, training_request
    from loanrisk.storage import open_storage
    from loanrisk.training.train import RoundProgress

    lda = result.lda
    if lda is None or lda.alternative is None:
        message = lda.statement if lda is not None else "the study searched no attribute"
        if as_json:
            out.print_json(json.dumps({"study": result.model_dump(mode="json"), "trained": None}))
        err.print(f"nothing trained: {message}", highlight=False)
        return
    options = TrainingOptions(
        dataset=result.dataset,
        data_directory=data_directory,
        params_from=f"{result.study}:lda",
        promote=False,
    )
    storage = open_storage(settings)
    champion_version = champion(
        settings, storage, model_name=model, model_directory=model_directory
    )
    request = training_request(
        options,
        settings,
        storage,
        model_name=model,
        model_directory=model_directory,
        decision_from=champion_version,
    )
    if champion_version is not None:
        err.print(
            f"the alternative takes the decision settings of {model}@{settings.model_alias} "
            f"(version {champion_version}): bands, master scale and points scaling",
            highlight=False,
            soft_wrap=True,
        )
    with progress_bar() as progress:

        def show(p: RoundProgress) -> None:
            progress("train the alternative", p.done, p.total)

        trained = train_in_subprocess(request, settings, on_progress=show)
    if as_json:
        document = {
            "study": result.model_dump(mode="json"),
            "trained": trained.manifest.model_dump(mode="json"),
        }
        out.print_json(json.dumps(document))
    else:
        train_summary(trained.manifest, trained.report, trained.promoted)
        version = trained.manifest.version
        out.print(
            f"compare it with the champion: loanrisk models compare {model}@production "
            f"{model}@{version}",
            highlight=False,
        )
