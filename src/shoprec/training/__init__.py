"""Training and export: the only subpackage that imports torch (extra ``[train]``).

Importing it without torch installed fails at once with an install hint.
"""

from __future__ import annotations

import importlib.util

from shoprec.errors import DependencyError

_missing = [m for m in ("torch", "transformers") if importlib.util.find_spec(m) is None]
if _missing:
    raise DependencyError(
        f"shoprec.training needs {', '.join(_missing)}: pip install torch==2.13.0 && pip install 'shoprec[train]'"
    )
