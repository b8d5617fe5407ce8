"""Reading schema files (YAML or JSON) and the built-in schema, with one clear line per error.

A schema's text follows the shared rule for free text (``loanrisk.schema.text``): no control
character but tab and line breaks, nothing UTF-8 cannot encode; a document nested deeper than
the parser can follow is refused as one, not as a crash.
"""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from loanrisk.errors import InvalidInput
from loanrisk.schema.model import LoanSchema
from loanrisk.schema.text import free_text_problem, strings

#: Largest schema file read (a schema of a few hundred columns is ~100 KB).
MAX_SCHEMA_BYTES = 1 << 20


@cache
def builtin_schema() -> LoanSchema:
    """The public dataset's eleven features and label: the default schema everywhere."""
    text = resources.files("loanrisk.schema").joinpath("builtin.yaml").read_text("utf-8")
    return parse_schema(text, source="the built-in schema")


def _where(doc: Any, loc: tuple[int | str, ...]) -> str:
    """``columns[3] (loan_grade).risk`` for a pydantic error location."""
    parts: list[str] = []
    node = doc
    for step in loc:
        if isinstance(step, int):
            parts[-1:] = [f"{parts[-1] if parts else ''}[{step}]"]
            node = node[step] if isinstance(node, list) and step < len(node) else None
            if isinstance(node, dict) and isinstance(node.get("name"), str):
                parts[-1] += f" ({node['name']})"
        else:
            parts.append(str(step))
            node = node.get(step) if isinstance(node, dict) else None
    return ".".join(parts)


def schema_problems(doc: Any, error: ValidationError) -> list[str]:
    """One line per problem of a schema document."""
    lines = []
    for item in error.errors():
        loc = tuple(s for s in item["loc"] if not str(s).startswith("function-after"))
        message = str(item["msg"]).removeprefix("Value error, ")
        if item["type"] == "literal_error" and "expected" in (item.get("ctx") or {}):
            message = f"must be one of {item['ctx']['expected']}"
        where = _where(doc, loc)
        lines.append(f"{where}: {message}" if where else message)
    return lines


def parse_schema(text: str | bytes, *, source: str = "schema") -> LoanSchema:
    """A :class:`LoanSchema` from YAML or JSON text; :class:`InvalidInput` with one line per
    problem (``details["problems"]``) when it is not one."""
    if len(text) > MAX_SCHEMA_BYTES:
        raise InvalidInput(f"{source}: larger than {MAX_SCHEMA_BYTES:,} bytes")
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise InvalidInput(f"{source}: not YAML or JSON{where}") from None
    except RecursionError:
        raise InvalidInput(f"{source}: nested too deeply to be a schema") from None
    return schema_from_doc(doc, source=source)


def schema_from_doc(doc: Any, *, source: str = "schema") -> LoanSchema:
    """A :class:`LoanSchema` from a parsed document (e.g. a JSON body)."""
    if not isinstance(doc, dict):
        raise InvalidInput(f"{source}: a schema is a mapping with name and columns")
    for place, value in strings(doc):
        problem = free_text_problem(value)
        if problem is not None:
            raise InvalidInput(f"{source}: {place}: {problem}", details={"problems": [place]})
    try:
        return LoanSchema.model_validate(doc)
    except RecursionError:
        raise InvalidInput(f"{source}: nested too deeply to be a schema") from None
    except ValidationError as exc:
        problems = schema_problems(doc, exc)
        raise InvalidInput(
            f"{source}: " + "; ".join(problems), details={"problems": problems}
        ) from None


def read_schema(path: str | Path) -> LoanSchema:
    """A schema file from a local path."""
    file = Path(path)
    try:
        size = file.stat().st_size
        if size > MAX_SCHEMA_BYTES:
            raise InvalidInput(f"{file.name}: larger than {MAX_SCHEMA_BYTES:,} bytes")
        return parse_schema(file.read_bytes(), source=file.name)
    except FileNotFoundError:
        raise InvalidInput(f"no such schema file: {path}") from None


def json_schema() -> str:
    """The JSON Schema of schema files, for editors (docs/schema.schema.json)."""
    doc = LoanSchema.model_json_schema()
    doc["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    doc["title"] = "loanrisk loan schema"
    return json.dumps(doc, indent=2) + "\n"
