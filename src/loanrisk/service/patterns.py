"""The patterns the document declares for names and references, as their parsers check them.

Each is the exact set its parser accepts (``registry/models.py``: :func:`check_name` and
:meth:`ModelRegistry.resolve`), so that the OpenAPI document neither promises what is refused
nor hides what is accepted (schemathesis holds it to that: tests/service/test_fuzz.py).
"""

from __future__ import annotations

#: A model, alias or schema name (``check_name``): letters, digits, '.', '_', '-', at most
#: 64, no '..'.
NAME = r"^(?!.*\.\.)[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"
#: A reference to a version (``ModelRegistry.resolve``): a number of at most nine digits,
#: with or without a leading 'v', or a name (``latest``, an alias) that does not start like
#: one (a digit, or 'v' and a digit).
REF = r"^(?!.*\.\.)(?:v?[0-9]{1,9}|(?!v?[0-9])[A-Za-z0-9][A-Za-z0-9._-]{0,63})$"
#: A version number (the OIP routes' ``{version}``).
NUMBER = r"^[0-9]{1,9}$"
