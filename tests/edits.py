"""Edits the incremental tests make to a generated tree (``emkg bench generate``)."""

from __future__ import annotations

from pathlib import Path


def sub(path: Path, old: str, new: str, count: int = 1) -> None:
    """Replace ``old`` (which must be there) by ``new`` in the file ``path``."""
    text = path.read_text(encoding="utf-8")
    assert old in text, (path, old)
    path.write_text(text.replace(old, new, count), encoding="utf-8")


def first_update(root: Path) -> Path:
    """The first update file of a generated tree."""
    return sorted((root / "data" / "updates").glob("*.ttl"))[0]
