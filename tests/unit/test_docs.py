"""The README documents every environment variable the services read."""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest

from shared.settings import ServiceSettings
from tests.unit.test_openapi import SETTINGS

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text()


def env_names(cls: type[ServiceSettings]) -> list[str]:
    prefix = cls.model_config.get("env_prefix", "")
    names = []
    for name, field in cls.model_fields.items():
        alias = field.validation_alias
        names.append(alias.choices[0] if alias is not None else f"{prefix}{name}".upper())  # type: ignore[union-attr]
    return names


@pytest.mark.parametrize("service", list(SETTINGS))
def test_every_environment_variable_is_documented(service: str):
    """In README.md's Configuration section, or in the service's own page ``docs/<service>.md``."""
    cls = getattr(importlib.import_module(f"services.{service}.settings"), SETTINGS[service])
    page = ROOT / "docs" / f"{service}.md"
    docs = README + (page.read_text() if page.exists() else "")
    missing = [name for name in env_names(cls) if name not in docs]
    assert not missing, f"document these in README.md (Configuration) or docs/{service}.md: {missing}"
