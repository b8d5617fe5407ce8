"""A scorecard version exported for people and databases (``loanrisk models export --format
scorecard``): its points table as CSV and as a standalone HTML page, and SQL that scores a
loan in a database as the scorer does (:mod:`.scorecard_sql`).

Files written (:func:`export_scorecard`):

* ``points.csv``: one row for the base points (``kind`` ``base``), then one per bin, attributes
  in the scorecard's order: ``attribute, bin, kind, lower, upper, categories, special_code,
  count, events, woe, points``. ``lower``/``upper`` (ranges: ``[lower, upper)``, empty for an
  open end) and ``woe`` are written to read back as the same doubles; ``categories`` is a
  JSON list (a category may hold any character but a control character).
* ``points.html``: one table per attribute (bins, counts, event rate, WoE, points), every
  name and label escaped; no script, no external request.
* ``score.sql``: the score as one SQL expression (:func:`~.scorecard_sql.score_sql`).
* ``probability.sql``: the PD the scorer serves, as one SQL expression
  (:func:`~.scorecard_sql.probability_sql`).
"""

from __future__ import annotations

import csv
import html
import io
import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from loanrisk.errors import InvalidInput
from loanrisk.registry.models import LoadedModel, ModelRegistry
from loanrisk.registry.scorecard import Scorecard
from loanrisk.reporting.scorecard_sql import probability_sql, score_range, score_sql

#: The points table's columns, in order.
CSV_COLUMNS = (
    "attribute",
    "bin",
    "kind",
    "lower",
    "upper",
    "categories",
    "special_code",
    "count",
    "events",
    "woe",
    "points",
)
FILES = ("points.csv", "points.html", "score.sql", "probability.sql")


@dataclass(frozen=True)
class ScorecardExport:
    """What :func:`export_scorecard` wrote: the directory and its files' names."""

    directory: Path
    files: tuple[str, ...]
    name: str
    version: int


def _float(value: float | None) -> str:
    return "" if value is None else repr(float(value))


def points_csv(scorecard: Scorecard) -> str:
    """The points table as CSV text (see the module for its columns)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    writer.writerow(["", "base points", "base", "", "", "", "", "", "", "", scorecard.base_points])
    for c in scorecard.characteristics:
        for b in c.bins:
            writer.writerow(
                [
                    c.name,
                    b.label,
                    b.kind,
                    _float(b.lower),
                    _float(b.upper),
                    json.dumps(b.categories, ensure_ascii=False) if b.categories else "",
                    "" if b.code is None else str(b.code),
                    b.count,
                    b.events,
                    repr(float(b.woe)),
                    b.points,
                ]
            )
    return buffer.getvalue()


_STYLE = """
body { font: 14px/1.4 system-ui, sans-serif; margin: 2em auto; max-width: 60em; color: #222; }
table { border-collapse: collapse; margin: 0.5em 0 2em; width: 100%; }
th, td { border-bottom: 1px solid #ddd; padding: 0.25em 0.6em; text-align: right; }
th:first-child, td:first-child { text-align: left; }
caption { text-align: left; font-weight: 600; padding: 0.3em 0; }
.negative { color: #a40000; }
"""


def _cell(value: object, *, css: str | None = None) -> str:
    attribute = f' class="{css}"' if css else ""
    return f"<td{attribute}>{html.escape(str(value))}</td>"


def points_html(model: LoadedModel, scorecard: Scorecard) -> str:
    """The points table as one standalone HTML page (every text escaped)."""
    e = html.escape
    s = scorecard.scaling
    low, high = score_range(scorecard)
    parts = [
        "<!doctype html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>Points table: {e(model.name)} version {model.version}</title>",
        f"<style>{_STYLE}</style></head><body>",
        f"<h1>Points table: {e(model.name)} version {model.version}</h1>",
        f"<p>Scaling: {s.points:g} points at good:bad odds of {s.odds:g}:1, {s.pdo:g} points "
        f"to double the odds. Base points: <strong>{scorecard.base_points}</strong>. A loan's "
        f"score is the base points plus its bin's points in each table ({low} to {high}); a "
        "value on a range's edge falls in the range above it.</p>",
    ]
    for c in scorecard.characteristics:
        title = model.schema.column(c.name).label_text if c.name in model.schema.by_name else ""
        caption = e(c.name) + (f" ({e(title)})" if title and title != c.name else "")
        iv = f", IV {c.iv:.4f}" if c.iv is not None else ""
        parts.append(f"<table><caption>{caption}: coefficient {c.coefficient:.4f}{iv}</caption>")
        parts.append(
            "<thead><tr><th>bin</th><th>loans</th><th>defaults</th><th>default rate</th>"
            "<th>WoE</th><th>points</th></tr></thead><tbody>"
        )
        for b in c.bins:
            rate = f"{b.events / b.count:.2%}" if b.count else ""
            css = "negative" if b.points < 0 else None
            parts.append(
                "<tr>"
                + _cell(b.label)
                + _cell(f"{b.count:,}")
                + _cell(f"{b.events:,}")
                + _cell(rate)
                + _cell(f"{b.woe:.4f}")
                + _cell(b.points, css=css)
                + "</tr>"
            )
        parts.append("</tbody></table>")
    parts.append("</body></html>\n")
    return "\n".join(parts)


def _header(model: LoadedModel, what: str) -> str:
    return (
        f"-- {what} of {model.name} version {model.version} (a scorecard), from a table whose\n"
        "-- columns are the schema's attribute names: one expression (no query around it).\n"
        "-- NULL: a loan the scorer refuses. Text is trimmed of the whitespace Python strips\n"
        "-- (the literal in each TRIM: space, no-break space and the Unicode spaces).\n"
        "-- docs/scorecard.md#export says how it reads each value.\n"
    )


def export_scorecard(
    registry: ModelRegistry, name: str, ref: str | int, directory: Path
) -> ScorecardExport:
    """Write version ``ref`` of ``name`` (a scorecard) to ``directory`` (new or empty): the
    files the module lists. InvalidInput naming the kind for a version that is not a
    scorecard, and when ``directory`` exists and is not an empty directory."""
    directory = directory.absolute()
    if directory.exists() and (not directory.is_dir() or any(directory.iterdir())):
        raise InvalidInput(f"{directory} exists and is not an empty directory")
    version = registry.resolve(name, ref)
    kind = registry.manifest(name, version).kind
    if kind != "scorecard":
        raise InvalidInput(
            f"model {name!r} version {version} is of kind {kind}: --format scorecard "
            "needs a version of kind scorecard (loanrisk train --kind scorecard)",
            details={"kind": kind},
        )
    model = registry.load(name, version)  # every file against its hash
    scorecard = model.scorecard
    assert scorecard is not None  # kind: scorecard
    contents = {
        "points.csv": points_csv(scorecard),
        "points.html": points_html(model, scorecard),
        "score.sql": _header(model, "The score (points)")
        + score_sql(scorecard, model.schema)
        + "\n",
        "probability.sql": _header(model, "The probability of default")
        + probability_sql(scorecard, model.schema)
        + "\n",
    }
    directory.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=directory.parent, prefix=f".{directory.name}.") as tmp:
        staged = Path(tmp, "export")
        staged.mkdir()
        for file, text in contents.items():
            Path(staged, file).write_text(text, encoding="utf-8")
        if directory.exists():
            directory.rmdir()  # empty, checked above
        os.replace(staged, directory)
    return ScorecardExport(directory, FILES, name, version)
