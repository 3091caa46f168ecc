"""Migrations are backward compatible for one release: during a rolling upgrade the previous
release's pods run against the migrated schema, so a migration only *expands* it (new tables, new
nullable or defaulted columns, new indexes, relaxed constraints). Dropping or renaming what the old
code reads or writes, changing a column's type, or making a column NOT NULL comes a release later,
in a migration whose docstring has a line ``Contract: <what the previous release stopped using>``
(docs/operations.md, "Upgrades")."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
MIGRATIONS = sorted(ROOT.glob("services/*/migrations/versions/*.py"))
# Written before this rule, while nothing had been released (0.1.0 is the first release).
BEFORE_THE_RULE = {
    "20261123_0300_00d58ba70d2b_versions_partial_responses_kiosks_.py",
    "20261123_0311_9cbf6823bd0b_sources_contacts_rules_schedules_audit.py",
    "20261123_0430_5e2a1c7d9b40_evaluate_after_acknowledging.py",
    "20261130_1854_f08dd92570e4_cases_teams_routing_sla_escalation.py",
    "20261130_1858_a24bd1474695_every_answer_counts.py",
    "20261130_2035_59c6caae87d3_erasure_quotes_retention.py",
}
CONTRACTING_CALLS = {"drop_column", "drop_table", "rename_table"}
CONTRACTING_SQL = ("DROP TABLE", "DROP COLUMN", "RENAME ", "SET NOT NULL", " TYPE ")


def contractions(source: str) -> list[str]:
    """Return what ``upgrade()`` in ``source`` does that the previous release's code could trip on."""
    tree = ast.parse(source)
    upgrade = next((n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "upgrade"), None)
    if upgrade is None:
        return []
    found = []
    for node in ast.walk(upgrade):
        if not isinstance(node, ast.Call):
            continue
        name = _called(node)
        keywords = {k.arg: k.value for k in node.keywords}
        if name in CONTRACTING_CALLS:
            found.append(name)
        elif name == "alter_column":
            if "new_column_name" in keywords or "type_" in keywords:
                found.append("alter_column renames or retypes")
            nullable = keywords.get("nullable")
            if isinstance(nullable, ast.Constant) and nullable.value is False:
                found.append("alter_column sets NOT NULL")
        elif name == "add_column":
            for column in (a for a in node.args if isinstance(a, ast.Call)):
                kw = {k.arg: k.value for k in column.keywords}
                nullable = kw.get("nullable")
                # An identity column fills itself in, as a server default does.
                generated = any(
                    isinstance(a, ast.Call) and _called(a) in ("Identity", "Sequence") for a in column.args
                )
                if (
                    isinstance(nullable, ast.Constant)
                    and nullable.value is False
                    and "server_default" not in kw
                    and not generated
                ):
                    found.append("add_column NOT NULL without a server_default (old pods insert without it)")
        elif name == "execute":
            for arg in node.args:
                if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                    sql = arg.value.upper()
                    found.extend(f"SQL {word.strip()}" for word in CONTRACTING_SQL if word in sql)
    return found


def _called(call: ast.Call) -> str:
    """Return the name a call calls: ``op.add_column(...)`` → ``add_column``."""
    return call.func.attr if isinstance(call.func, ast.Attribute) else getattr(call.func, "id", "")


@pytest.mark.parametrize("path", MIGRATIONS, ids=lambda p: f"{p.parts[-4]}/{p.name}")
def test_migrations_only_expand_the_schema(path: Path) -> None:
    if path.name in BEFORE_THE_RULE:
        return
    source = path.read_text()
    found = contractions(source)
    docstring = ast.get_docstring(ast.parse(source)) or ""
    if found and not any(line.startswith("Contract:") for line in docstring.splitlines()):
        pytest.fail(
            f"{path.name} contracts the schema ({'; '.join(found)}): the previous release's pods would break "
            "during a rolling upgrade. Expand now and contract a release later, in a migration whose "
            "docstring says 'Contract: …'.",
            pytrace=False,
        )


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("op.add_column('t', sa.Column('c', sa.Text(), nullable=True))", []),
        ("op.add_column('t', sa.Column('c', sa.Text(), nullable=False, server_default='x'))", []),
        ("op.create_index('ix', 't', ['c'])\n    op.drop_index('ix_old')", []),
        ("op.add_column('t', sa.Column('c', sa.Text(), nullable=False))", ["add_column NOT NULL"]),
        (
            "op.add_column('t', sa.Column('c', sa.BigInteger(), sa.Identity(always=False), nullable=False))",
            [],
        ),
        ("op.drop_column('t', 'c')", ["drop_column"]),
        ("op.alter_column('t', 'c', new_column_name='d')", ["alter_column renames"]),
        ("op.alter_column('t', 'c', nullable=False)", ["alter_column sets NOT NULL"]),
        ("op.execute('ALTER TABLE t DROP COLUMN c')", ["SQL DROP COLUMN"]),
    ],
)
def test_the_check_tells_expanding_from_contracting(body: str, expected: list[str]) -> None:
    found = contractions(f"def upgrade():\n    {body}\n")
    assert len(found) == len(expected) and all(f.startswith(e) for f, e in zip(found, expected, strict=True))
