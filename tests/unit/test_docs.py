"""The README documents every environment variable the services read."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from closeloop.cli import SETTINGS, settings_class
from shared.settings import ServiceSettings
from tests.support.docs import doc_generator

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
    cls = settings_class(service)
    page = ROOT / "docs" / f"{service}.md"
    docs = README + (page.read_text() if page.exists() else "")
    missing = [name for name in env_names(cls) if name not in docs]
    assert not missing, f"document these in README.md (Configuration) or docs/{service}.md: {missing}"


@pytest.mark.parametrize("service", ["responses", "dispatch", "console"])
def test_the_file_map_lists_every_module(service: str):
    """``docs/<service>.md`` opens with a map of the service's files: a row per module, none for a gone one."""
    root = ROOT / "services" / service
    page = (ROOT / "docs" / f"{service}.md").read_text()
    assert "\n## Files\n" in page, f"docs/{service}.md has no file map (## Files)"
    file_map = page.split("\n## Files\n", 1)[1].split("\n## ", 1)[0]
    rows = set(re.findall(r"^\| `([\w./]+)` \|", file_map, re.M))
    modules = {
        path.relative_to(root).as_posix()
        for path in root.rglob("*.py")
        if "migrations" not in path.parts and path.stat().st_size > 0
    }
    assert not modules - rows, f"add to the file map of docs/{service}.md: {sorted(modules - rows)}"
    gone = sorted(row for row in rows if not (root / row).exists())
    assert not gone, f"the file map of docs/{service}.md names files that are gone: {gone}"


def test_the_console_page_shows_the_permission_table_of_the_code():
    """docs/console.md renders ``shared.access.PERMISSIONS``; change the code and the page together."""
    from shared.access import permission_table

    page = (ROOT / "docs" / "console.md").read_text()
    assert permission_table() in page, "paste shared.access.permission_table() into docs/console.md"


def test_the_page_of_who_may_call_what_is_current():
    """docs/permissions.md lists every route's declaration; regenerate it with the routes."""
    gen = doc_generator("gen_permissions")
    committed = (ROOT / "docs" / "permissions.md").read_text()
    assert committed == gen.render(), (
        "docs/permissions.md is out of date: run `python docs/gen_permissions.py`"
    )
