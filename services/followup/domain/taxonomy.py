"""Root causes: a workspace's two-level taxonomy (category › cause) that every resolution names."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

Taxonomy = Mapping[str, Sequence[str]]

DEFAULT_TAXONOMY: dict[str, list[str]] = {
    "Product": ["Defect", "Missing feature", "Hard to use"],
    "Delivery": ["Late", "Damaged", "Wrong item"],
    "Service": ["Rude", "Slow", "Not solved"],
    "Billing": ["Error", "Price"],
    "Other": ["Other"],
}
"""What every workspace starts with, so that a new workspace can resolve at once."""

LEGACY_ROOT_CAUSE = ("Other", "Other")
"""What ``POST /v1/tasks/{id}/resolve`` (which takes a note only) records."""


def check_taxonomy(taxonomy: Taxonomy) -> None:
    """Raise ``ValueError`` unless every category has at least one cause and names are sensible."""
    if not taxonomy:
        raise ValueError("a taxonomy needs at least one category")
    for category, causes in taxonomy.items():
        if not category.strip() or len(category) > 80:
            raise ValueError(f"category {category!r} must be 1-80 characters")
        if not causes:
            raise ValueError(f"category {category!r} needs at least one cause")
        if any(not c.strip() or len(c) > 80 for c in causes) or len(set(causes)) != len(causes):
            raise ValueError(f"the causes of {category!r} must be distinct, 1-80 characters each")


def check_root_cause(taxonomy: Taxonomy, category: str, cause: str) -> None:
    """Raise ``ValueError`` unless ``category › cause`` is in the taxonomy."""
    if category not in taxonomy:
        raise ValueError(f"{category!r} is not a root-cause category; one of {', '.join(taxonomy)}")
    if cause not in taxonomy[category]:
        raise ValueError(
            f"{cause!r} is not a cause under {category!r}; one of {', '.join(taxonomy[category])}"
        )


def label(category: str | None, cause: str | None) -> str | None:
    return f"{category} › {cause}" if category and cause else None
