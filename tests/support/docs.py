"""The generators under docs/ (scripts, not a package), loaded as modules for the tests that check the
committed pages against what they produce now."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]


def doc_generator(name: str) -> Any:
    """Load ``docs/{name}.py`` and return it as a module."""
    spec = importlib.util.spec_from_file_location(name, ROOT / "docs" / f"{name}.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
