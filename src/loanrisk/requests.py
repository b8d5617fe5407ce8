"""One request builder per job kind (DESIGN principle 20).

The command line, the v1 API, the reference's routes and the demo translate what their user
gave into a builder's arguments and call it; the builder makes the typed request the job
runs. Every default that comes from the settings (the seed, the decision policy, monotone
constraints, calibration, the size ceiling ...) or from stored state (a tuned study, the
parent's policy) is filled here and only here, so equivalent inputs give the identical
request whichever front end they came through.

Light: importing this loads no ML library; what a builder needs beyond the contracts
(the registry, a stored study) is imported when it runs.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from typing import TYPE_CHECKING

from loanrisk.contracts import (
    OnError,
    ProcessDataJob,
    ScoreJob,
    TrainingInputs,
    TrainingOptions,
    TrainingRequest,
    TuneJob,
    TuneOptions,
    check_size,
)
from loanrisk.errors import InvalidInput, LoanRiskError
from loanrisk.extras import require
from loanrisk.registry.scaling import DEFAULT_SCALING, Scaling, ScalingOptions

if TYPE_CHECKING:
    from loanrisk.registry.models import ModelRegistry
    from loanrisk.schema import LoanSchema
    from loanrisk.settings import Settings
    from loanrisk.storage.base import Storage

__all__ = [
    "champion",
    "champion_threshold",
    "process_data_job",
    "score_job",
    "training_request",
    "tune_job",
]


def training_request(
    options: TrainingOptions,
    settings: Settings,
    storage: Storage,
    *,
    model_name: str,
    model_directory: str,
    decision_from: int | None = None,
) -> TrainingRequest:
    """The training ``options`` ask for, in model ``model_name`` of ``model_directory``
    (both as the caller names them on ``storage``; a front end that confines paths resolves
    them first), every default filled. ``decision_from``, a version of the model, stands
    for the parent below where a training starts from scratch (a less discriminatory
    alternative takes its champion's decision settings, to be comparable and promotable):

    - ``params_from``: the study's trial gives the parameters (under ``params``), the rounds
      (unless ``rounds`` was given) and the monotone choice (unless ``monotone`` was); a
      search for a less discriminatory alternative also its threshold (unless ``threshold``
      was), the one its AIRs were counted at;
    - ``monotone`` and ``calibration`` not given: the settings' (a scorecard's calibration:
      none);
    - ``threshold`` and the bands not given: the setting when set explicitly, else the
      parent's policy (a continued training, or ``decision_from``), else the settings'
      defaults;
    - ``master_scale`` not given: the parent's (a continued training, or
      ``decision_from``), else the default scale;
    - each field of ``scaling`` not given: the parent's (a continued training, or
      ``decision_from``), else the default scaling's;
    - the seed: the settings'.

    :class:`~loanrisk.errors.InvalidInput` when the options do not make a request (a policy
    that does not hold, naming its field; a pick other than best or lean; ``params_from``
    with ``dataset_size``; parameters no backend could serve, such as a ``gblinear``
    booster or a ``num_class``, naming ``params.<name>``); :class:`~loanrisk.errors.NotFound`
    when the study or its dataset does not exist; :class:`~loanrisk.errors.NotInstalled` for
    a scorecard where the ``scorecard`` extra is not installed (the serving image).
    """
    if options.kind == "scorecard":
        require("scorecard")
    from loanrisk.registry.models import ModelRegistry
    from loanrisk.training.policy import parent_policy, training_policy, training_scale
    from loanrisk.training.train import check_params

    given = {name: getattr(options, name) for name in TrainingInputs.model_fields}
    rounds, monotone, tuned_from = options.rounds, options.monotone, None
    threshold = options.threshold
    if options.params_from is not None and options.kind == "scorecard":
        raise InvalidInput(
            "params_from: a scorecard takes no tuned XGBoost parameters",
            details={"field": "params_from"},
        )
    if options.params_from is not None:
        from loanrisk.training.tune import tuned_params

        if options.dataset_size is not None:
            raise InvalidInput(
                "params_from reads the study of a dataset named by id: not with a size",
                details={"field": "params_from"},
            )
        tuned = tuned_params(storage, options.data_directory, options.dataset, options.params_from)
        given["params"] = {**tuned.params, **options.params}
        if "rounds" not in options.model_fields_set:
            rounds = tuned.rounds
        if monotone is None:
            monotone = tuned.monotone
        tuned_from = tuned.provenance
        if threshold is None:  # a search's approvals were counted at its threshold
            threshold = tuned.threshold
    check_params(given["params"])
    registry = ModelRegistry(storage, model_directory)
    parent_ref = options.continue_from if options.continue_from is not None else decision_from
    parent = parent_policy(registry, model_name, parent_ref)
    policy = training_policy(
        settings,
        parent=parent,
        threshold=threshold,
        band_cutoffs=options.band_cutoffs,
        band_names=options.band_names,
    )
    return TrainingRequest(
        **given,
        model_name=model_name,
        model_directory=model_directory,
        rounds=rounds,
        monotone=settings.monotone if monotone is None else monotone,
        # A scorecard's PD is its score's: the calibration setting is the trees' alone.
        calibration=options.calibration
        or (settings.calibration if options.kind == "xgboost" else "none"),
        master_scale=training_scale(registry, model_name, parent_ref, options.master_scale),
        scaling=_training_scaling(registry, model_name, parent_ref, options.scaling),
        seed=settings.seed,
        tuned_from=tuned_from,
        **policy.model_dump(),
    )


def _training_scaling(
    registry: ModelRegistry,
    name: str,
    continue_from: str | int | None,
    given: ScalingOptions | None,
) -> Scaling:
    """The scaling a training records: the fields ``given`` over the parent's scaling (a
    continued training scores as its model did), else over the default scaling (also when
    the parent cannot be read, which the training's own checks report)."""
    base = DEFAULT_SCALING
    if continue_from is not None:
        with contextlib.suppress(LoanRiskError):
            base = registry.scaling(name, registry.resolve(name, continue_from))
    return base if given is None else given.over(base)


def process_data_job(
    settings: Settings,
    *,
    source: str,
    source_name: str,
    size: int | None = None,
    directory: str = "data",
    keep_columns: Sequence[str] = (),
    loan_schema: LoanSchema | None = None,
    staged: bool = False,
) -> ProcessDataJob:
    """A data-processing job for the raw loans at ``source`` (a storage path, confined by the
    caller), known to the client as ``source_name``: ``size`` held to the settings' ceiling
    (:class:`~loanrisk.errors.InvalidInput` naming ``size`` over it), and ``keep_columns``
    none of the schema's features or its label (naming ``keep_columns``), which the job
    would refuse."""
    from loanrisk.schema import builtin_schema

    schema = loan_schema or builtin_schema()
    own = {*schema.feature_names, schema.label_name}
    clash = [k for k in keep_columns if k.strip().lower() in own]  # as validation reads it
    if clash:
        raise InvalidInput(
            f"keep_columns: {', '.join(clash)} are the loans' features or label, not extras",
            details={"field": "keep_columns", "columns": clash},
        )
    return ProcessDataJob(
        source=source,
        source_name=source_name,
        size=check_size(size, settings),
        directory=directory,
        keep_columns=tuple(keep_columns),
        loan_schema=loan_schema,
        staged=staged,
    )


def tune_job(
    options: TuneOptions,
    settings: Settings,
    storage: Storage,
    *,
    dataset: str,
    data_directory: str,
    model_name: str,
    model_directory: str,
) -> TuneJob:
    """The tuning study ``options`` ask for, of ``dataset`` in ``data_directory`` (as the
    caller names them on ``storage``), seeded by the settings; a search for a less
    discriminatory alternative takes the AUC loss and the material AIR gain not given from
    the settings, and the decision threshold not given from :func:`champion_threshold`
    (model ``model_name`` of ``model_directory``): the approvals are counted where the
    champion decides. :class:`~loanrisk.errors.NotInstalled` where the ``tune`` extra is
    not installed (the serving image)."""
    require("tune")
    given = options.model_dump(exclude={"auc_loss", "min_air_gain", "threshold"})
    threshold, source = options.threshold, "given"
    if threshold is None and options.fairness is None:  # no approvals are counted
        threshold, source = settings.threshold, "LOANRISK_THRESHOLD"
    elif threshold is None:
        threshold, source = champion_threshold(
            settings, storage, model_name=model_name, model_directory=model_directory
        )
    return TuneJob(
        **given,
        dataset=dataset,
        data_directory=data_directory,
        seed=settings.seed,
        auc_loss=settings.lda_auc_loss if options.auc_loss is None else options.auc_loss,
        min_air_gain=(
            settings.lda_min_air_gain if options.min_air_gain is None else options.min_air_gain
        ),
        threshold=threshold,
        threshold_source=source,
    )


def champion(
    settings: Settings, storage: Storage, *, model_name: str, model_directory: str
) -> int | None:
    """The version the settings' alias (``model_alias``, the champion) names in model
    ``model_name`` of ``model_directory``; None when the model has none, or the alias
    cannot be read (stored items are read defensively: the default applies)."""
    from loanrisk.registry.models import ModelRegistry

    try:
        return ModelRegistry(storage, model_directory).resolve(model_name, settings.model_alias)
    except LoanRiskError:
        return None


def champion_threshold(
    settings: Settings, storage: Storage, *, model_name: str, model_directory: str
) -> tuple[float, str]:
    """The threshold the champion of ``model_name`` decides at as served
    (:func:`~loanrisk.registry.policy.served_policy`: ``LOANRISK_THRESHOLD`` when set
    explicitly, else the version's recorded policy), and where it came from, said for a
    person; with no champion (or none readable), the setting's."""
    from loanrisk.registry.models import ModelRegistry
    from loanrisk.registry.policy import served_policy

    version = champion(settings, storage, model_name=model_name, model_directory=model_directory)
    if version is None:
        return settings.threshold, f"LOANRISK_THRESHOLD (model {model_name!r} has no champion)"
    try:
        recorded = ModelRegistry(storage, model_directory).manifest(model_name, version).policy
    except LoanRiskError:
        recorded = None
    served = served_policy(recorded, settings)
    where = f"{model_name}@{settings.model_alias} (version {version})"
    said = {
        "setting": f"LOANRISK_THRESHOLD, which {where} is served with",
        "version": f"the champion {where}'s",
        "default": f"LOANRISK_THRESHOLD ({where} records no threshold)",
    }
    return served.policy.threshold, said[served.threshold_source]


def score_job(
    settings: Settings,
    *,
    source: str,
    output: str,
    model_name: str,
    model_directory: str,
    version: int,
    on_error: OnError = "raise",
    id_column: str | None = None,
    request_id: str | None = None,
    explain: bool = False,
    decline_reasons: bool = False,
) -> ScoreJob:
    """A batch-scoring job: the loans at ``source`` scored into a new results file at
    ``output`` (storage paths, confined by the caller) by ``version`` of ``model_name``,
    resolved by the caller from the settings' alias, which the job records as its ``ref``."""
    return ScoreJob(
        source=source,
        output=output,
        model_name=model_name,
        model_directory=model_directory,
        ref=settings.model_alias,
        version=version,
        on_error=on_error,
        id_column=id_column,
        request_id=request_id,
        explain=explain,
        decline_reasons=decline_reasons,
    )
