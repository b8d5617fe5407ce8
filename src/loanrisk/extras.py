"""The optional extras of loanrisk (pyproject's ``[project.optional-dependencies]``) that some
commands need and the serving image leaves out (docs/deploy-aws.md#images).

``tune`` (optuna) runs a hyperparameter search; ``scorecard`` (optbinning) fits optimal bins:
characteristic analysis and scorecard training. Scoring needs neither. Where a command that
needs one starts (its request builder, before any work), :func:`require` refuses with
:class:`~loanrisk.errors.NotInstalled`, naming the extra and the image that has it; the CLI
prints it as one line, HTTP answers 501.
"""

from __future__ import annotations

from importlib.util import find_spec
from typing import Literal

from loanrisk._version import __version__
from loanrisk.errors import NotInstalled

Extra = Literal["tune", "scorecard"]
#: Each extra's module, and what needs it.
EXTRAS: dict[Extra, tuple[str, str]] = {
    "tune": ("optuna", "hyperparameter search (loanrisk tune)"),
    "scorecard": ("optbinning", "optimal binning (scorecard training, characteristic analysis)"),
}
#: The image that holds every extra (``make image LOCK=runtime``).
FULL_IMAGE = "loanrisk-runtime"


def installed(extra: Extra) -> bool:
    """Whether ``extra``'s module can be imported (found, not imported: no cost)."""
    return find_spec(EXTRAS[extra][0]) is not None


def require(extra: Extra) -> None:
    """Return when ``extra`` is installed; else raise :class:`NotInstalled` naming it, its
    module and the image that has it (``details``: ``extra``, ``module``, ``image``)."""
    if installed(extra):
        return
    module, purpose = EXTRAS[extra]
    image = f"{FULL_IMAGE}:{__version__}"
    raise NotInstalled(
        f"{purpose} needs loanrisk's {extra!r} extra ({module}), which this installation "
        f"lacks (the serving image leaves it out): run it in the image {image}, or install "
        f"loanrisk[{extra}]",
        details={"extra": extra, "module": module, "image": image},
    )
