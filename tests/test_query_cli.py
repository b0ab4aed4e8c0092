"""``emkg query``: listing views, running a view or a --file, parameters, formats, exit codes, endpoints."""

from __future__ import annotations

import csv
import io
import json
import sys
import types
from pathlib import Path

import pyoxigraph as ox
import pytest

from emkg.views import Result, list_views

MINI_DATA = """\
@prefix emkg: <https://w3id.org/emkg/def/> .
@prefix area: <https://w3id.org/emkg/id/area/> .
@prefix skos: <http://www.w3.org/2004/02/skos/core#> .

area:east-midlands a emkg:Region ; skos:prefLabel "East Midlands"@en .
area:derbyshire a emkg:County ; skos:prefLabel "Derbyshire"@en ; emkg:within area:east-midlands .
area:rutland a emkg:County ; skos:prefLabel "Rutland"@en ; emkg:within area:east-midlands .
"""

MINI_VIEW = """\
# title: Counties
# description: Counties and the area each lies within.
# param: in_area iri optional  Only the counties within this area (e.g. https://w3id.org/emkg/id/area/east-midlands)
PREFIX emkg: <https://w3id.org/emkg/def/>
PREFIX skos: <http://www.w3.org/2004/02/skos/core#>
SELECT ?county ?name ?within
WHERE {
  ?county a emkg:County ;
          skos:prefLabel ?label .
  BIND(STR(?label) AS ?name)
  OPTIONAL { ?county emkg:within ?within }
  FILTER(!BOUND(?in_area) || ?within = ?in_area)
}
ORDER BY ?name
"""

ADHOC = """\
PREFIX skos: <http://www.w3.org/2004/02/skos/core#>
SELECT ?name WHERE { ?x skos:prefLabel ?l BIND(STR(?l) AS ?name) } ORDER BY ?name
"""


@pytest.fixture
def mini(make_project) -> Path:
    return make_project({
        "data/areas.ttl": MINI_DATA,
        "queries/counties.rq": MINI_VIEW,
        "queries/county-names.rq": "# title: County names\n# description: Just the names.\n" + ADHOC,
        "queries/qc/not-a-view.rq": "ASK { ?s ?p ?o }\n",
    })


# --- --list ----------------------------------------------------------------------------------

def test_list_shows_name_then_title_aligned(run_emkg, mini):
    code, out, err = run_emkg("query", "--list", root=mini)
    assert code == 0, err
    assert out == "counties      Counties\ncounty-names  County names\n"


def test_list_of_the_real_project_has_every_view_and_no_qc_query(run_emkg, repo_root):
    code, out, err = run_emkg("query", "--list", root=repo_root)
    assert code == 0, err
    names = [line.split()[0] for line in out.splitlines()]
    assert names == sorted(p.stem for p in (repo_root / "queries").glob("*.rq"))
    assert "authorities" in names and "glossary" in names
    titles_start = {line.index(line.split()[1]) for line in out.splitlines()}
    assert len(titles_start) == 1, "titles are aligned in one column"
    for view in list_views(__import__("emkg.project", fromlist=["open_project"]).open_project(repo_root)):
        assert f"{view.name}" in out and view.title in out


def test_list_takes_no_name(run_emkg, mini):
    code, out, err = run_emkg("query", "--list", "counties", root=mini)
    assert code == 2 and out == "" and "--list" in err


# --- running a view ----------------------------------------------------------------------------

def test_run_view_as_table(run_emkg, mini):
    code, out, err = run_emkg("query", "counties", root=mini)
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0].split() == ["county", "name", "within"]
    assert set(lines[1]) <= {"-", " "}
    assert lines[2].split() == ["area:derbyshire", "Derbyshire", "area:east-midlands"]
    assert lines[3].split() == ["area:rutland", "Rutland", "area:east-midlands"]
    assert err == ""


def test_unknown_view_exits_2_with_a_suggestion(run_emkg, mini):
    code, out, err = run_emkg("query", "countise", root=mini)
    assert code == 2
    assert out == ""
    assert "unknown view 'countise'" in err and "counties" in err


def test_unknown_view_of_the_real_project_suggests_the_closest(run_emkg, repo_root):
    code, out, err = run_emkg("query", "authoritys", root=repo_root)
    assert code == 2 and out == ""
    assert "did you mean authorities" in err


def test_no_view_no_file_is_a_usage_error(run_emkg, mini):
    code, out, err = run_emkg("query", root=mini)
    assert code == 2 and out == "" and "--list" in err


def test_name_and_file_together_is_a_usage_error(run_emkg, mini, tmp_path):
    query = tmp_path / "q.rq"
    query.write_text(ADHOC, encoding="utf-8")
    code, out, err = run_emkg("query", "counties", "--file", query, root=mini)
    assert code == 2 and out == ""


# --- --file --------------------------------------------------------------------------------------

def test_file_runs_an_adhoc_query_without_a_header(run_emkg, mini, tmp_path):
    query = tmp_path / "adhoc.rq"
    query.write_text(ADHOC, encoding="utf-8")
    code, out, err = run_emkg("query", "--file", query, "--format", "csv", root=mini)
    assert code == 0, err
    assert out == "name\r\nDerbyshire\r\nEast Midlands\r\nRutland\r\n"


def test_file_with_declared_params(run_emkg, mini, tmp_path):
    query = tmp_path / "counties.rq"
    query.write_text(MINI_VIEW, encoding="utf-8")
    code, out, err = run_emkg("query", "--file", query, "--param", "in_area=east-midlands", "--format", "tsv", root=mini)
    assert code == 0, err
    assert out.splitlines()[0] == "?county\t?name\t?within"
    assert len(out.splitlines()) == 3


def test_file_missing(run_emkg, mini, tmp_path):
    code, out, err = run_emkg("query", "--file", tmp_path / "nope.rq", root=mini)
    assert code == 2 and out == "" and "nope.rq" in err


def test_file_with_a_syntax_error_names_file_and_line(run_emkg, mini, tmp_path):
    query = tmp_path / "broken.rq"
    query.write_text("# a comment\nSELECT ?x\nWHERE {\n  ?x ?y\n}\n", encoding="utf-8")
    code, out, err = run_emkg("query", "--file", query, root=mini)
    assert code == 2 and out == ""
    assert "broken.rq:4:3: error: syntax error" in err


def test_file_with_an_undeclared_param(run_emkg, mini, tmp_path):
    query = tmp_path / "adhoc.rq"
    query.write_text(ADHOC, encoding="utf-8")
    code, out, err = run_emkg("query", "--file", query, "--param", "x=1", root=mini)
    assert code == 2 and out == "" and "'x'" in err


# --- parameters on the command line ----------------------------------------------------------------

@pytest.mark.parametrize("value", [
    "https://w3id.org/emkg/id/area/east-midlands", "area:east-midlands", "east-midlands",
    "<https://w3id.org/emkg/id/area/east-midlands>",
])
def test_iri_param_forms(run_emkg, mini, value):
    code, out, err = run_emkg("query", "counties", "--param", f"in_area={value}", "--format", "csv", root=mini)
    assert code == 0, err
    assert len(out.splitlines()) == 3


@pytest.mark.parametrize("pair, needle", [
    ("in_area=not an iri", "in_area"),
    ("in_area=x\" } ; DROP ALL ; { \"", "in_area"),
    ("area=east-midlands", "unknown parameter 'area'"),
    ("noequals", "KEY=VALUE"),
])
def test_bad_params_exit_2_naming_them(run_emkg, mini, pair, needle):
    code, out, err = run_emkg("query", "counties", "--param", pair, root=mini)
    assert code == 2 and out == ""
    assert needle in err


def test_param_given_twice(run_emkg, mini):
    code, out, err = run_emkg("query", "counties", "--param", "in_area=a:b", "--param", "in_area=a:c", root=mini)
    assert code == 2 and "given twice" in err


# --- formats -------------------------------------------------------------------------------------

def test_every_format_has_the_same_rows(run_emkg, mini):
    outputs = {}
    for fmt in ("table", "csv", "tsv", "json"):
        code, out, err = run_emkg("query", "counties", "--format", fmt, root=mini)
        assert code == 0, err
        outputs[fmt] = out
    rows_csv = list(csv.reader(io.StringIO(outputs["csv"], newline="")))
    data = json.loads(outputs["json"])
    assert rows_csv[0] == data["head"]["vars"] == ["county", "name", "within"]
    assert [r[1] for r in rows_csv[1:]] == [b["name"]["value"] for b in data["results"]["bindings"]] == ["Derbyshire", "Rutland"]
    tsv = [line.split("\t") for line in outputs["tsv"].splitlines()]
    assert [r[1] for r in tsv[1:]] == ['"Derbyshire"', '"Rutland"']


def test_bad_format_is_refused_by_the_parser(run_emkg, mini):
    code, out, err = run_emkg("query", "counties", "--format", "xml", root=mini)
    assert code == 2 and out == ""


# --- project problems --------------------------------------------------------------------------

def test_data_syntax_error_exits_1_and_reports_it(run_emkg, mini):
    (mini / "data" / "broken.ttl").write_text("@prefix ex: <http://example.org/> .\nex:a ex:b .\n", encoding="utf-8")
    code, out, err = run_emkg("query", "counties", root=mini)
    assert code == 1 and out == ""
    assert "data/broken.ttl:2:" in err


def test_view_without_header_is_a_project_bug_naming_the_file(run_emkg, mini):
    (mini / "queries" / "headless.rq").write_text(ADHOC, encoding="utf-8")
    code, out, err = run_emkg("query", "headless", root=mini)
    assert code == 1 and out == ""
    assert "queries/headless.rq" in err and "title" in err
    code, out, err = run_emkg("query", "--list", root=mini)
    assert code == 1 and "queries/headless.rq" in err


# --- endpoints -----------------------------------------------------------------------------------

@pytest.fixture
def fake_endpoint(monkeypatch):
    """A stand-in emkg.endpoint module that records what it was asked."""
    calls: list = []
    module = types.ModuleType("emkg.endpoint")

    class EndpointConfig:
        def __init__(self, url):
            self.url = url

        @classmethod
        def from_args(cls, args):
            import os
            return cls(args.endpoint or os.environ.get("EMKG_ENDPOINT"))

    def run_remote(config, text, source="<query>"):
        calls.append((config.url, text))
        return Result(["x"], [(ox.Literal("remote"),)])

    module.EndpointConfig = EndpointConfig
    module.run_remote = run_remote
    import emkg

    monkeypatch.setitem(sys.modules, "emkg.endpoint", module)
    monkeypatch.setattr(emkg, "endpoint", module, raising=False)
    return calls


def test_endpoint_option_runs_the_bound_query_remotely(run_emkg, mini, fake_endpoint):
    code, out, err = run_emkg("query", "counties", "--endpoint", "http://127.0.0.1:9/q",
                              "--param", "in_area=area:rutland", "--format", "csv", root=mini)
    assert code == 0, err
    assert out == "x\r\nremote\r\n"
    [(url, text)] = fake_endpoint
    assert url == "http://127.0.0.1:9/q"
    assert "VALUES ?in_area { <https://w3id.org/emkg/id/area/rutland> }" in text


def test_endpoint_from_the_environment(run_emkg, mini, fake_endpoint, monkeypatch):
    monkeypatch.setenv("EMKG_ENDPOINT", "http://127.0.0.1:9/env")
    code, out, err = run_emkg("query", "counties", "--format", "tsv", root=mini)
    assert code == 0, err
    assert out == '?x\n"remote"\n'
    assert fake_endpoint[0][0] == "http://127.0.0.1:9/env"


def test_endpoint_without_the_endpoint_module(run_emkg, mini, monkeypatch):
    import emkg

    monkeypatch.setitem(sys.modules, "emkg.endpoint", None)  # makes the import fail as if it did not exist
    monkeypatch.delattr(emkg, "endpoint", raising=False)
    code, out, err = run_emkg("query", "counties", "--endpoint", "http://127.0.0.1:9/q", root=mini)
    assert code == 2 and out == ""
    assert "endpoint" in err
