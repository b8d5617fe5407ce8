"""The error tree's one-line descriptions, safe to show a client."""

from __future__ import annotations


def test_error_descriptions_hide_server_paths_but_keep_ratios() -> None:
    from loanrisk.errors import describe_error

    assert describe_error(OSError("cannot open /srv/data/x.json")) == "OSError: cannot open <path>"
    assert describe_error(ValueError("too few to split 75%/25%")).endswith("75%/25%")
