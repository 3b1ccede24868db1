"""Collection of the package directories (``--doctest-modules`` over tfgym/, agents/ ...).

``agents/rllib.py`` imports Ray at module level: its doctests are collected only where the
``ray`` extra is installed (``.ci/run``'s second environment runs them).
"""

from __future__ import annotations

import importlib.util

collect_ignore = [] if importlib.util.find_spec("ray") else ["agents/rllib.py"]
