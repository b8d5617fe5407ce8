"""pygal, imported once and made harmless to the imports after it.

pygal appends a legacy import hook (for its world-map plugins, unused here) that has no
``find_spec``, so every failed import after it (an optional module probed in a ``try``, as
scipy does) raises an ImportWarning; it is taken out here, right after pygal is imported,
before any other module can be imported between the two."""

from __future__ import annotations

import sys

import pygal
from pygal.style import Style

sys.meta_path[:] = [f for f in sys.meta_path if not isinstance(f, pygal.PluginImportFixer)]

__all__ = ["Style", "pygal"]
