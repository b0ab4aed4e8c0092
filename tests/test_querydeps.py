"""``querydeps``: the predicates a query can match, or None when it can match any triple."""

from __future__ import annotations

import pytest

from emkg.querydeps import Prefetch, _entry, predicates_of, query_predicates

EX = "PREFIX ex: <http://example.org/>\n"


@pytest.mark.parametrize("body, expected", [
    ("?a ex:p ?b", {"p"}),
    ("?a a ex:T ; ex:p [ ex:q ?c ] , ?d", {"type", "p", "q"}),
    ("?a ex:p/^ex:q* ?b . ?b (ex:r|ex:s)+ ?c", {"p", "q", "r", "s"}),
    ("?a ex:p ?b FILTER NOT EXISTS { ?b ex:hidden ?c }", {"p", "hidden"}),
    ("?a ex:p ?b OPTIONAL { ?b ex:o ?c } MINUS { ?a ex:m ?x }", {"p", "o", "m"}),
    ("{ SELECT ?a WHERE { ?a ex:inner ?z } } ?a ex:outer ?b", {"inner", "outer"}),
    # a predicate variable the outermost group binds to IRIs only
    ("VALUES ?p { ex:v ex:w } ?a ?p ?b", {"v", "w"}),
    ("VALUES ?p { ex:v } ?a a ex:T FILTER NOT EXISTS { ?a ?p ?c } OPTIONAL { ?a ?p ?d }", {"v", "type"}),
])
def test_constant_predicates_are_found_everywhere(body: str, expected: set[str]) -> None:
    found = query_predicates(EX + f"SELECT * WHERE {{ {body} }}")
    assert found is not None
    assert {p.rsplit("/", 1)[-1].rsplit("#", 1)[-1] for p in found} == expected


@pytest.mark.parametrize("body", [
    "?a ?p ?b",
    "?a ex:p ?b FILTER EXISTS { ?b ?any ?c }",
    # VALUES that do not bind every answer, or bind something else than IRIs
    "{ VALUES ?p { ex:v } } UNION { ?a ?p ?b }",
    "VALUES ?p { ex:v UNDEF } ?a ?p ?b",
    'VALUES ?p { ex:v "literal" } ?a ?p ?b',
    # inside a nested SELECT ?p is another variable
    "VALUES ?p { ex:v } { SELECT ?a WHERE { ?a ?p ?b } }",
    "?a !ex:p ?b",
    "GRAPH ?g { ?a ex:p ?b }",
    "?a ex:p ?b . SERVICE <http://example.org/sparql> { ?b ex:q ?c }",
])
def test_anything_else_depends_on_every_triple(body: str) -> None:
    assert query_predicates(EX + f"SELECT * WHERE {{ {body} }}") is None


def test_a_dataset_clause_or_a_broken_query_depends_on_every_triple() -> None:
    assert query_predicates(EX + "SELECT * FROM <http://example.org/g> WHERE { ?a ex:p ?b }") is None
    assert query_predicates("SELECT * WHERE { ?a ex:p ?b }") is None  # undefined prefix


def test_the_answer_is_kept_per_query_text(tmp_path) -> None:
    from emkg.project import Project

    project = Project(root=tmp_path)
    text = EX + "SELECT * WHERE { ?a ex:p ?b }"
    assert query_predicates(text, project) == query_predicates(text, project) == {"http://example.org/p"}
    assert list((tmp_path / ".cache" / "querydeps").iterdir())
    assert query_predicates(EX + "SELECT * WHERE { ?a ?p ?b }", project) is None


def test_prefetch_analyses_in_a_child_what_the_cache_lacks(tmp_path, monkeypatch) -> None:
    from emkg import querydeps
    from emkg.project import Project

    project = Project(root=tmp_path)
    texts = [EX + "SELECT * WHERE { ?a ex:p ?b }", EX + "SELECT * WHERE { ?a ?p ?b }", EX + "SELECT * WHERE { ?a ex:q ?b }"]
    query_predicates(texts[2], project)  # cached already: not analysed again
    prefetch = Prefetch([*texts, texts[0]], project)
    assert prefetch._child is not None
    parent = []
    monkeypatch.setattr(querydeps, "_analyse", lambda text: parent.append(text))  # here only: the child has forked
    prefetch.wait()
    for text in texts:
        assert querydeps.read_entry(*_entry(text, project)) is not None, text
    assert query_predicates(texts[0], project) == {"http://example.org/p"}
    assert query_predicates(texts[1], project) is None
    assert parent == [], "the answers were worked out again in this process"
    assert Prefetch(texts, project)._child is None  # everything cached: no child
    prefetch.wait()
    prefetch.stop()  # both harmless once waited for


def test_a_miss_while_the_child_runs_waits_for_it(tmp_path, monkeypatch) -> None:
    from emkg import querydeps
    from emkg.project import Project

    project = Project(root=tmp_path)
    texts = [EX + f"SELECT * WHERE {{ ?a ex:p{n} ?b }}" for n in range(8)]
    prefetch = Prefetch(texts, project)
    parent = []
    monkeypatch.setattr(querydeps, "_analyse", lambda text: parent.append(text))
    assert querydeps._pending is prefetch
    assert query_predicates(texts[-1], project) == {"http://example.org/p7"}  # the child's answer
    assert parent == [] and querydeps._pending is None


def test_a_process_forked_later_never_takes_the_childs_answer(tmp_path, monkeypatch) -> None:
    """A process forked while the child runs (a validation, a page worker) inherits the object:
    it analyses its own queries and leaves the child's answer to the process that started it."""
    from emkg import querydeps
    from emkg.forked import Forked
    from emkg.project import Project

    project = Project(root=tmp_path)
    texts = [EX + f"SELECT * WHERE {{ ?a ex:p{n} ?b }}" for n in range(8)]
    prefetch = Prefetch(texts, project)
    later = Forked(lambda: (querydeps._pending is prefetch, query_predicates(EX + "SELECT * WHERE { ?a ex:z ?b }", project)))
    assert later.result() == (True, {"http://example.org/z"})
    said = []
    monkeypatch.setattr(querydeps.log, "debug", lambda msg, *args: said.append(msg % args))
    prefetch.wait()
    assert not [line for line in said if "failed" in line], said
    assert all(querydeps.read_entry(*_entry(text, project)) is not None for text in texts)


def test_prefetch_that_cannot_write_leaves_the_work_to_this_process(tmp_path, monkeypatch) -> None:
    from emkg.project import Project

    project = Project(root=tmp_path)
    (tmp_path / ".cache").write_text("not a folder", encoding="utf-8")  # the child cannot write a thing
    text = EX + "SELECT * WHERE { ?a ex:p ?b }"
    prefetch = Prefetch([text], project)
    prefetch.wait()
    assert query_predicates(text, project) == {"http://example.org/p"}
    from emkg import querydeps

    with Prefetch([EX + "SELECT * WHERE { ?a ex:r ?b }"], Project(root=tmp_path / "other")) as stopped:
        assert querydeps._pending is stopped
    assert querydeps._pending is None and stopped._child is None  # the child is ended with the block
    stopped.wait()  # and waiting after that does nothing


def test_predicates_of_changed_lines() -> None:
    lines = [b'<http://e/a> <http://e/p> "x" .', b"<http://e/a> <http://e/q> <http://e/b> ."]
    assert predicates_of(lines) == {"http://e/p", "http://e/q"}
    assert predicates_of([]) == set()
