"""``python -m loanrisk.cli``: the ``loanrisk`` command."""

from loanrisk.cli import main

main()
