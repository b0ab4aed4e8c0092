"""Stored views: headers, safe parameters, local runs, result formats (on small throw-away projects),
and every stored view against the real project data: answers checked against the seeds, exact
columns, every format, and the same rows from rdflib's SPARQL engine as from pyoxigraph."""

from __future__ import annotations

import csv
import io
import json
import os
import re
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
    ("i", "aera:derbyshire", "unknown prefix 'aera'"),
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


# ==================================================================================================
# The stored views on the real project data: answers from the seeds
# ==================================================================================================

REPO_ROOT = Path(__file__).resolve().parent.parent

# The documented result variables of every stored view (other tools rely on them, in this order).
COLUMNS = {
    "abolished-authorities": ["authority", "name", "type", "gss_code", "dissolved", "successors"],
    "areas": ["area", "name", "type", "within"],
    "authorities": ["authority", "name", "type", "county", "website", "gss_code"],
    "authority-involvement": ["authority", "name", "involvement", "thing", "update"],
    "events": ["event", "name", "date", "participants", "host"],
    "glossary": ["term", "expansion"],
    "mentions": ["update", "date", "entity", "name"],
    "other-authorities": ["authority", "name", "type", "gss_code", "website"],
    "people": ["person", "name", "role", "organisation"],
    "priorities-and-themes": ["scheme", "concept", "label", "year"],
    "programmes": ["programme", "name", "lead", "first_date", "last_date", "updates"],
    "provenance": ["entity", "source", "heading", "seed", "start_line", "end_line"],
    "quantities": ["quantity", "thing", "stated_as", "comparator", "value", "out_of", "unit"],
    "trustees": ["person", "name", "role", "organisation", "region"],
    "updates": ["update", "title", "date", "region", "items"],
    "upper-tier-authorities": ["authority", "name", "type", "founded", "dissolved"],
}

# One row per thing: the columns that identify a row.
KEYS = {
    "abolished-authorities": ["authority"],
    "areas": ["area"],
    "authorities": ["authority"],
    "events": ["event"],
    "glossary": ["term"],
    "mentions": ["update", "entity"],
    "other-authorities": ["authority"],
    "priorities-and-themes": ["scheme", "concept"],
    "programmes": ["programme"],
    "quantities": ["quantity"],
    "trustees": ["person"],
    "updates": ["update"],
    "upper-tier-authorities": ["authority"],
}

# Parameter values that exercise every parameter of the stored views.
PARAMS = {
    "authorities": {"in_county": "derbyshire"},
    "authority-involvement": {"authority": "authority:northamptonshire-county-council"},
    "glossary": {"acronym": "ssif"},
    "mentions": {"entity": "organisation:rees-centre"},
    "provenance": {"entity": "event:third-east-midlands-regional-workforce-development-conference"},
    "upper-tier-authorities": {"date": "2019-09-01"},
}

ID = BASE + "id/"

# The 40 authorities of seed 000 (lines 7-61), with the websites the seed gives.
SEED_AUTHORITIES = {
    "Amber Valley Borough Council": "www.ambervalley.gov.uk", "High Peak Borough Council": "www.highpeak.gov.uk",
    "Peak District National Park Authority": "www.peakdistrict.gov.uk", "Ashfield District Council": "www.ashfield.gov.uk",
    "Hinckley and Bosworth Borough Council": "www.hinckley-bosworth.gov.uk", "Rushcliffe Borough Council": "www.rushcliffe.gov.uk",
    "Bassetlaw District Council": "www.bassetlaw.gov.uk", "Leicester City Council": "www.leicester.gov.uk",
    "Rutland County Council": None, "Blaby District Council": None, "Leicestershire County Council": None,
    "South Derbyshire District Council": None, "Bolsover District Council": None, "Lincoln City Council": None,
    "South Holland District Council": None, "Boston Borough Council": None, "Lincolnshire County Council": None,
    "South Kesteven District Council": None, "Broxtowe Borough Council": None, "Mansfield District Council": None,
    "West Lindsey District Council": None, "Charnwood Borough Council": None, "Melton Borough Council": None,
    "West Northamptonshire Council": "www.westnorthants.gov.uk", "Chesterfield Borough Council": None,
    "Newark and Sherwood District Council": None, "Derby City Council": None,
    "North East Derbyshire District Council": None, "Derbyshire County Council": "www.derbyshire.gov.uk",
    "North Kesteven District Council": None, "Derbyshire Dales District Council": "www.derbyshiredales.gov.uk",
    "North Northamptonshire Council": None, "East Lindsey District Council": "www.e-lindsey.gov.uk",
    "North West Leicestershire District Council": None, "Erewash Borough Council": "www.erewash.gov.uk",
    "Nottingham City Council": None, "Gedling Borough Council": "www.gedling.gov.uk",
    "Nottinghamshire County Council": None, "Harborough District Council": "www.harborough.gov.uk",
    "Oadby and Wigston Borough Council": None,
}


@pytest.fixture(scope="module")
def real():
    """The real project and its loaded graph (ontology and data)."""
    from emkg.load import load_graph

    project = open_project(REPO_ROOT)
    if not any(project.data_dir.rglob("*.ttl")):
        pytest.fail("the project has no data/*.ttl")
    graph = load_graph(project)
    assert not graph.problems, graph.problems
    return project, graph


@pytest.fixture(scope="module")
def rdflib_graph(real):
    return real[1].to_rdflib()


def run_real(real, name: str, **params) -> Result:
    project, graph = real
    view = get_view(project, name)
    return run_local(graph.store, bind_params(view, params), name)


def rows_of(real, name: str, **params) -> list[dict[str, str | None]]:
    """The rows as dicts of lexical values (IRIs as strings, None where unbound)."""
    result = run_real(real, name, **params)
    return [{var: (None if term is None else term.value) for var, term in zip(result.variables, row)}
            for row in result.rows]


def one(rows: list[dict], **match) -> dict:
    found = [r for r in rows if all(r[k] == v for k, v in match.items())]
    assert len(found) == 1, f"expected one row with {match}, got {found}"
    return found[0]


def column(rows: list[dict], name: str) -> list:
    return [r[name] for r in rows]


# --- every view ----------------------------------------------------------------------------------------

def test_the_stored_views_are_the_documented_ones(real):
    project, _ = real
    assert sorted(v.name for v in list_views(project)) == sorted(COLUMNS)


@pytest.mark.parametrize("name", sorted(COLUMNS))
def test_view_has_exactly_its_documented_columns_and_a_total_order(real, name):
    view = get_view(real[0], name)
    assert view.title and view.description and len(view.description) > 40
    assert "ORDER BY" in view.text
    assert not re.search(r"GROUP_CONCAT\s*\(", view.text, re.I), "GROUP_CONCAT's order differs between engines"
    assert not re.search(r"\bSAMPLE\s*\(", view.text, re.I), "SAMPLE's choice differs between engines"
    result = run_real(real, name)
    assert result.variables == COLUMNS[name]
    assert result.rows, f"{name} has no rows on the project data"
    assert len(set(result.rows)) == len(result.rows), "no duplicate rows"
    again = run_real(real, name)
    assert again.rows == result.rows
    if name in KEYS:
        keys = [tuple(r[result.variables.index(k)] for k in KEYS[name]) for r in result.rows]
        assert len(set(keys)) == len(keys), f"{name}: one row per {'+'.join(KEYS[name])}"


@pytest.mark.parametrize("name", sorted(PARAMS))
def test_every_parameter_is_exercised(real, name):
    view = get_view(real[0], name)
    assert {p.name for p in view.params} == set(PARAMS[name])
    narrowed = run_real(real, name, **PARAMS[name])
    full = run_real(real, name)
    assert narrowed.rows and set(narrowed.rows) <= set(full.rows)


# --- authorities --------------------------------------------------------------------------------------

def test_authorities_are_the_forty_the_seed_lists(real):
    rows = rows_of(real, "authorities")
    assert len(rows) == 40
    assert sorted(column(rows, "name")) == sorted(SEED_AUTHORITIES)
    for name, domain in SEED_AUTHORITIES.items():
        if domain:
            assert one(rows, name=name)["website"] == f"https://{domain}/"
    rutland = one(rows, name="Rutland County Council")
    assert rutland["website"] == "https://www.rutland.gov.uk/"  # not in the seed: the reference list gives it
    assert rutland["type"] == "unitary authority" and rutland["county"] is None and rutland["gss_code"] == "E06000017"
    assert all(r["website"].startswith("https://") and r["website"].endswith("/") for r in rows if r["website"])
    assert all(r["gss_code"] for r in rows)


def test_authority_types_and_counties(real):
    rows = rows_of(real, "authorities")
    types = {r["name"]: r["type"] for r in rows}
    assert types["Derby City Council"] == "unitary authority"
    assert types["Derbyshire County Council"] == "county council"
    assert types["Peak District National Park Authority"] == "national park authority"
    assert types["Amber Valley Borough Council"] == "district council"
    assert sorted(set(types.values())) == ["county council", "district council", "national park authority", "unitary authority"]
    assert sum(t == "county council" for t in types.values()) == 4
    assert sum(t == "unitary authority" for t in types.values()) == 6
    assert one(rows, name="Amber Valley Borough Council")["county"] == "Derbyshire"
    assert one(rows, name="Lincoln City Council")["county"] == "Lincolnshire"
    assert one(rows, name="Oadby and Wigston Borough Council")["county"] == "Leicestershire"
    for row in rows:
        assert (row["county"] is not None) == (row["type"] == "district council"), row
    assert one(rows, name="Peak District National Park Authority")["gss_code"] == "E26000006"


def test_authorities_in_a_county(real):
    rows = rows_of(real, "authorities", in_county="derbyshire")
    names = set(column(rows, "name"))
    districts = {"Amber Valley Borough Council", "Bolsover District Council", "Chesterfield Borough Council",
                 "Derbyshire Dales District Council", "Erewash Borough Council", "High Peak Borough Council",
                 "North East Derbyshire District Council", "South Derbyshire District Council"}
    assert districts | {"Derbyshire County Council", "Derby City Council"} <= names
    assert not any("Leicester" in n or "Nottingham" in n for n in names)
    assert rows_of(real, "authorities", in_county=ID + "area/rutland") == [one(rows_of(real, "authorities"), name="Rutland County Council")]


def test_abolished_authorities(real):
    rows = rows_of(real, "abolished-authorities")
    assert len(rows) == 8
    assert set(column(rows, "dissolved")) == {"2021-04-01"}
    county = one(rows, name="Northamptonshire County Council")
    assert county["type"] == "county council" and county["gss_code"] == "E10000021"
    assert county["successors"] == "North Northamptonshire Council; West Northamptonshire Council"
    assert one(rows, name="Corby Borough Council")["successors"] == "North Northamptonshire Council"
    assert one(rows, name="Daventry District Council")["successors"] == "West Northamptonshire Council"
    north = [r["name"] for r in rows if r["successors"] == "North Northamptonshire Council"]
    west = [r["name"] for r in rows if r["successors"] == "West Northamptonshire Council"]
    assert len(north) == 4 and len(west) == 3
    assert not set(column(rows, "authority")) & set(column(rows_of(real, "authorities"), "authority"))


def test_other_authorities_are_outside_the_region(real):
    rows = rows_of(real, "other-authorities")
    assert [r["authority"] for r in rows] == [ID + "authority/leeds"]
    listed = set(column(rows_of(real, "authorities"), "authority"))
    assert not set(column(rows, "authority")) & listed


@pytest.mark.parametrize("day, count", [("2016-06-01", 9), ("2019-09-01", 9), ("2021-03-31", 9),
                                        ("2021-04-01", 10), ("2023-03-01", 10)])
def test_upper_tier_authorities_on_a_date(real, day, count):
    rows = rows_of(real, "upper-tier-authorities", date=day)
    names = set(column(rows, "name"))
    assert len(rows) == count
    assert {"Derbyshire County Council", "Leicestershire County Council", "Lincolnshire County Council",
            "Nottinghamshire County Council", "Derby City Council", "Leicester City Council",
            "Nottingham City Council", "Rutland County Council"} <= names
    after = day >= "2021-04-01"
    assert ("North Northamptonshire Council" in names) is after
    assert ("West Northamptonshire Council" in names) is after
    assert ("Northamptonshire County Council" in names) is not after
    assert "Peak District National Park Authority" not in names


def test_upper_tier_authorities_ever(real):
    rows = rows_of(real, "upper-tier-authorities")
    assert len(rows) == 11
    assert one(rows, name="North Northamptonshire Council")["founded"] == "2021-04-01"
    assert one(rows, name="Northamptonshire County Council")["dissolved"] == "2021-04-01"


# --- areas and updates ------------------------------------------------------------------------------------

def test_areas(real):
    rows = rows_of(real, "areas")
    region = one(rows, name="East Midlands")
    assert region["type"] == "region" and region["within"] is None
    counties = {r["name"] for r in rows if r["type"] == "county"}
    assert counties == {"Lincolnshire", "Northamptonshire", "Derbyshire", "Nottinghamshire", "Leicestershire", "Rutland"}
    assert all(r["within"] == region["area"] for r in rows if r["type"] == "county")


def test_updates(real):
    rows = rows_of(real, "updates")
    assert [(r["date"], r["title"]) for r in rows] == [
        ("2016-06-01", "East Midlands Region June 2016 Update"),
        ("2017-09-01", "East Midlands Region Update - September 2017"),
        ("2018-06-01", "East Midlands Regional Update June 2018"),
        ("2019-09-01", "East Midlands Regional Update September 2019"),
        ("2023-03-01", "March 2023"),
    ]
    assert {r["update"] for r in rows} == {ID + f"update/{m}" for m in ("2016-06", "2017-09", "2018-06", "2019-09", "2023-03")}
    assert set(column(rows, "region")) == {ID + "area/east-midlands"}
    items = {r["date"][:7]: int(r["items"]) for r in rows}
    # sections as the seeds lay them out (headings, and untitled paragraphs or lists)
    assert items == {"2016-06": 9, "2017-09": 7, "2018-06": 7, "2019-09": 7, "2023-03": 2}


# --- programmes ----------------------------------------------------------------------------------------

def test_programmes(real):
    rows = rows_of(real, "programmes")
    qsw = one(rows, name="Qualified Social Worker MoU")
    assert (qsw["first_date"], qsw["last_date"], qsw["updates"]) == ("2017-09-01", "2019-09-01", "3")
    apprenticeship = one(rows, name="Early Intervention Practitioner L4 Apprenticeship")
    assert apprenticeship["lead"] == ID + "group/em-regional-workforce-leads-group"
    assert (apprenticeship["first_date"], apprenticeship["updates"]) == ("2019-09-01", "1")
    aas = one(rows, programme=ID + "programme/attachment-aware-schools")
    assert aas["lead"] == ID + "organisation/derbyshire-virtual-school" and aas["first_date"] == "2023-03-01"
    raa = one(rows, name="Regional Adoption Agency")
    assert (raa["first_date"], raa["last_date"], raa["updates"]) == ("2016-06-01", "2018-06-01", "2")
    for row in rows:
        assert int(row["updates"]) >= 1 and row["first_date"] <= row["last_date"]


# --- mentions ------------------------------------------------------------------------------------------

def test_mentions(real):
    rows = rows_of(real, "mentions")
    ifate = ID + "organisation/institute-for-apprenticeships-and-technical-education"
    row = one(rows, update=ID + "update/2019-09", entity=ifate)
    assert row["name"] == "Institute for Apprenticeships and Technical Education" and row["date"] == "2019-09-01"
    assert [r["update"] for r in rows if r["entity"] == ifate] == [ID + "update/2019-09"]
    rees = [r["update"] for r in rows if r["entity"] == ID + "organisation/rees-centre"]
    assert rees == [ID + "update/2023-03"]
    lesley = [r["update"] for r in rows if r["name"] == "Lesley Hagger"]
    assert lesley == [ID + "update/2018-06"]
    assert all(r["name"] for r in rows), "every mentioned entity has a name"
    only = rows_of(real, "mentions", entity="organisation:rees-centre")
    assert [r["update"] for r in only] == rees


# --- people and events ------------------------------------------------------------------------------------

def test_trustees(real):
    rows = rows_of(real, "trustees")
    assert column(rows, "name") == ["Anne-Marie McBlain", "Lizzie Watt"]
    assert set(column(rows, "role")) == {"Local Area Trustee"}
    assert set(column(rows, "region")) == {ID + "area/east-midlands"}
    assert set(column(rows, "organisation")) == {None}  # the seed does not name it


def test_people(real):
    rows = rows_of(real, "people")
    assert sorted(set(column(rows, "name"))) == ["Anne-Marie McBlain", "Julie Longworth", "Lesley Hagger", "Lizzie Watt"]
    lesley = one(rows, name="Lesley Hagger")
    assert lesley["role"] == "DCS Northamptonshire"
    assert lesley["organisation"] == ID + "authority/northamptonshire-county-council"
    julie = one(rows, name="Julie Longworth")
    assert julie["role"] == "Head of Service, Early Help, Leeds" and julie["organisation"] == ID + "authority/leeds"
    assert one(rows, name="Lizzie Watt")["role"] == "Local Area Trustee"


def test_events(real):
    rows = rows_of(real, "events")
    conference = one(rows, event=ID + "event/third-east-midlands-regional-workforce-development-conference")
    assert conference["name"] == "East Midlands Regional Workforce Development Conference"
    assert conference["date"] == "2018-04-20"
    assert [r["event"] for r in rows if r["participants"]] == [conference["event"]]
    assert int(conference["participants"]) == 90
    assert conference["host"] == ID + "person/lesley-hagger"
    assert one(rows, event=ID + "event/featured-event-2018-11-14")["date"].startswith("2018-11-14T10:00")
    assert one(rows, event=ID + "event/regional-education-summit-first-meeting")["host"] == ID + "group/regional-education-summit"
    dated = [r["date"] for r in rows if r["date"]]
    assert dated == sorted(dated)


def test_quantities(real):
    rows = rows_of(real, "quantities")
    over90 = one(rows, stated_as="Over 90 participants")
    assert (over90["comparator"], over90["value"], over90["unit"]) == ("more than", "90", "participants")
    assert over90["thing"].endswith("third-east-midlands-regional-workforce-development-conference")
    four = one(rows, stated_as="Four out of nine of the region’s LAs")
    assert (four["value"], four["out_of"]) == ("4", "9")
    assert one(rows, quantity=ID + "quantity/2019-09-uasc-threshold")["comparator"] == "at or near"
    assert all(r["thing"] for r in rows)


def test_authority_involvement(real):
    rows = rows_of(real, "authority-involvement", authority="northamptonshire-county-council")
    assert {r["name"] for r in rows} == {"Northamptonshire County Council"}
    conference = ID + "event/third-east-midlands-regional-workforce-development-conference"
    assert one(rows, involvement="hosts through its post holder", thing=conference)["update"] == ID + "update/2018-06"
    assert one(rows, involvement="has post")["thing"] == ID + "post/dcs-northamptonshire"
    assert one(rows, involvement="mentioned")["thing"] == ID + "section/2018-06-workforce-development-conference"
    everyone = rows_of(real, "authority-involvement")
    assert {r["authority"] for r in everyone} >= {ID + "authority/leeds", ID + "authority/northamptonshire-county-council"}
    # "All nine LAs in the region have pooled the DWP grant for parental conflict" (September 2019)
    pooled = {r["authority"] for r in everyone
              if r["involvement"] == "involved in" and r["thing"] == ID + "programme/parental-conflict"}
    assert pooled == set(column(rows_of(real, "upper-tier-authorities", date="2019-09-01"), "authority"))
    assert {r["update"] for r in everyone if r["thing"] == ID + "programme/parental-conflict"} == {ID + "update/2019-09"}


# --- lists and glossary --------------------------------------------------------------------------------------

def test_priorities_and_themes(real):
    rows = rows_of(real, "priorities-and-themes")
    priorities = [r for r in rows if r["scheme"] == ID + "scheme/priorities-2019"]
    assert [r["label"] for r in priorities] == [
        "Managing increasing levels of demand and need at a time of reducing financial resource, including SEND pressures and placement sufficiency",
        "Social Work recruitment and managing the workforce (MoU)",
        "Protecting children at risk of exploitation",
        "The quality and effectiveness of practice that improves outcomes",
    ]
    assert {r["year"] for r in priorities} == {"2019"}
    themes = [r for r in rows if r["scheme"] == ID + "scheme/themes-2018"]
    assert [r["label"] for r in themes] == [
        "Developing reflective and restorative supervision", "Placement sufficiency planning",
        "Improvement plans and assessing/evidencing impact", "SMART care planning and regional panels for audit moderation",
        "Consistent models for practice methodology", "Reducing exploitation of vulnerable young people",
    ]
    assert {r["year"] for r in themes} == {"2018"}
    steps = [r for r in rows if r["scheme"] == ID + "scheme/ria-common-core"]
    assert len(steps) == 6 and steps[1]["label"] == "Each self-evaluation is peer scrutinised"
    assert not any(r["concept"].startswith(ID + "concept/glossary-") for r in rows)
    assert not any(r["concept"].startswith(ID + "role/") for r in rows)
    years = [int(r["year"]) for r in rows if r["year"]]
    assert years == sorted(years)


def test_glossary(real):
    rows = rows_of(real, "glossary")
    terms = {r["term"]: r["expansion"] for r in rows}
    assert terms["SSIF"] == "Strategic School Improvement Fund"
    assert terms["UASC"] == "Unaccompanied Asylum Seeking Children"
    assert terms["SEND"].lower().startswith("special educational needs")
    assert {"CiC", "CiN", "CP", "DCS", "IRO", "LA", "MoU", "RIIA", "RIA", "EMTSA"} <= set(terms)
    assert column(rows_of(real, "glossary", acronym="ssif"), "term") == ["SSIF"]
    assert [t.lower() for t in column(rows, "term")] == sorted(t.lower() for t in column(rows, "term"))


# --- provenance --------------------------------------------------------------------------------------------

SEEDS = REPO_ROOT.parent / "shared" / "seeds"


def test_provenance_points_at_the_seed_lines(real):
    rows = rows_of(real, "provenance", entity="event:third-east-midlands-regional-workforce-development-conference")
    assert rows
    for row in rows:
        assert row["seed"] == "004_8bbb4f4562ebb220"
        assert int(row["start_line"]) <= 68 <= int(row["end_line"])
    everything = rows_of(real, "provenance")
    assert len({r["entity"] for r in everything}) > 100
    for row in everything:
        if row["start_line"] is not None:
            assert 1 <= int(row["start_line"]) <= int(row["end_line"])
    if SEEDS.is_dir():  # the seed text itself: the section's lines hold what the entity says
        lines = (SEEDS / "004_8bbb4f4562ebb220.txt").read_text(encoding="utf-8").splitlines()
        row = rows[0]
        text = "\n".join(lines[int(row["start_line"]) - 1: int(row["end_line"])])
        assert "Lesley Hagger" in text and "Over 90 participants" in text
    ifate = rows_of(real, "provenance", entity="organisation:institute-for-apprenticeships-and-technical-education")
    assert {r["seed"] for r in ifate} == {"001_459201e62f3ba482"}


# --- safe parameters on the real data ----------------------------------------------------------------------

def test_injection_is_one_literal_that_matches_nothing(real):
    project, graph = real
    before = len(graph.store)
    result = run_real(real, "glossary", acronym='x" } ; DROP ALL ; { "')
    assert result.rows == []
    assert len(graph.store) == before
    assert len(run_real(real, "glossary").rows) > 20


def test_injection_through_the_cli(run_emkg):
    code, out, err = run_emkg("query", "glossary", "--param", 'acronym=x" } ; DROP ALL ; { "', "--format", "csv", root=REPO_ROOT)
    assert code == 0, err
    assert out == "term,expansion\r\n"
    code, out, err = run_emkg("query", "glossary", "--param", "acronym=SSIF", "--format", "csv", root=REPO_ROOT)
    assert out == "term,expansion\r\nSSIF,Strategic School Improvement Fund\r\n"


@pytest.mark.parametrize("args, needle", [
    (["upper-tier-authorities", "--param", "date=2019-13-01"], "'date'"),
    (["upper-tier-authorities", "--param", "date=September 2019"], "'date'"),
    (["authorities", "--param", "in_county=not a county"], "'in_county'"),
    (["authorities", "--param", "county=derbyshire"], "'county'"),
    (["mentions", "--param", "entity=<x y>"], "'entity'"),
])
def test_bad_params_on_the_real_views(run_emkg, args, needle):
    code, out, err = run_emkg("query", *args, root=REPO_ROOT)
    assert code == 2 and out == ""
    assert needle in err


# --- formats and engines --------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", sorted(COLUMNS))
def test_every_format_gives_the_same_rows(real, name):
    result = run_real(real, name)
    lexical = [[("" if t is None else t.value) for t in row] for row in result.rows]
    csv_rows = list(csv.reader(io.StringIO(format_result(result, "csv"), newline=""), strict=True))
    assert csv_rows[0] == result.variables
    assert csv_rows[1:] == [["_:" + v if isinstance(t, ox.BlankNode) else v for t, v in zip(row, lex)]
                            for row, lex in zip(result.rows, lexical)]
    tsv = format_result(result, "tsv")
    tsv_rows = [line.split("\t") for line in tsv.split("\n")[:-1]]
    assert tsv_rows[0] == [f"?{v}" for v in result.variables]
    assert len(tsv_rows) == len(result.rows) + 1
    for row, cells in zip(result.rows, tsv_rows[1:]):
        for term, cell in zip(row, cells):
            if term is None:
                assert cell == ""
            else:
                parsed = next(iter(ox.parse(f"<http://s> <http://p> {cell} .".encode(), format=ox.RdfFormat.N_TRIPLES)))
                assert parsed.object == term
    data = json.loads(format_result(result, "json"))
    assert data["head"]["vars"] == result.variables
    assert len(data["results"]["bindings"]) == len(result.rows)
    for row, binding in zip(result.rows, data["results"]["bindings"]):
        for var, term in zip(result.variables, row):
            if term is None:
                assert var not in binding
            else:
                assert binding[var]["value"] == term.value
                assert binding[var]["type"] == {"NamedNode": "uri", "Literal": "literal", "BlankNode": "bnode"}[type(term).__name__]
    table = format_result(result, "table").splitlines()
    assert table[0].split() == result.variables and len(table) == len(result.rows) + 2


def ntriples_rows(rows) -> list[tuple[str, ...]]:
    return [tuple("" if t is None else str(t) for t in row) for row in rows]


@pytest.mark.parametrize("name, params", [(n, {}) for n in sorted(COLUMNS)] + sorted(PARAMS.items()))
def test_rdflib_gives_the_same_rows_as_pyoxigraph(real, rdflib_graph, name, params):
    """A second SPARQL engine: the views are portable SPARQL 1.1 (same rows, same order)."""
    from emkg.terms import rdflib_to_ox

    project, graph = real
    view = get_view(project, name)
    text = bind_params(view, params)
    ours = run_local(graph.store, text, name)
    theirs = rdflib_graph.query(text)
    assert [str(v) for v in theirs.vars] == ours.variables
    their_rows = [tuple(None if t is None else rdflib_to_ox(t) for t in row) for row in theirs]
    assert sorted(ntriples_rows(their_rows)) == sorted(ntriples_rows(ours.rows)), "same rows"
    assert ntriples_rows(their_rows) == ntriples_rows(ours.rows), "same order"


# --- other SPARQL servers: Oxigraph server and Virtuoso ------------------------------------------------------

VIEW_GRAPH = "https://w3id.org/emkg/graph/views-test"


def _server_cases() -> list:
    return [pytest.param(n, {}, id=n) for n in sorted(COLUMNS)] + [
        pytest.param(n, p, id=f"{n}-{'-'.join(p)}") for n, p in sorted(PARAMS.items())]


@pytest.fixture(scope="module")
def virtuoso_views(real, tmp_path_factory):
    """The project graph bulk-loaded (TTLP, not through emkg push) into a named graph of a Virtuoso 7."""
    from servers import VirtuosoServer

    from emkg.endpoint import EndpointConfig

    if not VirtuosoServer.available():
        if os.environ.get("CI"):
            pytest.fail("virtuoso-t is missing in CI: .ci/install-tools should have installed virtuoso-opensource")
        pytest.skip("virtuoso-t is not installed (Debian virtuoso-opensource; make tools)")
    folder = tmp_path_factory.mktemp("virtuoso-views")
    server = VirtuosoServer(folder, max_rows=50_000)
    try:
        server.start()
        dump = folder / "load" / "graph.nq"
        dump.write_bytes(ox.serialize(real[1].store, format=ox.RdfFormat.N_QUADS))
        server.isql(f"DB.DBA.TTLP_MT(file_to_string_output('{dump}'), '', '{VIEW_GRAPH}', 255)", "checkpoint")
        yield EndpointConfig(query_url=server.query_url, update_url=server.update_url, graph=VIEW_GRAPH,
                             timeout=60, retries=0)
    finally:
        server.stop()


@pytest.mark.slow
@pytest.mark.virtuoso
@pytest.mark.parametrize("name, params", _server_cases())
def test_virtuoso_gives_the_same_rows_in_the_same_order(real, virtuoso_views, name, params):
    """Virtuoso 7 (Debian's): same rows, same order, for every view (no property paths, CONCAT'd sort keys)."""
    from emkg.endpoint import run_remote

    view = get_view(real[0], name)
    text = bind_params(view, params)
    local = run_local(real[1].store, text, name)
    remote = run_remote(virtuoso_views, text, name)
    assert remote.variables == local.variables
    assert ntriples_rows(remote.rows) == ntriples_rows(local.rows)


# --- the published files' text, cached per rows ----------------------------------------------------

def test_published_texts_are_formatted_once_per_rows(make_project, monkeypatch):
    from emkg import views
    from emkg.views import Result, published_texts, rows_digest

    project = open_project(make_project())
    xsd = "http://www.w3.org/2001/XMLSchema#"
    rows = [(ox.NamedNode("http://e/a"), ox.Literal("x, \"y\"\n", language="en"), None),
            (ox.BlankNode("b1"), ox.Literal("1", datatype=ox.NamedNode(xsd + "integer")), ox.Literal("z"))]
    result = Result(["s", "label", "n"], rows)
    expected = (views.format_csv(result), views.format_json(result))
    assert published_texts(project, "v", result) == expected
    calls = []
    real = views.format_json
    monkeypatch.setattr(views, "format_json", lambda r: calls.append(r) or real(r))
    assert published_texts(project, "v", Result(["s", "label", "n"], list(rows))) == expected
    assert calls == [], "the same rows: the text comes from the cache"
    changed = Result(["s", "label", "n"], [rows[0], (rows[1][0], ox.Literal("1"), rows[1][2])])  # string, not integer
    assert rows_digest(changed) != rows_digest(result)
    assert published_texts(project, "v", changed) == (views.format_csv(changed), real(changed))
    assert len(calls) == 1
    # unbound versus the text "None", a cell moved between columns, other variable names: other rows
    assert rows_digest(Result(["a"], [(None,)])) != rows_digest(Result(["a"], [(ox.Literal("None"),)]))
    assert rows_digest(Result(["a", "b"], [(ox.Literal("x"), None)])) != rows_digest(Result(["a", "b"], [(None, ox.Literal("x"))]))
    assert rows_digest(Result(["a"], [])) != rows_digest(Result(["b"], []))
    for entry in (project.root / ".cache" / "views").iterdir():  # a damaged entry is a miss
        entry.write_bytes(b"damaged")
    assert published_texts(project, "v", result) == expected
    assert len(calls) == 2
    monkeypatch.setenv("EMKG_NO_CACHE", "1")
    assert published_texts(project, "v", result) == expected
    assert len(calls) == 3
