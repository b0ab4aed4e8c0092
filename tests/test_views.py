"""Stored views: headers, safe parameters, local runs, result formats (on small throw-away projects),
and every stored view against the real project data: answers checked against the seeds, exact
columns, every format, and the same rows from rdflib's SPARQL engine as from pyoxigraph."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pyoxigraph as ox
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from emkg.errors import DataError, UsageError
from emkg.project import open_project
from emkg.views import (
    Result,
    bind_params,
    format_result,
    get_view,
    list_views,
    read_query_file,
    run_local,
    shorten,
    where_brace,
)

XSD = "http://www.w3.org/2001/XMLSchema#"
BASE = "https://w3id.org/emkg/"

# ==================================================================================================
# The machinery, on small projects
# ==================================================================================================

TINY_DATA = """\
@prefix ex: <http://example.org/> .
@prefix skos: <http://www.w3.org/2004/02/skos/core#> .
ex:a skos:prefLabel "Alpha"@en ; ex:n 1 ; ex:d "2019-09-01"^^<http://www.w3.org/2001/XMLSchema#date> .
ex:b skos:prefLabel "Beta"@en ; ex:n 2 ; ex:d "2023-03-01"^^<http://www.w3.org/2001/XMLSchema#date> .
"""

ECHO = """\
# title: Echo
# description: Returns the parameters it is given.
# param: s string optional  any text
# param: i iri optional  an IRI (e.g. https://w3id.org/emkg/id/area/derbyshire)
# param: d date optional  a day
# param: n integer optional  a number
SELECT ?s ?i ?d ?n
WHERE {
}
"""

LABELS = """\
# title: Labels
# description: Things and their labels,
#   over two lines.
# param: label string optional  Only the thing with this label
# a free comment in the header
PREFIX skos: <http://www.w3.org/2004/02/skos/core#>
SELECT ?thing ?name
WHERE {
  ?thing skos:prefLabel ?l .
  BIND(STR(?l) AS ?name)
  FILTER(!BOUND(?label) || ?name = ?label)
}
ORDER BY ?name
"""

ON_DATE = """\
# title: On a date
# description: Things dated on or before a day.
# param: day date required  The day (YYYY-MM-DD)
PREFIX ex: <http://example.org/>
SELECT ?thing
WHERE { ?thing ex:d ?d FILTER(?d <= ?day) }
ORDER BY ?thing
"""


@pytest.fixture
def tiny(make_project):
    root = make_project({
        "data/tiny.ttl": TINY_DATA,
        "queries/echo.rq": ECHO,
        "queries/labels.rq": LABELS,
        "queries/on-date.rq": ON_DATE,
    })
    return open_project(root)


@pytest.fixture
def tiny_store(tiny):
    from emkg.load import load_graph

    graph = load_graph(tiny)
    assert not graph.problems
    return graph.store


def test_header_is_read(tiny):
    views = {v.name: v for v in list_views(tiny)}
    assert sorted(views) == ["echo", "labels", "on-date"]
    labels = views["labels"]
    assert labels.title == "Labels"
    assert labels.description == "Things and their labels, over two lines."
    assert [(p.name, p.type, p.required) for p in labels.params] == [("label", "string", False)]
    assert labels.params[0].description == "Only the thing with this label"
    assert views["on-date"].params[0].required is True
    assert [p.type for p in views["echo"].params] == ["string", "iri", "date", "integer"]


def test_unknown_view_suggests_close_names(tiny):
    with pytest.raises(UsageError, match=r"unknown view 'lables'.*labels"):
        get_view(tiny, "lables")
    with pytest.raises(UsageError, match=r"unknown view 'zzz'") as info:
        get_view(tiny, "zzz")
    assert "did you mean" not in str(info.value)


@pytest.mark.parametrize("text, needle", [
    ("# description: d\nSELECT * { }\n", "title"),
    ("# title: t\nSELECT * { }\n", "description"),
    ("SELECT * { }\n# title: t\n# description: d\n", "title"),
    ("# title: t\n# description: d\n# param: x float optional\nSELECT ?x { }\n", "type 'float'"),
    ("# title: t\n# description: d\n# param: x iri maybe\nSELECT ?x { }\n", "'required' or 'optional'"),
    ("# title: t\n# description: d\n# param: x iri\nSELECT ?x { }\n", "expected '# param: NAME TYPE"),
    ("# title: t\n# description: d\n# param: x iri optional\nSELECT ?y { }\n", "?x is not used"),
    ("# title: t\n# description: d\n# param: x-y iri optional\nSELECT ?y { }\n", "not a SPARQL variable name"),
    ("# title: t\n# title: u\n# description: d\nSELECT * { }\n", "second '# title:'"),
])
def test_bad_headers_are_project_bugs_naming_the_file(make_project, text, needle):
    project = open_project(make_project({"queries/bad.rq": text}))
    with pytest.raises(DataError) as info:
        get_view(project, "bad")
    assert "queries/bad.rq" in str(info.value)
    assert needle in str(info.value)
    with pytest.raises(DataError):
        list_views(project)


def test_view_names_must_be_kebab_case(make_project):
    project = open_project(make_project({"queries/Bad_Name.rq": "# title: t\n# description: d\nSELECT * {}\n"}))
    with pytest.raises(DataError, match="kebab-case"):
        list_views(project)


def test_other_base_iri_rewrites_the_queries(make_project):
    root = make_project({"queries/v.rq": "# title: t\n# description: d\nPREFIX emkg: <https://w3id.org/emkg/def/>\nSELECT * { ?x a emkg:Thing }\n"},
                        base_iri="https://example.org/kg/")
    view = get_view(open_project(root), "v")
    assert "<https://example.org/kg/def/>" in view.text and "w3id.org" not in view.text


# --- where the VALUES go ---------------------------------------------------------------------------

@pytest.mark.parametrize("text, before", [
    ("SELECT ?x WHERE { ?x ?p ?o }", "SELECT ?x WHERE {"),
    ("select ?x where{?x ?p ?o}", "select ?x where{"),
    ("SELECT ?x { ?x ?p ?o }", "SELECT ?x {"),
    ("# WHERE { in a comment\nSELECT ?x WHERE { ?x ?p ?o }", "SELECT ?x WHERE {"),
    ("PREFIX w: <http://example.org/WHERE>\nSELECT (1 AS ?one) ?x WHERE { ?x w:p ?o }", "?x WHERE {"),
    ("SELECT ?x WHERE { { SELECT ?x WHERE { ?x ?p ?o } } }", "SELECT ?x WHERE {"),
    ("SELECT ?x WHERE { ?x ?p \"WHERE {\" }", "SELECT ?x WHERE {"),
    ('SELECT ?x WHERE { ?x ?p """a\n}WHERE {""" }', "SELECT ?x WHERE {"),
])
def test_where_brace_is_the_outermost_where_group(text, before):
    assert text[: where_brace(text)].endswith(before)
    assert where_brace(text) == text.index(before) + len(before)


def test_where_brace_skips_a_construct_template():
    text = "CONSTRUCT { ?x ?p ?o } WHERE { ?x ?p ?o }"
    assert text[where_brace(text):] == " ?x ?p ?o }"


# --- binding ---------------------------------------------------------------------------------------

def run_view(store, view, **values):
    return run_local(store, bind_params(view, values), view.name)


def values_of(result: Result) -> list[tuple]:
    return [tuple(None if t is None else t.value for t in row) for row in result.rows]


def test_bind_params_puts_values_after_the_where_brace_on_the_same_line(tiny):
    view = get_view(tiny, "labels")
    text = bind_params(view, {"label": "Alpha"})
    assert 'WHERE { VALUES ?label { "Alpha" } \n' in text
    assert text.count("\n") == view.text.count("\n")
    assert bind_params(view, {}) == view.text


def test_string_param_filters(tiny, tiny_store):
    view = get_view(tiny, "labels")
    assert values_of(run_view(tiny_store, view)) == [("http://example.org/a", "Alpha"), ("http://example.org/b", "Beta")]
    assert values_of(run_view(tiny_store, view, label="Beta")) == [("http://example.org/b", "Beta")]


INJECTIONS = [
    'x" } ; DROP ALL ; { "',
    "x' } ; DROP ALL ; { '",
    'Alpha" || true || "',
    'a"""b\'\'\'c',
    "} } SELECT * WHERE { ?s ?p ?o",
    "line\nbreak\r\ttab \\ backslash \\\" quote",
    "# not a comment",
    "<http://example.org/a>",
]


@pytest.mark.parametrize("value", INJECTIONS)
def test_injection_stays_one_plain_literal(tiny, tiny_store, value):
    view = get_view(tiny, "labels")
    before = sorted(map(str, tiny_store))
    result = run_view(tiny_store, view, label=value)
    assert result.rows == []
    assert sorted(map(str, tiny_store)) == before
    echo = run_view(tiny_store, get_view(tiny, "echo"), s=value)
    assert echo.rows == [(ox.Literal(value), None, None, None)]


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.text())
def test_any_string_round_trips_as_one_literal(tiny, tiny_store, value):
    echo = run_view(tiny_store, get_view(tiny, "echo"), s=value)
    assert echo.rows == [(ox.Literal(value), None, None, None)]


@pytest.mark.parametrize("given_value, expected", [
    ("https://w3id.org/emkg/id/area/derbyshire", BASE + "id/area/derbyshire"),
    ("<https://w3id.org/emkg/id/area/derbyshire>", BASE + "id/area/derbyshire"),
    ("area:derbyshire", BASE + "id/area/derbyshire"),
    ("authority:derby-city-council", BASE + "id/authority/derby-city-council"),
    ("emkg:LocalAuthority", BASE + "def/LocalAuthority"),
    ("derbyshire", BASE + "id/area/derbyshire"),  # a slug, against the example IRI's namespace
    ("urn:isbn:0451450523", "urn:isbn:0451450523"),
    ("http://example.org/x?y=1#z", "http://example.org/x?y=1#z"),
])
def test_iri_param_forms(tiny, tiny_store, given_value, expected):
    echo = run_view(tiny_store, get_view(tiny, "echo"), i=given_value)
    assert echo.rows == [(None, ox.NamedNode(expected), None, None)]


@pytest.mark.parametrize("name, value, needle", [
    ("i", "has space", "'i'"),
    ("i", "http://example.org/a>b", "'i'"),
    ("i", 'http://example.org/"', "'i'"),
    ("i", "http://example.org/{x}", "'i'"),
    ("i", "", "'i'"),
    ("i", "x\" } ; DROP ALL ; { \"", "'i'"),
    ("d", "2019-02-30", "'d'"),
    ("d", "2019-9-1", "'d'"),
    ("d", "yesterday", "'d'"),
    ("d", "2019-09-01T10:00:00", "'d'"),
    ("n", "1.5", "'n'"),
    ("n", "ten", "'n'"),
    ("n", "1 } ; DROP ALL", "'n'"),
    ("x", "1", "unknown parameter 'x'"),
])
def test_ill_typed_and_unknown_params_name_the_parameter(tiny, name, value, needle):
    with pytest.raises(UsageError) as info:
        bind_params(get_view(tiny, "echo"), {name: value})
    assert needle in str(info.value)


def test_slug_without_an_example_namespace_is_refused(tiny):
    view = get_view(tiny, "labels")
    object.__setattr__(view, "params", (view.params[0].__class__("label", "iri", False, "no example"),))
    with pytest.raises(UsageError, match="'label'"):
        bind_params(view, {"label": "derbyshire"})


def test_typed_params(tiny, tiny_store):
    echo = run_view(tiny_store, get_view(tiny, "echo"), d="2020-02-29", n="-42")
    assert echo.rows == [(None, None, ox.Literal("2020-02-29", datatype=ox.NamedNode(XSD + "date")),
                          ox.Literal("-42", datatype=ox.NamedNode(XSD + "integer")))]


def test_required_param(tiny, tiny_store):
    view = get_view(tiny, "on-date")
    with pytest.raises(UsageError, match="needs parameter 'day'"):
        bind_params(view, {})
    assert values_of(run_view(tiny_store, view, day="2020-01-01")) == [("http://example.org/a",)]
    assert values_of(run_view(tiny_store, view, day="2023-03-01")) == [("http://example.org/a",), ("http://example.org/b",)]


# --- running -----------------------------------------------------------------------------------------

def test_syntax_error_gives_the_file_line(make_project):
    text = "# title: t\n# description: d\n# param: p string optional  p\nSELECT ?x\nWHERE {\n  ?x ?p ?o .\n  FILTER(?x = )\n  BIND(?p AS ?z)\n}\n"
    project = open_project(make_project({"queries/broken.rq": text}))
    view = get_view(project, "broken")
    for values in ({}, {"p": "multi\nline"}):
        with pytest.raises(UsageError, match=r"^queries/broken\.rq:7:\d+: error: ") as info:
            run_local(ox.Store(), bind_params(view, values), project.relative(view.path))
        assert "FILTER" in str(info.value)


def test_unknown_prefix_is_named(make_project):
    with pytest.raises(UsageError, match=r"q\.rq:2:\d+: error: Prefix not found"):
        run_local(ox.Store(), "SELECT ?x\nWHERE { ?x nope:p ?o }", "q.rq")


def test_only_select_queries(make_project):
    with pytest.raises(UsageError, match="only SELECT"):
        run_local(ox.Store(), "ASK { ?s ?p ?o }", "q.rq")


def test_read_query_file_needs_no_header(tiny, tmp_path):
    path = tmp_path / "q.rq"
    path.write_text("SELECT ?x WHERE { ?x ?p ?o }\n", encoding="utf-8")
    view = read_query_file(path, tiny)
    assert view.params == () and view.title == "q"


# --- formats -----------------------------------------------------------------------------------------

EN = "en"
TRICKY = Result(
    variables=["iri", "text", "lang", "number", "date", "blank", "empty"],
    rows=[
        (ox.NamedNode(BASE + "id/area/derbyshire"), ox.Literal('a "quoted", comma'), ox.Literal("colour", language=EN),
         ox.Literal("90", datatype=ox.NamedNode(XSD + "integer")), ox.Literal("2018-04-20", datatype=ox.NamedNode(XSD + "date")),
         ox.BlankNode("b0"), None),
        (ox.NamedNode("http://example.org/z"), ox.Literal("two\nlines\tand tab\r\n"), None, None, None, None,
         ox.Literal("")),
    ],
)


def test_csv_follows_the_w3c_spec():
    text = format_result(TRICKY, "csv")
    assert text.endswith("\r\n") and "\r\n" in text
    assert text.splitlines()[0] == "iri,text,lang,number,date,blank,empty"
    rows = list(csv.reader(io.StringIO(text, newline=""), strict=True))
    assert rows[0] == TRICKY.variables
    assert rows[1] == [BASE + "id/area/derbyshire", 'a "quoted", comma', "colour", "90", "2018-04-20", "_:b0", ""]
    assert rows[2] == ["http://example.org/z", "two\nlines\tand tab\r\n", "", "", "", "", ""]
    assert '"a ""quoted"", comma"' in text  # RFC 4180 quoting: doubled quotes inside quotes
    assert ",colour," in text  # no needless quoting


def test_tsv_follows_the_w3c_spec():
    text = format_result(TRICKY, "tsv")
    lines = text.split("\n")
    assert lines[-1] == "" and len(lines) == 4, "one line per row, LF ends, no raw newlines or tabs in terms"
    assert lines[0] == "?iri\t?text\t?lang\t?number\t?date\t?blank\t?empty"
    first = lines[1].split("\t")
    assert first == [f"<{BASE}id/area/derbyshire>", '"a \\"quoted\\", comma"', '"colour"@en',
                     f'"90"^^<{XSD}integer>', f'"2018-04-20"^^<{XSD}date>', "_:b0", ""]
    second = lines[2].split("\t")
    assert second[1] == '"two\\nlines\\tand tab\\r\\n"'
    assert second[6] == '""'
    for line in lines[1:-1]:  # every term is N-Triples/Turtle syntax
        for cell in line.split("\t"):
            if cell and not cell.startswith("_:"):
                assert len(list(ox.parse(f"<http://s> <http://p> {cell} .".encode(), format=ox.RdfFormat.N_TRIPLES))) == 1


def test_json_follows_the_w3c_spec():
    data = json.loads(format_result(TRICKY, "json"))
    assert data["head"] == {"vars": TRICKY.variables}
    first, second = data["results"]["bindings"]
    assert first["iri"] == {"type": "uri", "value": BASE + "id/area/derbyshire"}
    assert first["text"] == {"type": "literal", "value": 'a "quoted", comma'}
    assert first["lang"] == {"type": "literal", "value": "colour", "xml:lang": "en"}
    assert first["number"] == {"type": "literal", "value": "90", "datatype": XSD + "integer"}
    assert first["blank"] == {"type": "bnode", "value": "b0"}
    assert "empty" not in first, "unbound variables are left out"
    assert second["empty"] == {"type": "literal", "value": ""}
    assert set(second) == {"iri", "text", "empty"}


def test_table_is_aligned_with_short_iris():
    text = format_result(TRICKY, "table")
    lines = text.splitlines()
    assert lines[0].split() == TRICKY.variables
    assert lines[2].startswith("area:derbyshire  ")
    assert "two lines and tab" in lines[3]
    starts = [line.index("colour") for line in lines if "colour" in line]
    assert starts == [lines[0].index("lang")]
    assert all(line == line.rstrip() for line in lines)


def test_empty_result_formats():
    empty = Result(["a", "b"], [])
    assert format_result(empty, "csv") == "a,b\r\n"
    assert format_result(empty, "tsv") == "?a\t?b\n"
    assert json.loads(format_result(empty, "json")) == {"head": {"vars": ["a", "b"]}, "results": {"bindings": []}}
    assert format_result(empty, "table").splitlines()[0].split() == ["a", "b"]


def test_shorten():
    prefixes = {"area": BASE + "id/area/", "emkg": BASE + "def/", "ex": "http://example.org/"}
    assert shorten(BASE + "id/area/derbyshire", prefixes) == "area:derbyshire"
    assert shorten(BASE + "def/LocalAuthority", prefixes) == "emkg:LocalAuthority"
    assert shorten("http://example.org/a/b", prefixes) == "http://example.org/a/b"
    assert shorten("http://other.org/", prefixes) == "http://other.org/"
