"""The loader: every kind of unreadable input becomes one SyntaxProblem with file, line and column."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from emkg.load import index_turtle, load_files, parse_file
from emkg.project import Project, open_project

REPO_ROOT = Path(__file__).resolve().parent.parent

PREFIXES = "@prefix ex: <http://example.org/> .\n"


def _problem(tmp_path: Path, content: bytes | str, name: str = "x.ttl"):
    path = tmp_path / name
    path.write_bytes(content.encode("utf-8") if isinstance(content, str) else content)
    parsed = parse_file(path, name)
    assert parsed.problem is not None, "the loader accepted bad input"
    assert parsed.triples == []
    return parsed.problem


@pytest.mark.parametrize(
    ("content", "line", "words"),
    [
        (PREFIXES + 'ex:a ex:b "unterminated .\n', 2, "end of file"),
        (PREFIXES + "ex:a ex:b ex:c\nex:d ex:e ex:f .\n", 3, ""),
        (PREFIXES + 'ex:a ex:b "bad \\q escape" .\n', 2, "escape"),
        (PREFIXES + "\n\nex:a ex:b nope:c .\n", 4, "nope"),
        (PREFIXES + "ex:a ex:b <http://exa mple.org/> .\n", 2, ""),
        ("this is not turtle at all\n", 1, ""),
    ],
    ids=["unterminated-string", "missing-dot", "bad-escape", "undeclared-prefix", "invalid-iri", "not-turtle"],
)
def test_syntax_errors_name_the_line(tmp_path: Path, content: str, line: int, words: str) -> None:
    problem = _problem(tmp_path, content)
    assert problem.location.file == "x.ttl"
    assert problem.location.line == line
    assert words.lower() in problem.message.lower()
    assert str(problem).startswith(f"x.ttl:{line}:")
    assert ": error: " in str(problem)


def test_non_utf8_bytes_point_at_the_line(tmp_path: Path) -> None:
    problem = _problem(tmp_path, PREFIXES.encode() + b'ex:a ex:b "caf\xe9" .\n')
    assert problem.location.line == 2
    assert "UTF-8" in problem.message


def test_bom_empty_and_directory_are_refused(tmp_path: Path) -> None:
    assert "byte-order mark" in _problem(tmp_path, b"\xef\xbb\xbf" + PREFIXES.encode()).message
    assert "empty" in _problem(tmp_path, b"  \n\n").message
    (tmp_path / "dir.ttl").mkdir()
    parsed = parse_file(tmp_path / "dir.ttl", "dir.ttl")
    assert parsed.problem is not None and "directory" in parsed.problem.message


def test_unreadable_file_is_a_problem_not_an_exception(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "locked.ttl"
    path.write_text(PREFIXES, encoding="utf-8")

    def deny(self: Path) -> bytes:  # root reads anything, so chmod cannot show this in CI
        raise PermissionError(13, "Permission denied", str(self))

    monkeypatch.setattr(Path, "read_bytes", deny)
    parsed = parse_file(path, "locked.ttl")
    assert parsed.problem is not None and "permission denied" in parsed.problem.message


def test_large_literal_is_refused_with_its_line(tmp_path: Path) -> None:
    path = tmp_path / "big.ttl"
    path.write_text(PREFIXES + "ex:a ex:b ex:c .\n" + 'ex:a ex:b "' + "x" * 50_000_000 + '" .\n', encoding="utf-8")
    parsed = parse_file(path, "big.ttl")
    assert parsed.problem is not None
    assert parsed.problem.location.line == 3
    assert "MiB" in parsed.problem.message


def test_large_literal_under_the_limit_loads(tmp_path: Path) -> None:
    path = tmp_path / "big.ttl"
    path.write_text(PREFIXES + 'ex:a ex:b "' + "é" * 5_000_000 + '" .\n', encoding="utf-8")
    parsed = parse_file(path, "big.ttl")
    assert parsed.problem is None
    assert len(parsed.triples[0].object.value) == 5_000_000


def test_index_finds_subjects_predicates_and_objects() -> None:
    text = (
        PREFIXES
        + "# a comment ex:not ex:this .\n"
        + 'ex:a a ex:Thing ;\n    ex:label """two\nlines ex:fake ex:q""" ;\n    ex:when "2019"^^ex:year ;\n'
        + "    ex:link ex:b ,\n        ex:c .\n\n"
        + "[ ex:p ex:hidden ] .\n"
        + "<http://example.org/d> ex:p ( ex:e ex:f ) .\n"
    )
    idx = index_turtle(text, "t.ttl", {"ex": "http://example.org/"}, "file:///t.ttl")
    ex = "http://example.org/"
    assert sorted(idx.subjects) == [ex + "a", ex + "d"]
    assert idx.locate(ex + "a").line == 3
    assert idx.locate(ex + "a", ex + "label").line == 4
    assert idx.locate(ex + "a", ex + "when").line == 6
    assert idx.locate(ex + "a", ex + "link", ex + "c").line == 8
    assert (ex + "a", ex + "when", ex + "year") not in idx.objects
    assert (ex + "a", ex + "label", ex + "fake") not in idx.objects
    assert idx.locate(ex + "d", ex + "p").line == 11


def test_load_files_skips_broken_files_and_keeps_the_rest(tmp_path: Path) -> None:
    good = tmp_path / "good.ttl"
    good.write_text(PREFIXES + "ex:a ex:b ex:c .\n", encoding="utf-8")
    bad = tmp_path / "bad.ttl"
    bad.write_text(PREFIXES + "ex:a ex:b\n", encoding="utf-8")
    graph = load_files([good, bad], Project(root=tmp_path))
    assert len(graph) == 1
    assert [str(p.location) for p in graph.problems] == ["bad.ttl:3"]
    assert graph.index.locate("http://example.org/a").file == "good.ttl"


def test_base_iri_is_set_in_one_place(tmp_path: Path) -> None:
    path = tmp_path / "a.ttl"
    path.write_text(
        "@prefix authority: <https://w3id.org/emkg/id/authority/> .\n"
        "@prefix ex: <http://example.org/> .\nauthority:x ex:p authority:y .\n",
        encoding="utf-8",
    )
    graph = load_files([path], Project(root=tmp_path, base_iri="https://data.example.gov.uk/kg/"))
    [quad] = list(graph.store)
    assert quad.subject.value == "https://data.example.gov.uk/kg/id/authority/x"
    assert quad.object.value == "https://data.example.gov.uk/kg/id/authority/y"
    assert graph.index.locate("https://data.example.gov.uk/kg/id/authority/x").line == 3


def test_index_finds_literal_objects_by_lexical_form() -> None:
    from emkg.load import literal_key

    text = PREFIXES + 'ex:a ex:p "x\\"y\\u00e9" ,\n    """long\nline""" ;\n    ex:n 42 ;\n    ex:d "2019-13-45"^^ex:date .\n'
    idx = index_turtle(text, "t.ttl", {"ex": "http://example.org/"}, "file:///t.ttl")
    ex = "http://example.org/"
    assert idx.objects[(ex + "a", ex + "p", literal_key('x"yé'))].line == 2
    assert idx.objects[(ex + "a", ex + "p", literal_key("long\nline"))].line == 3
    assert idx.objects[(ex + "a", ex + "n", literal_key("42"))].line == 5
    assert idx.objects[(ex + "a", ex + "d", literal_key("2019-13-45"))].line == 6


def test_the_line_index_is_kept_and_never_stale(tmp_path: Path) -> None:
    """The index of an unchanged file comes from .cache/load/ and equals a fresh scan; a file
    edited in place (same name, same size) is scanned again."""
    project = Project(root=tmp_path)
    path = tmp_path / "a.ttl"
    path.write_text(PREFIXES + "ex:a ex:b ex:c .\n\nex:d ex:e ex:f .\n", encoding="utf-8")
    fresh = load_files([path], project, use_cache=False).index
    first = load_files([path], project).index
    assert list((tmp_path / ".cache" / "load").iterdir()), "the index was kept"
    second = load_files([path], project).index
    assert first == second == fresh
    path.write_text(PREFIXES + "ex:d ex:e ex:f .\n\nex:a ex:b ex:c .\n", encoding="utf-8")
    moved = load_files([path], project).index
    assert moved == load_files([path], project, use_cache=False).index
    assert moved.locate("http://example.org/a").line == fresh.locate("http://example.org/d").line


@pytest.mark.parametrize("base", [None, "https://data.example.gov.uk/kg/"])
def test_subjects_lines_are_kept_beside_the_index(tmp_path: Path, base: str | None) -> None:
    """A site needs only each subject's lines: kept in the cache beside the index, they are read
    without the whole index, equal those of a fresh scan (IRIs on the project's base IRI too),
    and are never those of an edited file."""
    from emkg.load import subject_lines

    project = Project(root=tmp_path) if base is None else Project(root=tmp_path, base_iri=base)
    path = tmp_path / "a.ttl"
    path.write_text("@prefix authority: <https://w3id.org/emkg/id/authority/> .\n" + PREFIXES
                    + "authority:x ex:b ex:c .\n\nex:d ex:e ex:f ;\n    ex:g ex:h .\nauthority:x ex:i ex:j .\n", encoding="utf-8")
    [unknown] = load_files([path], project).files  # not scanned yet: nothing kept
    assert unknown.cached_subject_lines() is None
    scanned = load_files([path], project, use_cache=False)
    expected = subject_lines(scanned.files[0].ensure_index())
    starts = tuple(n for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1) if line.startswith("authority:x"))
    assert expected[(base or "https://w3id.org/emkg/") + "id/authority/x"] == starts and len(starts) == 2
    load_files([path], project).index  # scanned: the index and the subjects' lines are kept
    [kept] = load_files([path], project).files
    assert kept.pending is not None
    assert kept.cached_subject_lines() == expected
    assert kept.pending is not None, "read without making the file's index"
    path.write_text(path.read_text(encoding="utf-8").replace("\n\nex:d", "\n\n\nex:d"), encoding="utf-8")
    [edited] = load_files([path], project).files
    assert edited.cached_subject_lines() is None


def test_files_scanned_in_worker_processes_give_the_same_index(monkeypatch: pytest.MonkeyPatch) -> None:
    """At scale the line scans run in forked workers: the same index, prefixes and triples."""
    from emkg import load

    project = open_project(REPO_ROOT)
    serial = load_files(project.graph_files(), project, use_cache=False)
    monkeypatch.setattr(load, "PARALLEL_INDEX_CHARS", 0)
    parallel = load_files(project.graph_files(), project, use_cache=False)
    assert parallel.index == serial.index
    assert parallel.prefixes == serial.prefixes
    assert len(parallel.store) == len(serial.store)
    assert all(f.pending is None for f in parallel.files)


def test_subjects_only_scan_finds_the_same_subject_lines() -> None:
    """The scan for the subjects alone (what a site needs) finds each subject on the lines the
    whole index does: in every real data file and in Turtle that hides subject-like tokens."""
    from emkg.load import subject_lines

    tricky = (PREFIXES + "PREFIX q: <http://example.org/q#>\n# ex:no ex:subject .\n"
              + 'ex:a a ex:Thing ;\n    ex:label """two\nlines ex:fake . ex:q""" ;\n    ex:n "x"@en , "y"^^ex:t .\n'
              + "[ ex:p ex:hidden ] .\n( ex:l1 ex:l2 ) ex:p ex:o .\n<http://example.org/d> ex:p [ ex:q ( ex:e [ ex:r ex:s ] ) ] .\n"
              + "q:x ex:p 1.5, true ; ex:s 'it''s' .\nex:a ex:again ex:b .\n")
    texts = [("t.ttl", tricky, {"ex": "http://example.org/", "q": "http://example.org/q#"})]
    project = open_project(REPO_ROOT)
    for parsed in load_files(project.graph_files(), project, use_cache=False).files:
        texts.append((parsed.name, parsed.path.read_text(encoding="utf-8"), parsed.prefixes))
    for name, text, prefixes in texts:
        whole = subject_lines(index_turtle(text, name, prefixes, project.base_iri))
        assert subject_lines(index_turtle(text, name, prefixes, project.base_iri, subjects_only=True)) == whole, name
    lines = subject_lines(index_turtle(tricky, "t.ttl", texts[0][2], project.base_iri, subjects_only=True))
    assert lines["http://example.org/a"] == (4, 12) and "http://example.org/fake" not in lines


@pytest.mark.parametrize("parallel", [False, True])
def test_files_subject_lines_scans_for_subjects_alone(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, parallel: bool) -> None:
    """A site's subjects' lines on a cold cache: scanned for the subjects alone (no file's whole
    index is made), in worker processes at scale, kept for the next build; the whole index's."""
    from emkg import load

    project = open_project(REPO_ROOT)
    if parallel:
        monkeypatch.setattr(load, "PARALLEL_INDEX_CHARS", 0)
    whole = load_files(project.graph_files(), project, use_cache=False)
    expected = {f.name: load.subject_lines(f.ensure_index()) for f in whole.files if f.problem is None}
    copy = tmp_path / "proj"  # a project of its own: its own cache, cold
    for folder in ("ontology", "data"):
        shutil.copytree(REPO_ROOT / folder, copy / folder)
    shutil.copy(REPO_ROOT / "pyproject.toml", copy / "pyproject.toml")
    other = open_project(copy)
    files = load_files(other.graph_files(), other).files
    found = load.files_subject_lines(files)
    assert found == expected
    assert all(f.pending is not None for f in files if f.problem is None), "no file's whole index was made"
    again = load_files(other.graph_files(), other).files
    assert all(f.cached_subject_lines() is not None for f in again if f.problem is None)


def _parsed_the_slow_way(paths: list[Path]) -> tuple[set[str], dict[str, str]]:
    import pyoxigraph as ox

    triples: set[str] = set()
    prefixes: dict[str, str] = {}
    for path in paths:
        reader = ox.parse(path.read_bytes(), format=ox.RdfFormat.TURTLE, base_iri=path.resolve().as_uri())
        triples |= {str(q.triple) for q in reader}
        for key, value in reader.prefixes.items():
            prefixes.setdefault(key, value)
    return triples, prefixes


def test_native_loading_gives_the_parsed_triples_and_prefixes(tmp_path: Path) -> None:
    """Files are loaded into the store natively when their header holds every prefix; a file that
    declares a prefix later (or says "prefix" anywhere after its header) is parsed as before;
    either way the store and the prefixes are those of a plain parse, and a broken file adds nothing."""
    header = "# a comment\n@prefix ex: <http://example.org/> .\n\nPREFIX dc: <http://purl.org/dc/terms/>\n@base <http://example.org/base/> .\n"
    files = {
        "plain.ttl": "@prefix only: <http://example.org/only#> .\n" + header + 'ex:a dc:title "A"@en ; ex:rel <relative> .\n',
        "late.ttl": header + "ex:b ex:p ex:c .\n@prefix late: <http://example.org/late#> .\nlate:x ex:p ex:c .\n",
        "word.ttl": header + 'ex:d ex:note "a prefix in a literal" .\n',
        "broken.ttl": header + "ex:e ex:p ex:f .\nex:g ex:p\n",
    }
    paths = []
    for name, text in files.items():
        (tmp_path / name).write_text(text, encoding="utf-8")
        paths.append(tmp_path / name)
    graph = load_files(paths, Project(root=tmp_path))
    by_name = {f.name: f for f in graph.files}
    assert by_name["plain.ttl"].loaded and not by_name["late.ttl"].loaded and not by_name["word.ttl"].loaded
    assert [str(p.location) for p in graph.problems] == ["broken.ttl:8"]
    assert graph.prefixes["only"] == "http://example.org/only#"  # a natively loaded file's prefixes count
    expected, prefixes = _parsed_the_slow_way([p for p in paths if p.name != "broken.ttl"])
    assert {str(q.triple) for q in graph.store} == expected
    assert graph.prefixes == prefixes and graph.prefixes["late"] == "http://example.org/late#"
    assert "<http://example.org/base/relative>" in " ".join(expected)


def test_the_real_project_loads_as_parsed() -> None:
    project = open_project(Path(__file__).resolve().parents[1])
    graph = load_files(project.graph_files(), project)
    assert sum(f.loaded for f in graph.files) > len(graph.files) // 2  # most files take the fast way
    expected, prefixes = _parsed_the_slow_way(project.graph_files())
    assert {str(q.triple) for q in graph.store} == expected
    assert graph.prefixes == prefixes
