"""The README documents every environment variable the services read."""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest

from shared.settings import ServiceSettings
from tests.unit.test_openapi import SETTINGS

README = (Path(__file__).resolve().parents[2] / "README.md").read_text()


def env_names(cls: type[ServiceSettings]) -> list[str]:
    prefix = cls.model_config.get("env_prefix", "")
    names = []
    for name, field in cls.model_fields.items():
        alias = field.validation_alias
        names.append(alias.choices[0] if alias is not None else f"{prefix}{name}".upper())  # type: ignore[union-attr]
    return names


@pytest.mark.parametrize("service", list(SETTINGS))
def test_readme_lists_every_environment_variable(service: str):
    cls = getattr(importlib.import_module(f"services.{service}.settings"), SETTINGS[service])
    missing = [name for name in env_names(cls) if name not in README]
    assert not missing, f"add these to the Configuration section of README.md: {missing}"
