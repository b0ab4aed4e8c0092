"""The fast path gives the same answers as the plain rdflib/pySHACL path.

A speed-up that changes an answer is a bug. On the real data and on a small generated tree with a
fault of every kind, the two paths must agree on:

* the triples: pyoxigraph's parse (``load_graph``) against rdflib's, and every published dump
  (``write_dumps``: Turtle, N-Triples, JSON-LD, TriG) read back by rdflib against rdflib's own
  parse plus the dataset description;
* the rows of every stored view: ``run_local`` (pyoxigraph) against rdflib's SPARQL engine, as
  multisets (an ORDER BY may leave ties in either order);
* the validation results: the fast SHACL engine against pySHACL, the reference: the same
  (severity, focus, path, value, shape, component) for every result, so the same (focus, path,
  severity) sets, and the same report summary.

pySHACL is slow (tens of seconds on the real data): each dataset is validated once per module.
"""

from __future__ import annotations

import logging
import os
from collections import Counter
from pathlib import Path

import pyoxigraph as ox
import pytest
import rdflib
from rdflib.compare import isomorphic, to_isomorphic

from emkg.load import load_graph, load_shapes
from emkg.project import Project, open_project
from emkg.terms import rdflib_to_ox
from emkg.views import bind_params, list_views, run_local

REFERENCE_ENGINE = "pyshacl"
FAST_ENGINE = "pyshacl-turbo"
SYNTHETIC_TRIPLES = 2500


@pytest.fixture(scope="module", params=["real", "synthetic-faulted"])
def dataset(request, tmp_path_factory: pytest.TempPathFactory) -> dict:
    repo = Path(request.config.rootpath)
    if request.param == "real":
        project = open_project(repo)
    else:
        from emkg.synth import FAULT_KINDS, generate_tree

        root = tmp_path_factory.mktemp("equivalence") / "tree"
        generate_tree(open_project(repo), root, SYNTHETIC_TRIPLES, faults=len(FAULT_KINDS), seed=3)
        project = open_project(root)
    graph = load_graph(project)
    shapes = load_shapes(project)
    assert not graph.problems and not shapes.problems, "the sources must parse for the comparison to mean anything"
    naive = rdflib.Graph()
    for path in project.graph_files():
        naive.parse(path, format="turtle")
    return {"name": request.param, "project": project, "graph": graph, "shapes": shapes, "naive": naive, "reports": {}}


def _report(dataset: dict, engine: str):
    from emkg.validate import validate_loaded

    reports = dataset["reports"]
    if engine not in reports:
        reports[engine] = validate_loaded(dataset["project"], dataset["graph"], dataset["shapes"], engine=engine)
    return reports[engine]


def _nt(term) -> str:
    return str(term if isinstance(term, (ox.NamedNode, ox.BlankNode, ox.Literal)) else rdflib_to_ox(term))


# --- triples -------------------------------------------------------------------------------------------------

def test_same_triples_from_both_parsers(dataset: dict) -> None:
    fast = dataset["graph"].to_rdflib()
    naive = dataset["naive"]
    assert len(fast) == len(naive) == len(dataset["graph"])
    assert isomorphic(fast, naive)


def test_dumps_hold_the_same_triples(dataset: dict, tmp_path: Path) -> None:
    from emkg.dumps import describe, write_dumps

    project: Project = dataset["project"]
    graph = dataset["graph"]
    description = describe(project, graph.store, graph.prefixes, date="2024-01-01T00:00:00Z")
    write_dumps(project, graph, tmp_path, description=description)
    expected = rdflib.Graph()
    expected += dataset["naive"]
    from emkg.terms import ox_to_rdflib

    for t in description.triples:
        expected.add((ox_to_rdflib(t.subject), ox_to_rdflib(t.predicate), ox_to_rdflib(t.object)))
    expected_iso = to_isomorphic(expected)
    for name, fmt in (("emkg.ttl", "turtle"), ("emkg.nt", "nt"), ("emkg.jsonld", "json-ld")):
        dumped = rdflib.Graph()
        dumped.parse(tmp_path / name, format=fmt)
        assert to_isomorphic(dumped) == expected_iso, f"{name} differs from rdflib's parse of the sources"
    trig = rdflib.Dataset()
    trig.parse(tmp_path / "emkg.trig", format="trig")
    union = rdflib.Graph()
    for g in trig.graphs():
        union += g
    assert to_isomorphic(union) == expected_iso, "emkg.trig differs from rdflib's parse of the sources"
    # and rdflib's own Turtle of the sources reads back to the dump's triples (minus the description)
    again = rdflib.Graph()
    again.parse(data=dataset["naive"].serialize(format="turtle"), format="turtle")
    assert isomorphic(again, dataset["naive"])


# --- views -----------------------------------------------------------------------------------------------------

def _views(project: Project):
    return [v for v in list_views(project) if not any(p.required for p in v.params)]


def test_same_view_rows(dataset: dict) -> None:
    project, graph, naive = dataset["project"], dataset["graph"], dataset["naive"]
    views = _views(project)
    assert views, "the project has stored views"
    for view in views:
        fast = run_local(graph.store, bind_params(view, {}), view.name)
        answer = naive.query(view.text)
        assert fast.variables == [str(v) for v in answer.vars], view.name
        naive_rows = Counter(tuple(None if t is None else _nt(t) for t in row) for row in answer)
        fast_rows = Counter(tuple(None if t is None else _nt(t) for t in row) for row in fast.rows)
        assert fast_rows == naive_rows, f"view {view.name}: pyoxigraph and rdflib disagree"


def test_same_view_rows_with_parameters(dataset: dict) -> None:
    """A bound optional parameter goes through the same VALUES binding in both engines."""
    project, graph, naive = dataset["project"], dataset["graph"], dataset["naive"]
    checked = 0
    for view in _views(project):
        iri_params = [p for p in view.params if p.type == "iri"]
        if not iri_params:
            continue
        fast_all = run_local(graph.store, bind_params(view, {}), view.name)
        column = fast_all.variables.index(iri_params[0].name) if iri_params[0].name in fast_all.variables else None
        candidates = sorted({row[column].value for row in fast_all.rows if column is not None and isinstance(row[column], ox.NamedNode)})
        if not candidates:
            continue
        text = bind_params(view, {iri_params[0].name: candidates[0]})
        fast = run_local(graph.store, text, view.name)
        answer = naive.query(text)
        assert Counter(tuple(None if t is None else _nt(t) for t in row) for row in fast.rows) == \
            Counter(tuple(None if t is None else _nt(t) for t in row) for row in answer), view.name
        checked += 1


# --- validation ---------------------------------------------------------------------------------------------------

def test_same_validation_results(dataset: dict) -> None:
    reference = _report(dataset, REFERENCE_ENGINE)
    fast = _report(dataset, FAST_ENGINE)
    assert reference.errors == [] and fast.errors == []
    ref_keys = Counter(r.key() for r in reference.results)
    fast_keys = Counter(r.key() for r in fast.results)
    missing = sorted(map(str, (ref_keys - fast_keys).elements()))
    extra = sorted(map(str, (fast_keys - ref_keys).elements()))
    assert not missing and not extra, f"only pySHACL: {missing[:5]}; only {FAST_ENGINE}: {extra[:5]}"

    def fps(report):
        return {(r.focus_text, r.path_text, r.severity) for r in report.results}

    assert fps(fast) == fps(reference)
    assert [str(r) for r in fast.results] == [str(r) for r in reference.results]  # same wording, same FILE:LINE
    assert fast.summary() == reference.summary()


def test_default_engine_agrees_with_the_reference(dataset: dict) -> None:
    """Whatever engine ``emkg validate`` uses by default gives the reference's results."""
    from emkg.validate import DEFAULT_ENGINE

    if DEFAULT_ENGINE == REFERENCE_ENGINE:
        pytest.skip("the default engine is the reference itself")
    assert Counter(r.key() for r in _report(dataset, DEFAULT_ENGINE).results) == \
        Counter(r.key() for r in _report(dataset, REFERENCE_ENGINE).results)


def test_two_process_validation_agrees(dataset: dict, monkeypatch: pytest.MonkeyPatch, caplog) -> None:
    """A national graph's shapes run in two processes (half the shape groups each): the report is
    the one a single run gives, result for result and word for word."""
    from emkg import validate

    single = _report(dataset, FAST_ENGINE)
    monkeypatch.setattr(validate, "SPLIT_TRIPLES", 0)
    if not validate._splits(dataset["graph"], validate.ENGINES[FAST_ENGINE]):
        pytest.skip("no fork or a single CPU: the shapes always run in one process")
    with caplog.at_level(logging.INFO, logger="emkg.validate"):
        split = validate.validate_loaded(dataset["project"], dataset["graph"], dataset["shapes"], engine=FAST_ENGINE)
    assert "the shapes run in two processes" in caplog.text
    assert split.errors == []
    assert split.results or dataset["name"] != "synthetic-faulted"  # not vacuous where there are results
    assert [str(r) for r in split.results] == [str(r) for r in single.results]
    assert split.summary() == single.summary()


def test_two_process_validation_reports_a_failing_half(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An engine that fails in the forked half is reported like a failure in one process."""
    from emkg import validate

    repo = Path(__file__).resolve().parents[1]
    project = open_project(repo)
    graph, shapes = load_graph(project), load_shapes(project)
    engine = validate.ENGINES[FAST_ENGINE]
    monkeypatch.setattr(validate, "SPLIT_TRIPLES", 0)
    if not validate._splits(graph, engine):
        pytest.skip("no fork or a single CPU")
    parent = os.getpid()

    def failing(data, shapes_graph):
        if os.getpid() != parent:
            raise ValueError("the engine refused these shapes")
        return engine(data, shapes_graph)

    failing.accepts_store = True
    report = validate.validate_loaded(project, graph, shapes, engine=failing)
    assert [e.message for e in report.errors] == [
        "the SHACL shapes could not be run: ValueError: the engine refused these shapes"]
    assert report.exit_code() != 0


def test_faulted_tree_has_results(dataset: dict) -> None:
    """The comparison is not vacuous: the faulted tree has violations of many components."""
    if dataset["name"] != "synthetic-faulted":
        pytest.skip("only the faulted tree is known to fail")
    report = _report(dataset, REFERENCE_ENGINE)
    components = {r.component for r in report.results if r.severity == "violation"}
    assert len(components) >= 8, components


def test_view_json_and_csv_are_the_reference_text(dataset: dict) -> None:
    """``format_json`` writes the text ``json.dumps(indent=2)`` would, ``format_csv`` the text
    ``csv.writer`` would, only faster."""
    from emkg.views import _format_csv_reference, _format_json_reference, format_csv, format_json

    for view in _views(dataset["project"]):
        result = run_local(dataset["graph"].store, bind_params(view, {}), view.name)
        assert format_json(result) == _format_json_reference(result), view.name
        assert format_csv(result) == _format_csv_reference(result), view.name


def test_view_json_edge_cases() -> None:
    from emkg.views import Result, _format_json_reference, format_json

    iri = ox.NamedNode("http://example.org/\u00e9t\u00e9")
    cases = [
        Result([], []), Result(["a"], []), Result(["a", "b"], [(None, None)]),
        Result(["a"], [(ox.Literal('x\n"\\\t\u2028\U0001F600\x01'),)]),
        Result(["a", "b"], [(ox.Literal("1", datatype=ox.NamedNode("http://www.w3.org/2001/XMLSchema#integer")),
                             ox.Literal("y", language="en-GB"))]),
        Result(["s"], [(ox.BlankNode("b0"),), (iri,)]), Result(["\u00fc", "b"], [(iri, None), (None, iri)]),
    ]
    for case in cases:
        assert format_json(case) == _format_json_reference(case)


def test_view_csv_edge_cases() -> None:
    """Cells the CSV writer quotes (or not): commas, quotes, line breaks, spaces at either end,
    empty literals and unbound variables, one column or several, repeated terms."""
    from emkg.views import Result, _format_csv_reference, format_csv

    texts = ["plain", "a,b", 'say "hi"', "two\nlines", "cr\rhere", " lead", "trail ", "\ttab", "", " ", "x y",
             "\u00e9t\u00e9", "\U0001F600", "semi;colon", "'single'", "#hash", "=1+1", "a\u2028b"]
    terms = [ox.Literal(t) for t in texts] + [ox.NamedNode("http://example.org/a,b"), ox.BlankNode("b0"),
                                              ox.Literal("1", datatype=ox.NamedNode("http://www.w3.org/2001/XMLSchema#integer"))]
    cases = [Result(["a"], [(t,) for t in terms] + [(None,)]),
             Result(["a", "b"], [(t, u) for t in terms + [None] for u in (None, t, terms[0])]),
             Result(["a", "b", "c"], [(None, None, None), (terms[1], terms[1], None)] * 3)]
    for case in cases:
        assert format_csv(case) == _format_csv_reference(case)
