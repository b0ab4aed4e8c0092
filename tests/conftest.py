"""Shared, generic fixtures: the repository root, throw-away projects, and running the CLI."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
PROJECT_FOLDERS = ("ontology", "data", "shapes", "queries/qc")


@pytest.fixture
def repo_root() -> Path:
    """The real project tree (this repository)."""
    return REPO_ROOT


@pytest.fixture
def make_project(tmp_path: Path) -> Callable[..., Path]:
    """A throw-away project: ``make_project({"data/x.ttl": "...", ...})`` returns its root.

    It has a ``pyproject.toml`` with ``[tool.emkg]`` and the usual (possibly empty) folders.
    """

    def make(files: dict[str, str] | None = None, base_iri: str = "https://w3id.org/emkg/", name: str = "project") -> Path:
        root = tmp_path / name
        root.mkdir()
        (root / "pyproject.toml").write_text(f'[tool.emkg]\nbase-iri = "{base_iri}"\n', encoding="utf-8")
        for folder in PROJECT_FOLDERS:
            (root / folder).mkdir(parents=True, exist_ok=True)
        for rel, text in (files or {}).items():
            path = root / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
        return root

    return make


@pytest.fixture
def run_emkg(capsys: pytest.CaptureFixture[str]) -> Callable[..., tuple[int, str, str]]:
    """Run ``emkg ARGS...`` in-process: ``(exit code, stdout, stderr)``; ``root=`` adds ``--root``."""
    from emkg.cli import main

    def run(*args: str | Path, root: Path | None = None) -> tuple[int, str, str]:
        argv = [str(a) for a in args]
        if root is not None:
            argv = ["--root", str(root), *argv]
        capsys.readouterr()
        try:
            code = main(argv)
        except SystemExit as exc:  # argparse usage errors
            code = exc.code if isinstance(exc.code, int) else 2
        out, err = capsys.readouterr()
        return code, out, err

    return run
