"""Model cards: one self-contained HTML file per model version (inline SVG charts and styles,
no script, no external request: its Content-Security-Policy forbids them), readable offline and
printable to PDF. Sections follow the Model Card Toolkit and a model-risk review: details,
intended use, data, quantitative analysis, the backtest on outcomes (with the vintage charts),
fairness, limitations, monitoring plan."""

from __future__ import annotations

import functools
from datetime import UTC, datetime
from importlib import resources

import jinja2

from loanrisk._version import __version__
from loanrisk.monitoring.reports import BACKTEST_DAYS
from loanrisk.registry.models import ModelRegistry
from loanrisk.reporting.facts import (
    VersionFacts,
    band_ranges,
    limitations,
    monitoring_plan,
    policy_lines,
    version_facts,
)
from loanrisk.reporting.formats import FILTERS
from loanrisk.reporting.outcomes import OutcomeBacktest, outcome_backtest
from loanrisk.settings import Settings

#: The Content-Security-Policy a card is served under: it loads nothing but its own inline
#: styles and data: images.
CARD_POLICY = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"


@functools.cache
def templates() -> jinja2.Environment:
    """The package's templates (console pages and cards), HTML-escaped by default."""
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("loanrisk", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(FILTERS)
    return env


@functools.cache
def stylesheet() -> str:
    return resources.files("loanrisk").joinpath("static", "style.css").read_text()


def model_card(registry: ModelRegistry, name: str, ref: str | int, settings: Settings) -> str:
    """The card of version ``ref`` of ``name``, as HTML, with the backtest of the loans it
    scored in the last :data:`~loanrisk.monitoring.reports.BACKTEST_DAYS` days joined to their
    outcomes (the prediction log and outcomes on the registry's storage; reads them all,
    in memory bounded as ``loanrisk monitor backtest``'s)."""
    facts = version_facts(registry, name, ref)
    found = outcome_backtest(registry, settings, name, facts.version, days=BACKTEST_DAYS)
    return card_of(facts, settings, outcomes=found)


def card_of(
    facts: VersionFacts, settings: Settings, *, outcomes: OutcomeBacktest | None = None
) -> str:
    """The card of the version ``facts`` describe, as HTML; its backtest on outcomes is
    ``outcomes`` (None: the section says the card was made from the version's records
    alone, as at publication)."""
    return (
        templates()
        .get_template("card.html")
        .render(
            facts=facts,
            m=facts.manifest,
            data=facts.dataset,
            limitations=limitations(facts),
            plan=monitoring_plan(facts, settings),
            policy_lines=policy_lines(facts.manifest, settings),
            bands=(
                band_ranges(facts.manifest.policy)
                if facts.manifest.policy is not None
                else "none recorded (the settings' apply)"
            ),
            outcomes=outcomes,
            css=stylesheet(),
            generated=datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
            loanrisk_version=__version__,
        )
    )
