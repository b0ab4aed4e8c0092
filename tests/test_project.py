"""The project tree: found from any folder, and its base IRI set in one place."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from emkg.cli import main
from emkg.errors import UsageError
from emkg.project import find_root, open_project

ROOT = Path(__file__).resolve().parents[1]


def _copy(dest: Path, base: str | None = None) -> Path:
    for name in ("ontology", "data", "shapes", "queries"):
        shutil.copytree(ROOT / name, dest / name)
    text = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    if base is not None:
        assert 'base-iri = "https://w3id.org/emkg/"' in text
        text = text.replace('base-iri = "https://w3id.org/emkg/"', f'base-iri = "{base}"')
    (dest / "pyproject.toml").write_text(text, encoding="utf-8")
    return dest


def test_root_is_found_from_a_subfolder(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT / "data" / "updates")
    assert find_root(Path.cwd()) == ROOT
    assert open_project().root == ROOT


def test_outside_a_project_is_a_usage_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(UsageError, match="not inside an emkg project"):
        open_project()
    with pytest.raises(UsageError, match="not an emkg project"):
        open_project(tmp_path)


def test_a_copy_with_another_base_iri_validates_and_answers_under_that_base(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base = "https://data.example.gov.uk/emkg/"
    project = _copy(tmp_path / "copy", base)
    assert main(["--root", str(project), "validate"]) == 0, capsys.readouterr().out
    capsys.readouterr()
    assert main(["--root", str(project), "query", "authorities", "--format", "csv"]) == 0
    rows = capsys.readouterr().out.splitlines()[1:]
    assert len(rows) == 40
    assert all(row.startswith(base + "id/authority/") for row in rows)
    assert "w3id.org" not in "\n".join(rows)
