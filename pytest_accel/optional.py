"""Optional packages (the extras): whether one is installed here, found without importing it, and what to install.

Below both the options (which refuse ``--accel-html`` early without matplotlib) and the report that draws with it.
"""

from __future__ import annotations

import importlib.util

#: what pip installs for the HTML report's charts
HTML_EXTRA = "pytest-accel[html]"


def matplotlib_missing() -> str | None:
    """Why the charts cannot be drawn here, or None when they can."""
    try:
        found = importlib.util.find_spec("matplotlib") is not None
    except (ImportError, ValueError):
        found = False
    return None if found else f"matplotlib is not installed: pip install '{HTML_EXTRA}'"
