"""Find the project tree and read its settings (``[tool.emkg]`` in ``pyproject.toml``)."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path

from .errors import UsageError

DEFAULT_BASE_IRI = "https://w3id.org/emkg/"
SETTINGS_FILE = "pyproject.toml"


@dataclass(frozen=True)
class Project:
    """A project tree: where its sources live and the IRIs it mints."""

    root: Path
    base_iri: str = DEFAULT_BASE_IRI
    out_name: str = "public"

    @property
    def ontology_dir(self) -> Path:
        return self.root / "ontology"

    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    @property
    def shapes_dir(self) -> Path:
        return self.root / "shapes"

    @property
    def queries_dir(self) -> Path:
        return self.root / "queries"

    @property
    def qc_dir(self) -> Path:
        return self.queries_dir / "qc"

    @property
    def out_dir(self) -> Path:
        return self.root / self.out_name

    @property
    def ontology_iri(self) -> str:
        return self.base_iri + "def/"

    @property
    def id_base(self) -> str:
        return self.base_iri + "id/"

    def graph_files(self) -> list[Path]:
        """The Turtle files of the graph itself: the ontology and the data, in a stable order."""
        return _turtle_files(self.ontology_dir) + _turtle_files(self.data_dir)

    def shape_files(self) -> list[Path]:
        return _turtle_files(self.shapes_dir)

    def all_turtle_files(self) -> list[Path]:
        return self.graph_files() + self.shape_files()

    def rebase_query(self, text: str) -> str:
        """SPARQL text written against the default base IRI, with the project's base instead."""
        if self.base_iri == DEFAULT_BASE_IRI:
            return text
        return text.replace("<" + DEFAULT_BASE_IRI, "<" + self.base_iri)

    def relative(self, path: Path) -> str:
        """A path as users see it in messages: relative to the project root when inside it."""
        try:
            return path.resolve().relative_to(self.root.resolve()).as_posix()
        except ValueError:
            return str(path)


def _turtle_files(folder: Path) -> list[Path]:
    if not folder.exists():
        return []
    return sorted(p for p in folder.rglob("*.ttl") if not any(part.startswith(".") for part in p.parts))


def find_root(start: Path) -> Path | None:
    """The nearest folder at or above ``start`` whose pyproject.toml has a ``[tool.emkg]`` table."""
    start = start.resolve()
    for folder in (start, *start.parents):
        settings = folder / SETTINGS_FILE
        if settings.is_file() and "emkg" in _read_settings(settings).get("tool", {}):
            return folder
    return None


def _read_settings(path: Path) -> dict:
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise UsageError(f"{path}: cannot read project settings: {exc}") from None


def open_project(root: Path | None = None) -> Project:
    """The project at ``root`` (``--root``), or the one containing the current directory."""
    if root is not None:
        if not root.is_dir():
            raise UsageError(f"{root}: no such project folder")
        found = root.resolve()
        settings_path = found / SETTINGS_FILE
        settings = _read_settings(settings_path).get("tool", {}).get("emkg", {}) if settings_path.is_file() else {}
        if not settings and not any((found / name).is_dir() for name in ("ontology", "data", "shapes")):
            raise UsageError(f"{root}: not an emkg project (no [tool.emkg] in pyproject.toml, no ontology/, data/ or shapes/)")
    else:
        located = find_root(Path.cwd())
        if located is None:
            raise UsageError(
                "not inside an emkg project (no pyproject.toml with [tool.emkg] here or above); "
                "run from the project folder or pass --root DIR"
            )
        found = located
        settings = _read_settings(found / SETTINGS_FILE)["tool"]["emkg"]
    base = str(settings.get("base-iri", DEFAULT_BASE_IRI))
    if not base.endswith(("/", "#")):
        raise UsageError(f"{found / SETTINGS_FILE}: [tool.emkg] base-iri must end with '/' or '#': {base!r}")
    return Project(root=found, base_iri=base, out_name=str(settings.get("out", "public")))
