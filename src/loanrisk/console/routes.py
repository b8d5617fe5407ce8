"""The console (docs/console.md): server-rendered pages at ``/`` and under ``/console``.

Models with their versions and aliases (promote and roll back for admins), a version's report
with its charts and model card, datasets with their quality and an upload form, jobs with live
progress and cancel, and monitoring. Pages read through the same registry, catalogue and job
manager as the API; forms go through the same checks (typed fields, confined paths, upload
limits) and are refused with a page naming the problem.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Depends, FastAPI, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, Field, ValidationError
from starlette.concurrency import run_in_threadpool

from loanrisk.console import backtest, views
from loanrisk.console.session import (
    CSRF_FIELD,
    MAX_KEY_LENGTH,
    LoginRequired,
    Viewer,
    check_key,
    check_write,
    clear_login,
    csrf_token,
    keep_csrf,
    login_url,
    safe_next,
    set_login,
    viewer,
)
from loanrisk.data.characteristics import Characteristics, characteristics, limits_of
from loanrisk.data.datasets import DatasetCatalogue
from loanrisk.errors import Forbidden, InvalidInput, LoanRiskError
from loanrisk.inference.scorer import servable_check
from loanrisk.registry.models import PRODUCTION, check_name
from loanrisk.reporting.card import CARD_POLICY, model_card, templates
from loanrisk.reporting.facts import policy_lines, version_facts
from loanrisk.schema import builtin_schema
from loanrisk.serving.errors import invalid_fields, status_of
from loanrisk.serving.state import Services, registry_of, services_of, store_of
from loanrisk.serving.uploads import upload_job

router = APIRouter(include_in_schema=False)
ViewerDep = Annotated[Viewer, Depends(viewer)]
#: Pages load their own stylesheet and script only; nothing may frame them.
PAGE_POLICY = (
    "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; "
    "script-src 'self'; frame-ancestors 'none'; form-action 'self'"
)


def page(request: Request, template: str, status: int = 200, **context: Any) -> HTMLResponse:
    """A rendered page with the console's security headers (and the CSRF cookie if new)."""
    services = services_of(request.app)
    html = (
        templates()
        .get_template(template)
        .render(
            request=request,
            csrf=csrf_token(request),
            csrf_field=CSRF_FIELD,
            settings=services.settings,
            path=request.url.path,
            **context,
        )
    )
    response = HTMLResponse(
        html,
        status,
        headers={
            "Content-Security-Policy": PAGE_POLICY,
            "X-Frame-Options": "DENY",
            "Referrer-Policy": "same-origin",
            "Cache-Control": "no-store",
        },
    )
    keep_csrf(response, request)
    return response


async def _guarded(
    request: Request, who: Viewer | None, work: Callable[[], Awaitable[Response]]
) -> Response:
    """Run a page; a loanrisk error becomes an error page with the API's status code."""
    try:
        return await work()
    except LoanRiskError as exc:
        return page(request, "error.html", status_of(exc), viewer=who, error=exc)


def _may_write(request: Request, who: Viewer, sent: object) -> None:
    """A form this site made (:func:`check_write`), sent by an admin."""
    check_write(request, sent)
    if not who.admin:
        raise Forbidden("this key has scope 'score'; changes need an admin key")


async def _write(request: Request, who: Viewer) -> dict[str, str]:
    """A write's form, after the CSRF and scope checks."""
    async with request.form(max_files=0, max_fields=16) as form:
        fields = {k: v for k, v in form.items() if isinstance(v, str)}
    _may_write(request, who, fields.get(CSRF_FIELD))
    return fields


# -- login -------------------------------------------------------------------------------


@router.get("/")
async def home() -> RedirectResponse:
    return RedirectResponse("/console/", 303)


@router.get("/console/login")
async def login_form(request: Request, next: str = "/") -> Response:
    return page(request, "login.html", viewer=None, next=safe_next(next), error=None)


@router.post("/console/login")
async def login(request: Request) -> Response:
    async with request.form(max_files=0, max_fields=4) as form:
        key, sent, target = (str(form.get(f) or "") for f in ("key", CSRF_FIELD, "next"))
    target = safe_next(target)
    try:
        check_write(request, sent)
        if not key or len(key) > MAX_KEY_LENGTH:
            raise InvalidInput("enter an API key", details={"field": "key"})
        check_key(services_of(request.app).keys, key)
    except LoanRiskError as exc:
        return page(request, "login.html", status_of(exc), viewer=None, next=target, error=exc)
    response = RedirectResponse(target, 303)
    set_login(response, request, key)
    return response


@router.post("/console/logout")
async def logout(request: Request) -> Response:
    async with request.form(max_files=0, max_fields=2) as form:
        check_write(request, form.get(CSRF_FIELD))
    response = RedirectResponse("/console/login", 303)
    clear_login(response)
    return response


# -- models ------------------------------------------------------------------------------


@router.get("/console/")
async def models_page(request: Request, who: ViewerDep) -> Response:
    services = services_of(request.app)
    registry = registry_of(services, None)

    async def work() -> Response:
        listed = await run_in_threadpool(views.models, registry)
        models = listed.models
        model, _, alias = request.query_params.get("moved", "").partition("/")
        moved = next(
            (
                {"model": m.name, "alias": alias, **m.aliases[alias]}
                for m in models
                if m.name == model and alias in m.aliases
            ),
            None,
        )
        return page(
            request,
            "models.html",
            viewer=who,
            models=models,
            moved=moved,
            problems=listed.problems,
        )

    return await _guarded(request, who, work)


class AliasForm(BaseModel):
    """The promote and rollback forms."""

    action: str = Field(pattern="^(promote|rollback)$")
    alias: str = Field(PRODUCTION, min_length=1, max_length=64)
    version: str | None = Field(None, max_length=12)
    reason: str = Field(min_length=1, max_length=500, description="Recorded in the history.")
    confirm: str = Field(pattern="^yes$", description="The confirmation box was ticked.")


FormT = TypeVar("FormT", bound=BaseModel)

#: Plainer words than the validator's for the form fields people most often leave out.
PLAIN = {"confirm": "tick the box to confirm", "reason": "give a reason"}


def _form(model: type[FormT], fields: dict[str, str]) -> FormT:
    try:
        return model.model_validate(fields)
    except ValidationError as exc:
        error = invalid_fields(exc, prefix="")
        field = error.details["field"]
        if field in PLAIN:
            raise InvalidInput(f"{field}: {PLAIN[field]}", details=error.details) from None
        raise error from None


@router.post("/console/models/{name}/aliases")
async def change_alias(name: str, request: Request, who: ViewerDep) -> Response:
    services = services_of(request.app)

    async def work() -> Response:
        body = _form(AliasForm, await _write(request, who))
        registry = registry_of(services, None)
        model, alias = check_name("model", name), check_name("alias", body.alias)
        check = servable_check(services.settings)
        if body.action == "promote":
            version = body.version
            if not version:
                raise InvalidInput("version: choose a version", details={"field": "version"})
            await run_in_threadpool(
                lambda: registry.promote(
                    model, version, alias, check=check, by=who.name, reason=body.reason
                )
            )
        else:
            await run_in_threadpool(
                lambda: registry.rollback(
                    model, alias, check=check, by=who.name, reason=body.reason
                )
            )
        await run_in_threadpool(services.models.refresh, registry.root, model)
        return RedirectResponse(f"/console/?moved={model}/{alias}#model-{model}", 303)

    return await _guarded(request, who, work)


@router.get("/console/models/{name}/versions/{ref}")
async def version_page(name: str, ref: str, request: Request, who: ViewerDep) -> Response:
    registry = registry_of(services_of(request.app), None)

    async def work() -> Response:
        facts = await run_in_threadpool(version_facts, registry, check_name("model", name), ref)
        lines = policy_lines(facts.manifest, services_of(request.app).settings)
        return page(request, "version.html", viewer=who, facts=facts, policy_lines=lines)

    return await _guarded(request, who, work)


@router.get("/console/models/{name}/versions/{ref}/card")
async def card_page(name: str, ref: str, request: Request, who: ViewerDep) -> Response:
    services = services_of(request.app)
    registry = registry_of(services, None)

    async def work() -> Response:
        html = await run_in_threadpool(
            model_card, registry, check_name("model", name), ref, services.settings
        )
        return HTMLResponse(html, headers={"Content-Security-Policy": CARD_POLICY})

    return await _guarded(request, who, work)


# -- datasets ----------------------------------------------------------------------------


def _catalogue(services: Services) -> DatasetCatalogue:
    return DatasetCatalogue(services.storage, services.storage.resolve("data"))


@router.get("/console/datasets")
async def datasets_page(request: Request, who: ViewerDep) -> Response:
    services = services_of(request.app)
    catalogue = _catalogue(services)

    async def work() -> Response:
        listed = await run_in_threadpool(views.datasets, catalogue)
        # The upload form's choice: the built-in schema (the default) or a stored one.
        schemas = await run_in_threadpool(store_of(services).names) if who.admin else []
        return page(
            request,
            "datasets.html",
            viewer=who,
            datasets=listed.datasets,
            problems=listed.problems,
            schemas=schemas,
            builtin=builtin_schema().name,
        )

    return await _guarded(request, who, work)


@router.post("/console/datasets")
async def upload(request: Request, who: ViewerDep) -> Response:
    services = services_of(request.app)

    async def work() -> Response:
        async with request.form(max_files=1, max_fields=8) as form:
            _may_write(request, who, form.get(CSRF_FIELD))
            params = await upload_job(services, form)
        record, _ = await run_in_threadpool(services.jobs.submit, params)
        return RedirectResponse(f"/console/jobs/{record.id}", 303)

    return await _guarded(request, who, work)


@router.get("/console/datasets/{dataset_id}")
async def dataset_page(dataset_id: str, request: Request, who: ViewerDep) -> Response:
    catalogue = _catalogue(services_of(request.app))

    async def work() -> Response:
        manifest = await run_in_threadpool(catalogue.resolve, dataset_id)
        limits = limits_of(services_of(request.app).settings)
        try:  # computed on the first view, then read back (docs/scorecard.md)
            analysis: Characteristics | None = await run_in_threadpool(
                characteristics, catalogue, manifest.id, limits=limits
            )
            problem = None
        except LoanRiskError as exc:  # the page still shows the manifest
            analysis, problem = None, exc.message
        return page(
            request,
            "dataset.html",
            viewer=who,
            data=manifest,
            characteristics=analysis,
            characteristics_problem=problem,
        )

    return await _guarded(request, who, work)


# -- jobs --------------------------------------------------------------------------------


@router.get("/console/jobs")
async def jobs_page(request: Request, who: ViewerDep) -> Response:
    jobs = services_of(request.app).jobs

    async def work() -> Response:
        listed = await run_in_threadpool(views.jobs, jobs, 100)
        return page(request, "jobs.html", viewer=who, jobs=listed.jobs, problems=listed.problems)

    return await _guarded(request, who, work)


@router.get("/console/jobs/{job_id}")
async def job_page(job_id: str, request: Request, who: ViewerDep) -> Response:
    jobs = services_of(request.app).jobs

    async def work() -> Response:
        record = await run_in_threadpool(jobs.get, job_id)
        return page(request, "job.html", viewer=who, job=record)

    return await _guarded(request, who, work)


@router.get("/console/jobs/{job_id}/state")
async def job_state(job_id: str, request: Request, who: ViewerDep) -> Response:
    """The job record as JSON, for the job page's live progress (polled once a second)."""
    try:
        record = await run_in_threadpool(services_of(request.app).jobs.get, job_id)
    except LoanRiskError as exc:
        return JSONResponse({"error": exc.to_dict()}, status_of(exc))
    return JSONResponse(record.model_dump(mode="json"), headers={"Cache-Control": "no-store"})


@router.post("/console/jobs/{job_id}/cancel")
async def cancel(job_id: str, request: Request, who: ViewerDep) -> Response:
    jobs = services_of(request.app).jobs

    async def work() -> Response:
        await _write(request, who)
        await run_in_threadpool(jobs.cancel, job_id)
        return RedirectResponse(f"/console/jobs/{job_id}", 303)

    return await _guarded(request, who, work)


# -- monitoring --------------------------------------------------------------------------


@router.get("/console/monitoring")
async def monitoring_page(
    request: Request,
    who: ViewerDep,
    days: Annotated[int, Query(ge=1, le=366)] = 14,
) -> Response:
    services = services_of(request.app)
    settings = services.settings

    async def work() -> Response:
        registry = registry_of(services, None)
        report = await run_in_threadpool(
            views.monitoring, services.storage, registry, settings, settings.model_name, days
        )
        return page(
            request, "monitoring.html", viewer=who, report=report, choices=views.DAY_CHOICES
        )

    return await _guarded(request, who, work)


@router.get("/console/backtest")
async def backtest_page(
    request: Request,
    who: ViewerDep,
    days: Annotated[int, Query(ge=1, le=3660)] = 365,
) -> Response:
    services = services_of(request.app)
    settings = services.settings

    async def work() -> Response:
        registry = registry_of(services, None)
        found = await run_in_threadpool(
            backtest.backtest_page, registry, settings, settings.model_name, days
        )
        return page(request, "backtest.html", viewer=who, page=found, choices=backtest.DAY_CHOICES)

    return await _guarded(request, who, work)


def install(app: FastAPI) -> None:
    """Add the console's pages, its static files, and the redirect to the login form."""
    app.include_router(router)
    app.mount("/console/static", StaticFiles(packages=[("loanrisk", "static")]), name="static")

    @app.exception_handler(LoginRequired)
    async def to_login(request: Request, exc: LoginRequired) -> Response:
        if request.url.path.endswith("/state"):  # the job page's polling: it stops and says so
            return JSONResponse(
                {"error": {"code": "unauthenticated", "message": "log in again"}}, 401
            )
        # A form sent after the login expired: log in again, then back to the console (the
        # form is not replayed: its CSRF token and its intent are the person's to confirm).
        target = exc.target if request.method == "GET" else "/console/"
        return RedirectResponse(login_url(target), 303)
