"""Charts of a version's report and of its monitoring, rendered on the server as inline SVG by
pygal (docs/console.md says why pygal): no browser, no network, no script in the output.

Every :class:`Chart` carries its numbers as a table too, the text alternative the console and
the model card show beside the picture.
"""

from __future__ import annotations

import itertools
import math
import re
import textwrap
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from html import escape
from typing import Any

from typing_extensions import TypedDict, Unpack

from loanrisk.monitoring.drift import SHIFT, STABLE, DriftReport
from loanrisk.registry.report import EvaluationReport, ParityReport
from loanrisk.reporting._pygal import Style, pygal
from loanrisk.reporting.formats import DASH, MISSING, count, decimal, percent
from loanrisk.reporting.importance import by_attribute, top_and_others
from loanrisk.schema import LoanSchema
from loanrisk.training.fairness import assessed
from loanrisk.validation.vintages import Vintages

#: The console's palette: blue for the model, orange for defaults, grey for references.
STYLE = Style(
    background="white",
    plot_background="white",
    foreground="#1f2933",
    foreground_strong="#1f2933",
    foreground_subtle="#7b8794",
    opacity="0.85",
    opacity_hover="0.95",
    colors=("#1f6fb2", "#d9730d", "#7b8794", "#2f9e44", "#c92a2a", "#6741d9", "#0c8599"),
    font_family="system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif",
    label_font_size=13,
    major_label_font_size=13,
    legend_font_size=13,
    title_font_size=15,
    value_font_size=12,  # numbers on bars and dots: 10 px still when a column shrinks a chart
    value_label_font_size=12,
    tooltip_font_size=12,
)
#: pygal embeds its configuration as an inline script for its (unused) tooltip library; pages
#: and cards forbid scripts, so it is cut out.
_SCRIPT = re.compile(r"<script\b.*?</script>", re.DOTALL)
DASHED = {"dasharray": "6, 4", "width": 1.5}
#: The drift chart's series of the probability of default (the drift report's PSI entry).
PD_SERIES = "probability"
#: The characters a legend entry holds whole in a legend of 3 and 2 columns at 640 px.
_LEGEND_CHARS = {3: 20, 2: 32}
#: Parity ratios inside [0.8, 1.25] pass the four-fifths rule of thumb.
FOUR_FIFTHS = (0.8, 1.25)
BAND = f"{FOUR_FIFTHS[0]}{DASH}{FOUR_FIFTHS[1]}"


@dataclass(frozen=True)
class Chart:
    """A chart (``svg``, markup of a trusted renderer) and its numbers (``columns``,
    ``rows``, already formatted) with a one-line ``summary`` for screen readers."""

    key: str
    title: str
    summary: str
    svg: str
    columns: tuple[str, ...]
    rows: Sequence[tuple[str, ...]]


class LegendOptions(TypedDict, total=False):
    """pygal's options for where the legend goes and how much room it takes."""

    legend_at_bottom: bool
    legend_at_bottom_columns: int
    truncate_legend: int | None
    height: int
    margin_bottom: int


class ChartOptions(LegendOptions, total=False):
    """The pygal options these charts set (pygal's ``Config`` names)."""

    style: Style
    js: list[str]
    disable_xml_declaration: bool
    width: int
    show_legend: bool
    show_dots: bool
    dots_size: float
    stroke_style: dict[str, float | str]
    print_labels: bool
    print_values: bool
    print_values_position: str
    margin_left: int
    range: tuple[float, float]
    xrange: tuple[float, float]
    x_title: str
    y_title: str
    x_labels: Sequence[str]
    x_label_rotation: int
    x_labels_major_every: int
    show_minor_x_labels: bool
    y_labels: Sequence[float]
    truncate_label: int
    value_formatter: Callable[[float], str]


def _config(**options: Unpack[ChartOptions]) -> ChartOptions:
    defaults = ChartOptions(
        style=STYLE,
        js=[],  # no script, no tooltip library fetched from a CDN
        disable_xml_declaration=True,
        width=640,
        height=400,
        legend_at_bottom=True,
        truncate_legend=-1,
    )
    return {**defaults, **options}


def _bottom_legend(titles: Sequence[str], *, rows: int = 3) -> LegendOptions:
    """Options for a legend under the plot that has room for ``titles``: as many columns as
    their length allows (three, two or one), the chart taller than 400 px when the legend
    takes more than ``rows`` rows, and a title truncated only past its column's width (its
    whole text then in a tooltip)."""
    longest = max(map(len, titles), default=0)
    columns = next(c for c in (3, 2, 1) if c == 1 or longest <= _LEGEND_CHARS[c])
    needed = -(-len(titles) // columns)
    row = 1.5 * max(STYLE.legend_font_size, 12)
    # pygal reserves len // columns rows, one too few for a partly filled last row
    short = needed - len(titles) // columns
    return LegendOptions(
        legend_at_bottom_columns=columns,
        truncate_legend=None,
        height=400 + round(row * max(needed - rows, 0)),
        margin_bottom=20 + round(row * short),
    )


def _render(chart: Any) -> str:
    return _SCRIPT.sub("", str(chart.render(is_unicode=True)))


def roc(report: EvaluationReport) -> Chart:
    curve = report.roc_curve
    points = list(zip(curve.fpr, curve.tpr, strict=True))
    chart = pygal.XY(
        **_config(
            xrange=(0, 1),
            range=(0, 1),
            x_title="False positive rate",
            y_title="True positive rate",
            show_dots=False,
            stroke_style={"width": 2.5},
        )
    )
    chart.add(f"Model (AUC {decimal(report.auc)})", points)
    chart.add("Chance", [(0, 0), (1, 1)], stroke_style=DASHED)
    rows = [
        (decimal(t, 3), percent(f), percent(r))
        for f, r, t in zip(curve.fpr, curve.tpr, curve.thresholds, strict=True)
    ]
    return Chart(
        "roc",
        "ROC curve",
        f"ROC curve of {len(points)} points; AUC {decimal(report.auc)}.",
        _render(chart),
        ("Threshold", "False positive rate", "True positive rate"),
        rows,
    )


def calibration(report: EvaluationReport) -> Chart:
    bins = [
        (b, b.mean_predicted, b.observed_rate)
        for b in report.calibration
        if b.count and b.mean_predicted is not None and b.observed_rate is not None
    ]
    chart = pygal.XY(
        **_config(
            xrange=(0, 1),
            range=(0, 1),
            x_title="Mean predicted probability of default",
            y_title="Observed default rate",
            print_labels=True,
            dots_size=5,
        )
    )
    chart.add(
        "Model",
        [
            {"value": (predicted, observed), "label": count(b.count)}
            for b, predicted, observed in bins
        ],
    )
    chart.add("Perfect calibration", [(0, 0), (1, 1)], stroke_style=DASHED, show_dots=False)
    rows = [
        (
            f"{b.bin[0]:.1f}{DASH}{b.bin[1]:.1f}",
            count(b.count),
            percent(b.mean_predicted),
            percent(b.observed_rate),
        )
        for b in report.calibration
    ]
    gap = max((abs(predicted - observed) for _, predicted, observed in bins), default=0.0)
    return Chart(
        "calibration",
        "Calibration (reliability curve, loans per bin labelled)",
        f"Reliability curve over {len(bins)} non-empty bins; the largest gap between "
        f"predicted and observed default rate is {percent(gap)}.",
        _render(chart),
        ("Predicted bin", "Loans", "Mean predicted", "Observed default rate"),
        rows,
    )


def probability_distribution(report: EvaluationReport) -> Chart | None:
    """Probabilities of default of the test loans by true label, as shares of each label
    (None for versions published before the report recorded them)."""
    distribution = report.probability_distribution
    if distribution is None:
        return None
    edges = distribution.edges
    labels = [f"{lo:.2f}{DASH}{hi:.2f}" for lo, hi in itertools.pairwise(edges)]
    series = {"Non-default": distribution.non_default, "Default": distribution.default}
    totals = {name: max(sum(counts), 1) for name, counts in series.items()}
    chart = pygal.Bar(
        **_config(
            x_labels=labels,
            x_label_rotation=45,
            x_title="Predicted probability of default",
            y_title="Share of the label's loans",
            value_formatter=lambda v: f"{v:.0%}",
            show_minor_x_labels=False,
            x_labels_major_every=4,
        )
    )
    for name, counts in series.items():
        chart.add(name, [c / totals[name] for c in counts])
    rows = [
        (
            label,
            count(n),
            percent(n / totals["Non-default"]),
            count(d),
            percent(d / totals["Default"]),
        )
        for label, n, d in zip(labels, series["Non-default"], series["Default"], strict=True)
    ]
    return Chart(
        "probabilities",
        "Probability of default by true label",
        f"Probabilities of default of {count(sum(series['Non-default']))} non-defaults and "
        f"{count(sum(series['Default']))} defaults in 20 bins.",
        _render(chart),
        ("PD bin", "Non-defaults", "Share", "Defaults", "Share"),
        rows,
    )


def confusion(report: EvaluationReport) -> Chart:
    m = report.confusion_matrix
    threshold = report.threshold
    chart = pygal.StackedBar(
        **_config(
            x_labels=["Actual non-default", "Actual default"],
            y_title="Loans",
            print_values=True,
            value_formatter=lambda v: f"{v:,.0f}",
            truncate_label=-1,  # pygal's guess gives each label half a bar's slot: "Actual non-d…"
        )
    )
    chart.add("Predicted non-default", [m.tn, m.fn])
    chart.add("Predicted default", [m.fp, m.tp])
    rows = [
        ("Actual non-default", count(m.tn), count(m.fp)),
        ("Actual default", count(m.fn), count(m.tp)),
    ]
    return Chart(
        "confusion",
        f"Confusion matrix at threshold {threshold:g}",
        f"At threshold {threshold:g}: {count(m.tp)} true positives, "
        f"{count(m.fp)} false positives, {count(m.tn)} true negatives, "
        f"{count(m.fn)} false negatives.",
        _render(chart),
        ("", "Predicted non-default", "Predicted default"),
        rows,
    )


#: The importance chart's geometry: pixels per bar, characters per line of a label (two
#: lines at most, then an ellipsis and the whole label in the title, the browser's tooltip).
_BAR = 34
_LINE = 24
#: Placeholders for the labels while pygal draws: Unicode's private-use area, never in text.
_TOKEN = 0xE000
_TICK_STEPS = (0.01, 0.02, 0.05, 0.1, 0.2, 0.25, 0.5)
#: The "others" bar's title names this many of its attributes.
_NAMED = 10
_VALUE = re.compile(r'<text text-anchor="middle" (x="[^"]*" y="[^"]*" class="value)')


def _text_width(characters: int) -> float:
    """pygal's estimate of a label's width in pixels (0.6 em a character)."""
    return characters * 0.6 * float(STYLE.label_font_size) + 10


def _wrapped(label: str) -> list[str]:
    return textwrap.wrap(label, _LINE, max_lines=2, placeholder=" \u2026") or [label[:_LINE]]


def _ticks(end: float, most: int = 6) -> list[float]:
    """Round ticks of a share from 0 to ``end`` or past it (never past 100%), ``most`` steps
    at most."""
    step = next((s for s in _TICK_STEPS if end / s < most), 1.0)
    steps = min(max(math.ceil(end / step - 1e-9), 1), round(1 / step))
    return [round(step * i, 4) for i in range(steps + 1)]


def _label(svg: str, token: str, lines: Sequence[str], title: str) -> str:
    """``svg`` with the axis label ``token`` replaced by ``lines`` (one ``tspan`` each,
    centred on the bar) and its title by ``title``."""
    svg = svg.replace(
        f'<desc class="x_label">{token}</desc>', f'<desc class="x_label">{escape(title)}</desc>'
    )
    found = re.search(
        rf'<text x="([^"]*)" y="([^"]*)"([^>]*)>{token}</text><title>[^<]*</title>', svg
    )
    if found is None:  # a label pygal did not draw: nothing to replace
        return svg
    x, y, rest = found.groups()
    first = -0.6 * (len(lines) - 1)
    spans = "".join(
        f'<tspan x="{x}" dy="{first if i == 0 else 1.2:.2f}em">{escape(line)}</tspan>'
        for i, line in enumerate(lines)
    )
    return (
        svg[: found.start()] + f'<text x="{x}" y="{y}"{rest}>{spans}</text><title>'
        f"{escape(title)}</title>" + svg[found.end() :]
    )


def importance(
    gain: Mapping[str, float], *, schema: LoanSchema | None = None, top: int = 15
) -> Chart | None:
    """Gain per attribute (:func:`by_attribute`: one-hot inputs summed, labelled by the
    schema's titles), the ``top`` largest as bars, the rest summed in one grey bar; the table
    lists every attribute. Per-input gain of any version (``name=category``) is summed by its
    prefix. None for a model without splits."""
    ranked = by_attribute(gain, schema=schema)
    if not ranked:
        return None
    total = sum(a.gain for a in ranked) or 1.0
    shown, others = top_and_others(ranked, top)
    bars = [*shown, *([others] if others else [])]
    lines = [_wrapped(bar.label) for bar in bars]
    # pygal sizes the label column by its labels' length and cannot wrap them: it gets one
    # private-use character per bar, the column's width as a margin, and the lines afterwards.
    tokens = [chr(_TOKEN + i) for i in range(len(bars))]
    widest = max(len(line) for label in lines for line in label)
    shares = [bar.gain / total for bar in bars]
    end = max(shares) * 1.125  # room for the value printed after the longest bar
    ticks = _ticks(end)
    chart = pygal.HorizontalBar(
        **_config(
            show_legend=False,
            x_title="Share of total gain",
            value_formatter=lambda v: f"{v:.0%}",
            height=_BAR * len(bars) + 90,
            x_labels=list(reversed(tokens)),
            print_values=True,
            print_values_position="top",
            margin_left=round(_text_width(widest)),
            y_labels=ticks,
            range=(0, max(ticks[-1], end)),
        )
    )
    chart.add(
        "Share of total gain",
        [
            {
                "value": share,
                "color": STYLE.colors[2 if bar is others else 0],
                "formatter": lambda v: f"{v:.1%}",
                "tooltip": f"{bar.label}: {share:.1%}",
            }
            for bar, share in reversed(list(zip(bars, shares, strict=True)))
        ],
    )
    rest = ranked[len(shown) :]
    named = ", ".join(a.label for a in rest[:_NAMED]) + (", \u2026" if len(rest) > _NAMED else "")
    # each share just past the end of its bar, not centred across it, on a white halo where
    # a guide line crosses it
    svg = _VALUE.sub(
        r'<text text-anchor="start" dx="4" stroke="white" stroke-width="3" '
        r'paint-order="stroke" \1',
        _render(chart),
    )
    for token, bar, label in zip(tokens, bars, lines, strict=True):
        svg = _label(svg, token, label, f"{bar.label}: {named}" if bar is others else bar.label)
    rows = [(a.label, count(a.inputs), decimal(a.gain, 1), percent(a.gain / total)) for a in ranked]
    summary = f"{ranked[0].label} carries {percent(ranked[0].gain / total)} of the total gain"
    if others is not None:
        summary += (
            f"; the other {count(len(ranked) - len(shown))} attributes, "
            f"{percent(others.gain / total)}"
        )
    return Chart(
        "importance",
        f"Top {len(shown)} of {len(ranked)} attributes by gain"
        if others
        else f"{len(ranked)} attributes by gain",
        summary + ".",
        svg,
        ("Attribute", "Model inputs", "Total gain", "Share"),
        rows,
    )


def parity(fairness: ParityReport) -> Chart:
    ratios = fairness.parity
    chart = pygal.HorizontalBar(
        **_config(
            show_legend=False,
            x_title="Privileged / non-privileged rate",
            value_formatter=lambda v: f"{v:.2f}",
            height=380,
        )
    )
    chart.x_labels = list(reversed(ratios))
    chart.add("Parity ratio", list(reversed(ratios.values())))
    groups = fairness.groups
    rows = [
        (
            rate,
            decimal(groups.privileged.rate(rate), 3),
            decimal(groups.non_privileged.rate(rate), 3),
            decimal(value, 3),
            MISSING
            if value is None
            else ("within" if FOUR_FIFTHS[0] <= value <= FOUR_FIFTHS[1] else "outside"),
        )
        for rate, value in ratios.items()
    ]
    outside = [r[0] for r in rows if r[4] == "outside"]
    return Chart(
        f"parity-{fairness.attribute}",
        f"Parity ratios over {fairness.attribute}",
        f"{len(outside)} of {len(rows)} ratios outside {BAND}"
        + (f": {', '.join(outside)}." if outside else "."),
        _render(chart),
        ("Rate", "Privileged", "Non-privileged", "Ratio", BAND),
        rows,
    )


def drift_over_time(days: Sequence[DriftReport], *, top: int = 6) -> Chart | None:
    """PSI of the probability of default and CSI of the ``top`` most-shifted features, one
    point per day, with the 0.1 and 0.25 bands drawn; ``days`` are drift reports of single
    days. Indices are read as the reports write them (six decimals)."""
    scored = [d for d in days if d.rows]
    if not scored:
        return None
    worst: dict[str, float] = {}
    for day in scored:
        for feature in day.features:
            worst[feature.name] = max(worst.get(feature.name, 0.0), round(feature.index, 6))
    names = [PD_SERIES, *sorted(worst, key=lambda n: worst[n], reverse=True)[:top]]

    def index(day: DriftReport, name: str) -> float | None:
        if name == PD_SERIES:
            return round(day.probability.index, 6) if day.probability else None
        return next((round(f.index, 6) for f in day.features if f.name == name), None)

    def since(day: DriftReport) -> str:
        return day.since.isoformat()[:10] if day.since else "None"

    labels = [since(d) for d in days]  # the whole window, days without loans too
    legend = [f"{PD_SERIES} (PSI)", *names[1:], f"{STABLE} investigate", f"{SHIFT} shift"]
    chart = pygal.Line(
        **_config(
            x_labels=labels,
            x_label_rotation=30,
            y_title="PSI / CSI",
            dots_size=3,
            value_formatter=lambda v: f"{v:.3f}",
            show_minor_x_labels=False,
            x_labels_major_every=max(1, len(labels) // 10),
            **_bottom_legend(legend),
        )
    )
    for name in names:
        chart.add(
            name if name != PD_SERIES else f"{PD_SERIES} (PSI)",
            [index(d, name) if d.rows else None for d in days],
        )
    chart.add(f"{STABLE} investigate", [STABLE] * len(days), stroke_style=DASHED, show_dots=False)
    chart.add(f"{SHIFT} shift", [SHIFT] * len(days), stroke_style=DASHED, show_dots=False)
    labels = [since(d) for d in scored]
    rows = [
        (label, count(d.rows), *(decimal(index(d, n), 3) for n in names))
        for label, d in zip(labels, scored, strict=True)
    ]
    return Chart(
        "drift",
        "Drift by day (PSI of the probability of default, CSI of the most-shifted features)",
        f"{len(scored)} days with scored loans; bands at {STABLE} and {SHIFT}.",
        _render(chart),
        ("Day", "Loans", *names),
        rows,
    )


def vintage_curves(found: Vintages, *, cohorts: int = 12, by_amount: bool = False) -> Chart | None:
    """The cumulative default rate of the ``cohorts`` latest origination months by months on
    book, one line each, to the last month on book any of them was observed: by count, or
    ``by_amount`` (the share of the amount lent that defaulted; None when the vintages carry
    no amounts). None when no loan was observed."""
    shown = [c for c in found.cohorts if any(c.observed)][-cohorts:]
    if not shown or (by_amount and any(c.rate_by_amount is None for c in shown)):
        return None
    width = 1 + max(max(m for m, n in enumerate(c.observed) if n) for c in shown)
    months = [str(m) for m in found.months_on_book[:width]]
    chart = pygal.Line(
        **_config(
            x_labels=months,
            x_title="Months on book",
            y_title="Cumulative default rate" + (" by amount" if by_amount else ""),
            dots_size=3,
            value_formatter=lambda v: f"{v:.1%}",
            show_minor_x_labels=False,
            x_labels_major_every=max(1, width // 12),
            **_bottom_legend([c.month for c in shown]),
        )
    )
    rates = [(c.rate_by_amount or []) if by_amount else c.rate_by_count for c in shown]
    for cohort, rate in zip(shown, rates, strict=True):
        chart.add(cohort.month, rate[:width])
    rows = [
        (
            c.month,
            decimal(c.amount or 0.0, 0) if by_amount else count(c.loans),
            *(percent(r, 1) for r in rate[:width]),
        )
        for c, rate in zip(shown, rates, strict=True)
    ]
    if by_amount:
        return Chart(
            "vintages-amount",
            "Vintages by amount: cumulative share of the amount lent that defaulted",
            f"{len(shown)} origination months, up to {width - 1} months on book, weighted by "
            "each loan's amount.",
            _render(chart),
            ("Month", "Amount", *months),
            rows,
        )
    return Chart(
        "vintages",
        "Vintages: cumulative default rate by origination month and months on book",
        f"{len(shown)} origination months, up to {width - 1} months on book.",
        _render(chart),
        ("Month", "Loans", *months),
        rows,
    )


def report_charts(
    report: EvaluationReport, gain: Mapping[str, float], *, schema: LoanSchema | None = None
) -> list[Chart]:
    """Every chart of a version: ROC, calibration, scores by label, confusion matrix, the top
    attributes by gain (``gain`` by model input, titled by ``schema``) and, when the report
    has one, the fairness parity ratios."""
    charts = [
        roc(report),
        calibration(report),
        probability_distribution(report),
        confusion(report),
        importance(gain, schema=schema),
    ]
    charts += [parity(fairness) for fairness in assessed(report)]
    return [c for c in charts if c is not None]
