"""``emkg validate``: syntax errors, SHACL results and QC rows, located at FILE:LINE, with exit codes.

Two kinds of project are used:
- a small self-contained one (``mini``: our own little ontology, shapes and QC queries, written
  here) so the behaviour is pinned down whatever the real shapes say;
- the real project (this repository), once its shapes have landed: the fixtures in
  ``tests/data/valid`` and ``tests/data/invalid`` are validated together with it.

Invalid fixtures mark each expected problem with a comment on the line before it:
``# expect: violation TEXT`` (or ``warning``/``error``); TEXT must appear in the result's message,
source, component, path, focus or value, and the result must point at the marked line.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pyoxigraph as ox
import pytest

from emkg.load import load_files, load_graph, load_shapes
from emkg.project import open_project
from emkg.validate import (
    ENGINES,
    Report,
    Shortener,
    _gh_data,
    _gh_prop,
    render_report,
    run_shacl,
    validate_loaded,
)

REPO_ROOT = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).resolve().parent / "data"
VALID = sorted((FIXTURES / "valid").glob("*.ttl"))
INVALID = sorted((FIXTURES / "invalid").glob("*.ttl"))

PREFIXES = """\
@prefix area: <https://w3id.org/emkg/id/area/> .
@prefix authority: <https://w3id.org/emkg/id/authority/> .
@prefix dcterms: <http://purl.org/dc/terms/> .
@prefix emkg: <https://w3id.org/emkg/def/> .
@prefix emkgsh: <https://w3id.org/emkg/shapes/> .
@prefix foaf: <http://xmlns.com/foaf/0.1/> .
@prefix owl: <http://www.w3.org/2002/07/owl#> .
@prefix prov: <http://www.w3.org/ns/prov#> .
@prefix rdf: <http://www.w3.org/1999/02/22-rdf-syntax-ns#> .
@prefix rdfs: <http://www.w3.org/2000/01/rdf-schema#> .
@prefix schema: <https://schema.org/> .
@prefix section: <https://w3id.org/emkg/id/section/> .
@prefix sh: <http://www.w3.org/ns/shacl#> .
@prefix skos: <http://www.w3.org/2004/02/skos/core#> .
@prefix source: <https://w3id.org/emkg/source/> .
@prefix update: <https://w3id.org/emkg/id/update/> .
@prefix xsd: <http://www.w3.org/2001/XMLSchema#> .
"""

MINI_ONTOLOGY = PREFIXES + """
emkg:Organisation a owl:Class .
emkg:LocalAuthority a owl:Class ; rdfs:subClassOf emkg:Organisation .
emkg:UnitaryAuthority a owl:Class ; rdfs:subClassOf emkg:LocalAuthority .
emkg:CountyCouncil a owl:Class ; rdfs:subClassOf emkg:LocalAuthority .
emkg:RegionalUpdate a owl:Class .
emkg:UpdateSection a owl:Class .
emkg:SourceDocument a owl:Class .
emkg:SourceSection a owl:Class .
emkg:Area a owl:Class .
emkg:Region a owl:Class ; rdfs:subClassOf emkg:Area .
emkg:DatePrecision a owl:Class .
emkg:MonthPrecision a owl:NamedIndividual, emkg:DatePrecision .
"""

MINI_DATA = PREFIXES + """
area:east-midlands a emkg:Region ;
    rdfs:label "East Midlands"@en .

authority:derby-city-council a emkg:UnitaryAuthority ;
    rdfs:label "Derby City Council"@en ;
    emkg:gssCode "E06000015" ;
    foaf:homepage <https://www.derby.gov.uk/> .
"""

MINI_SHAPES = PREFIXES + """
emkgsh:LocalAuthorityShape a sh:NodeShape ;
    sh:targetClass emkg:LocalAuthority ;
    sh:property [
        sh:path emkg:gssCode ;
        sh:minCount 1 ;
        sh:maxCount 1 ;
        sh:datatype xsd:string ;
        sh:pattern "^E(06|07|10|12|26)[0-9]{6}$" ;
        sh:message "Add the authority's GSS code as emkg:gssCode" ;
    ] ;
    sh:property [
        sh:path foaf:homepage ;
        sh:nodeKind sh:IRI ;
    ] ;
    sh:property [
        sh:path rdfs:label ;
        sh:minCount 1 ;
        sh:severity sh:Warning ;
        sh:message "An authority should have a label" ;
    ] ;
    sh:sparql [
        sh:message "GSS code {?value} is also used by {?other}" ;
        sh:select \"\"\"
            SELECT $this ?value ?other WHERE {
                $this <https://w3id.org/emkg/def/gssCode> ?value .
                ?other <https://w3id.org/emkg/def/gssCode> ?value .
                FILTER (?other != $this)
            }\"\"\" ;
    ] .

emkgsh:RegionalUpdateShape a sh:NodeShape ;
    sh:targetClass emkg:RegionalUpdate ;
    sh:property [
        sh:path dcterms:date ;
        sh:minCount 1 ;
        sh:datatype xsd:date ;
    ] .

emkgsh:MentionShape a sh:NodeShape ;
    sh:targetObjectsOf schema:mentions ;
    sh:property [
        sh:path rdf:type ;
        sh:minCount 1 ;
        sh:message "Nothing describes this resource: add it to data/ or fix the IRI" ;
    ] .
"""

QC_LABELS = """\
# title: Labels must have a language tag
# description: rdfs:label values are language-tagged (@en).
# severity: warning
SELECT ?entity ?property ?value WHERE {
  BIND(<http://www.w3.org/2000/01/rdf-schema#label> AS ?property)
  ?entity ?property ?value .
  FILTER (isLiteral(?value) && lang(?value) = "")
}
"""

QC_BROKEN = """\
# title: A broken check
# severity: violation
SELECT ?entity ?property ?value WHERE {
  ?entity ?property ?value
  FILTER (
}
"""


def mini_files(**extra: str) -> dict[str, str]:
    files = {
        "ontology/emkg.ttl": MINI_ONTOLOGY,
        "data/core.ttl": MINI_DATA,
        "shapes/core.ttl": MINI_SHAPES,
        "queries/qc/labels.rq": QC_LABELS,
    }
    files.update(extra)
    return files


@pytest.fixture
def mini(make_project) -> Path:
    return make_project(mini_files())


def real_project_ready(root: Path) -> bool:
    project = open_project(root)
    return bool(project.shape_files()) and any(p.parent != project.ontology_dir for p in project.graph_files())


@pytest.fixture(params=["mini", "real"])
def any_project(request, make_project, repo_root: Path) -> Path:
    """Each fixture test runs against the mini project and (once it has shapes and data) the real one."""
    if request.param == "mini":
        return make_project(mini_files())
    if not real_project_ready(repo_root):
        pytest.skip("the real project has no shapes or data yet")
    return repo_root


# --- expectations written in the fixtures ------------------------------------------------------------

_EXPECT = re.compile(r"#\s*expect:\s*(violation|warning|error)\b\s*(.*?)\s*$")


def expectations(path: Path) -> list[tuple[int, str, str]]:
    """(line, severity, text) for every ``# expect:`` comment: the line after the comment."""
    found = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        match = _EXPECT.search(line)
        if match:
            found.append((number + 1, match.group(1), match.group(2)))
    return found


def haystack(item: dict) -> str:
    fields = ("message", "source", "component", "path", "focus", "value", "focus_short", "path_short", "value_short")
    return " ".join(str(item.get(f) or "") for f in fields).lower()


_REAL_RUNS: dict[tuple, tuple[int, str, str]] = {}


def run_validate_cached(run_emkg, root: Path, *args) -> tuple[int, str, str]:
    """``emkg validate`` output; runs on the real project (which tests do not change) are reused."""
    if root != REPO_ROOT:
        return run_emkg("validate", *args, root=root)
    key = tuple(str(a) for a in args)
    if key not in _REAL_RUNS:
        _REAL_RUNS[key] = run_emkg("validate", *args, root=root)
    return _REAL_RUNS[key]


def validate_json(run_emkg, root: Path, *args) -> tuple[int, dict, str]:
    code, out, err = run_validate_cached(run_emkg, root, "--format", "json", *args)
    assert "Traceback" not in out + err
    return code, json.loads(out), err


def rel(root: Path, path: Path) -> str:
    return open_project(root).relative(path)


# --- fixtures against a project ----------------------------------------------------------------------

@pytest.mark.parametrize("fixture", INVALID, ids=[p.stem for p in INVALID])
def test_invalid_fixture_is_refused_at_the_marked_line(any_project: Path, run_emkg, fixture: Path) -> None:
    expected = expectations(fixture)
    assert expected, f"{fixture.name} has no '# expect:' comment"
    code, doc, _err = validate_json(run_emkg, any_project, fixture)
    assert code == 1, doc["summary"]
    assert doc["conforms"] is False
    name = rel(any_project, fixture)
    here = [r for r in doc["results"] if r["file"] == name]
    for line, severity, text in expected:
        matches = [r for r in here if r["line"] == line and r["severity"] == severity and text.lower() in haystack(r)]
        assert matches, f"no {severity} '{text}' at {name}:{line}; got: " + json.dumps(here, indent=1)
    marked = {line for line, _s, _t in expected}
    stray = [r for r in here if r["line"] not in marked]
    assert not stray, f"unexpected results in {name}: " + json.dumps(stray, indent=1)


@pytest.mark.parametrize("fixture", INVALID, ids=[p.stem for p in INVALID])
def test_invalid_fixture_text_report_points_at_the_line(any_project: Path, run_emkg, fixture: Path) -> None:
    code, out, err = run_validate_cached(run_emkg, any_project, fixture)
    assert code == 1
    assert "Traceback" not in out + err
    name = rel(any_project, fixture)
    for line, severity, _text in expected_or_fail(fixture):
        assert re.search(rf"^{re.escape(name)}:{line}(:\d+)?: {severity}: ", out, re.M), out


def expected_or_fail(fixture: Path) -> list[tuple[int, str, str]]:
    found = expectations(fixture)
    assert found
    return found


@pytest.mark.parametrize("fixture", VALID, ids=[p.stem for p in VALID])
def test_valid_fixture_conforms(any_project: Path, run_emkg, fixture: Path) -> None:
    code, doc, _err = validate_json(run_emkg, any_project, fixture)
    name = rel(any_project, fixture)
    assert [r for r in doc["results"] if r["file"] == name] == []
    baseline_code, baseline, _ = validate_json(run_emkg, any_project)
    assert code == baseline_code
    assert doc["summary"]["violations"] == baseline["summary"]["violations"]
    assert doc["summary"]["triples"] > baseline["summary"]["triples"]


def test_valid_fixtures_together_conform_in_the_mini_project(mini: Path, run_emkg) -> None:
    code, out, _err = run_emkg("validate", FIXTURES / "valid", root=mini)
    assert code == 0, out
    assert out.strip().splitlines()[-1].startswith("conforms: ")


def test_real_project_conforms(repo_root: Path, run_emkg) -> None:
    if not real_project_ready(repo_root):
        pytest.skip("the real project has no shapes or data yet")
    code, out, err = run_validate_cached(run_emkg, repo_root)
    assert "Traceback" not in out + err
    assert code == 0, out
    assert re.match(r"^(conforms: |0 violations, )", out.splitlines()[-1]), out


# --- the mini project: behaviour ----------------------------------------------------------------------

def test_clean_project_conforms_with_summary(mini: Path, run_emkg) -> None:
    code, out, err = run_emkg("validate", root=mini)
    assert code == 0, out + err
    assert re.fullmatch(r"conforms: \d+ triples, 8 shapes, 1 check\n", out), out
    assert err == ""


def test_syntax_errors_of_every_file_are_reported_and_shacl_is_skipped(make_project, run_emkg) -> None:
    root = make_project(mini_files(**{
        "data/a.ttl": PREFIXES + '\narea:x rdfs:label "open .\n',
        "data/b.ttl": PREFIXES + "\narea:y rdfs:label area:z\narea:w rdfs:label area:v .\n",
        "data/c.ttl": PREFIXES + '\narea:ok rdfs:label "fine"@en .\n',
    }))
    bad = root / "extra.ttl"
    bad.write_text("@prefix ex: <http://example.org/> .\nex:a ex:b nope:c .\n", encoding="utf-8")
    code, out, _err = run_emkg("validate", bad, root=root)
    assert code == 1
    lines = out.splitlines()
    errors = [line for line in lines if ": error: " in line]
    assert len(errors) == 3, out
    assert re.match(r"^data/a\.ttl:19:\d+: error: ", errors[0])
    assert re.match(r"^data/b\.ttl:20:\d+: error: ", errors[1])
    assert re.match(r"^extra\.ttl:2:\d+: error: .*nope", errors[2])
    assert "SHACL and QC checks skipped" in out
    assert "violation" not in out
    assert lines[-1].startswith("3 syntax errors in 3 files")


def test_syntax_error_in_shapes_is_reported(make_project, run_emkg) -> None:
    root = make_project(mini_files(**{"shapes/bad.ttl": PREFIXES + "emkgsh:X a sh:NodeShape ;\n"}))
    code, out, _ = run_emkg("validate", root=root)
    assert code == 1
    assert re.search(r"^shapes/bad\.ttl:\d+:\d+: error: ", out, re.M)


def test_result_lines_are_sorted_shortened_and_located(make_project, run_emkg) -> None:
    root = make_project(mini_files(**{"data/z.ttl": PREFIXES + """
authority:b a emkg:CountyCouncil ;
    rdfs:label "B"@en ;
    emkg:gssCode "E10000001" ;
    foaf:homepage "b.gov.uk" .

authority:a a emkg:CountyCouncil ;
    rdfs:label "A"@en .
"""}))
    code, out, _ = run_emkg("validate", root=root)
    assert code == 1
    lines = out.splitlines()
    assert lines[0] == ('data/z.ttl:22: violation: foaf:homepage must be an IRI '
                        '(focus authority:b, path foaf:homepage, value "b.gov.uk")')
    assert lines[1] == ("data/z.ttl:24: violation: Add the authority's GSS code as emkg:gssCode "
                        "(focus authority:a, path emkg:gssCode)")
    assert lines[-1] == "2 violations, 0 warnings in 1 file (" + lines[-1].split("(", 1)[1]
    assert re.search(r"\(\d+ triples checked\)$", lines[-1])


def test_sparql_message_terms_are_shortened(make_project, run_emkg) -> None:
    root = make_project(mini_files(**{"data/dup.ttl": PREFIXES + """
authority:copy a emkg:UnitaryAuthority ;
    rdfs:label "Copy"@en ;
    emkg:gssCode "E06000015" .
"""}))
    code, out, _ = run_emkg("validate", root=root)
    assert code == 1
    assert "data/dup.ttl:21: violation: GSS code E06000015 is also used by authority:derby-city-council" in out
    assert "data/core.ttl:" in out  # Derby is reported too, where it is written
    assert "https://w3id.org" not in out


def test_dangling_reference_points_at_the_referring_triple(make_project, run_emkg) -> None:
    root = make_project(mini_files(**{"data/s.ttl": PREFIXES + """
section:x a emkg:UpdateSection ;
    schema:mentions area:east-midlands ,
        authority:nowhere ;
    rdfs:label "x"@en .
"""}))
    code, out, _ = run_emkg("validate", root=root)
    assert code == 1
    assert out.startswith("data/s.ttl:21: violation: Nothing describes this resource"), out
    assert "(focus authority:nowhere, path rdf:type)" in out


def test_warnings_pass_unless_strict(make_project, run_emkg) -> None:
    root = make_project(mini_files(**{"data/w.ttl": PREFIXES + """
area:somewhere a emkg:Area ;
    rdfs:label "Somewhere" .
"""}))
    code, out, _ = run_emkg("validate", root=root)
    assert code == 0, out
    assert "data/w.ttl:20: warning: Labels must have a language tag" in out
    assert "(focus area:somewhere, path rdfs:label, value \"Somewhere\")" in out
    assert out.splitlines()[-1].startswith("0 violations, 1 warning in 1 file")
    code, _out, _ = run_emkg("validate", "--strict", root=root)
    assert code == 1
    code, out, _ = run_emkg("validate", "--strict", "--no-qc", root=root)
    assert code == 0
    assert out.endswith("8 shapes, 0 checks\n")


def test_shacl_warning_severity(make_project, run_emkg) -> None:
    root = make_project(mini_files(**{"data/w.ttl": PREFIXES + """
authority:nolabel a emkg:UnitaryAuthority ;
    emkg:gssCode "E06999999" .
"""}))
    code, out, _ = run_emkg("validate", root=root)
    assert code == 0
    assert "data/w.ttl:19: warning: An authority should have a label (focus authority:nolabel, path rdfs:label)" in out
    assert run_emkg("validate", "--strict", root=root)[0] == 1


def test_qc_syntax_error_is_a_project_error(make_project, run_emkg) -> None:
    root = make_project(mini_files(**{"queries/qc/broken.rq": QC_BROKEN}))
    code, out, err = run_emkg("validate", root=root)
    assert code == 2
    assert re.search(r"^queries/qc/broken\.rq:5: error: SPARQL syntax error .*FILTER", out, re.M), out
    assert "Traceback" not in out + err
    code, _out, _ = run_emkg("validate", "--no-qc", root=root)
    assert code == 0


def test_qc_undefined_prefix_points_at_its_use(make_project, run_emkg) -> None:
    text = "# title: t\nSELECT ?entity WHERE {\n  ?entity a ?t .\n  FILTER (?t = nope:x)\n}\n"
    root = make_project(mini_files(**{"queries/qc/prefix.rq": text}))
    code, out, _ = run_emkg("validate", root=root)
    assert code == 2
    assert "queries/qc/prefix.rq:4: error: SPARQL syntax error (column 16): undefined prefix 'nope:'" in out


@pytest.mark.parametrize(("text", "words"), [
    ("# severity: fatal\nSELECT ?entity WHERE { ?entity ?p ?o }\n", "severity"),
    ("ASK { ?s ?p ?o }\n", "SELECT"),
    ("SELECT ?thing WHERE { ?thing ?p ?o }\n", "?entity"),
])
def test_unusable_qc_queries_are_project_errors(make_project, run_emkg, text: str, words: str) -> None:
    root = make_project(mini_files(**{"queries/qc/odd.rq": text}))
    code, out, _ = run_emkg("validate", root=root)
    assert code == 2
    assert re.search(rf"^queries/qc/odd\.rq:\d+: error: .*{re.escape(words)}", out, re.M), out


def test_broken_shapes_are_a_project_error_not_a_traceback(make_project, run_emkg) -> None:
    shapes = PREFIXES + """
emkgsh:Bad a sh:NodeShape ;
    sh:targetClass emkg:LocalAuthority ;
    sh:sparql [ sh:select "SELECT $this WHERE { $this ?p }" ] .
"""
    root = make_project(mini_files(**{"shapes/core.ttl": shapes}))
    code, out, err = run_emkg("validate", root=root)
    assert code == 2, out + err
    assert "shapes/: error: the SHACL shapes could not be run" in out
    assert "Traceback" not in out + err


def test_missing_path_is_a_usage_error(mini: Path, run_emkg) -> None:
    code, out, err = run_emkg("validate", mini / "nope.ttl", root=mini)
    assert code == 2
    assert "nope.ttl: no such file or folder" in err
    assert out == ""


def test_path_folder_and_duplicates(mini: Path, run_emkg) -> None:
    code, doc, _ = validate_json(run_emkg, mini)
    triples = doc["summary"]["triples"]
    code, doc2, _ = validate_json(run_emkg, mini, mini / "data", mini / "data" / "core.ttl")
    assert code == 0
    assert doc2["summary"]["triples"] == triples
    assert doc2["summary"]["files"] == doc["summary"]["files"]
    code, doc3, _ = validate_json(run_emkg, mini, FIXTURES / "valid")
    assert code == 0
    assert doc3["summary"]["files"] == doc["summary"]["files"] + len(VALID)


def test_json_format(make_project, run_emkg) -> None:
    root = make_project(mini_files(**{"data/z.ttl": PREFIXES + """
authority:b a emkg:CountyCouncil ;
    rdfs:label "B" ;
    emkg:gssCode "E10000001" ;
    foaf:homepage "b.gov.uk" .
"""}))
    code, doc, _ = validate_json(run_emkg, root)
    assert code == 1
    assert doc["conforms"] is False
    assert set(doc) == {"conforms", "results", "summary"}
    first = doc["results"][0]
    for key in ("file", "line", "column", "severity", "message", "focus", "path", "value", "source"):
        assert key in first
    by_severity = {r["severity"]: r for r in doc["results"]}
    violation = by_severity["violation"]
    assert violation["file"] == "data/z.ttl" and violation["line"] == 22
    assert violation["focus"] == "https://w3id.org/emkg/id/authority/b"
    assert violation["path"] == "http://xmlns.com/foaf/0.1/homepage"
    assert violation["value"] == '"b.gov.uk"'
    assert violation["source"] == "emkgsh:LocalAuthorityShape property foaf:homepage"
    assert violation["component"] == "NodeKind"
    warning = by_severity["warning"]
    assert warning["source"] == "queries/qc/labels.rq"
    assert warning["message"] == "Labels must have a language tag"
    assert warning["help"] == "rdfs:label values are language-tagged (@en)."
    summary = doc["summary"]
    assert summary["violations"] == 1 and summary["warnings"] == 1
    assert summary["shapes"] == 8 and summary["checks"] == 1


def test_json_syntax_errors(make_project, run_emkg) -> None:
    root = make_project(mini_files(**{"data/a.ttl": PREFIXES + '\narea:x rdfs:label "open .\n'}))
    code, doc, _ = validate_json(run_emkg, root)
    assert code == 1
    assert doc["results"] == [{
        "file": "data/a.ttl", "line": 19, "column": doc["results"][0]["column"], "severity": "error",
        "message": doc["results"][0]["message"], "focus": None, "path": None, "value": None,
        "source": "syntax", "component": "syntax"}]
    assert doc["summary"]["syntax_errors"] == 1
    assert doc["summary"]["skipped"]


def test_github_format(make_project, run_emkg) -> None:
    root = make_project(mini_files(**{"data/z.ttl": PREFIXES + """
authority:b a emkg:CountyCouncil ;
    rdfs:label "B" ;
    emkg:gssCode "E10000001" ;
    foaf:homepage "b,100%:\\nx" .
"""}))
    code, out, _ = run_emkg("validate", "--format", "github", root=root)
    assert code == 1
    lines = out.splitlines()
    # the column of the offending value itself: the literal "B", the literal "b,100%..."
    assert lines[0].startswith("::warning file=data/z.ttl,line=20,col=16,title=emkg validate::warning: Labels must have")
    assert lines[1].startswith("::error file=data/z.ttl,line=22,col=19,title=emkg validate::")
    assert "::violation: foaf:homepage must be an IRI" in lines[1]
    assert "100%25" in lines[1] and "\\n" in lines[1]
    assert lines[-1].startswith("1 violation, 1 warning in 1 file")


def test_github_escaping() -> None:
    assert _gh_data("a%b\r\nc") == "a%25b%0D%0Ac"
    assert _gh_prop("d:/x,y%z\n") == "d%3A/x%2Cy%25z%0A"


def test_github_syntax_errors(make_project, run_emkg) -> None:
    root = make_project(mini_files(**{"data/a.ttl": PREFIXES + '\narea:x rdfs:label "open .\n'}))
    code, out, _ = run_emkg("validate", "--format", "github", root=root)
    assert code == 1
    assert re.match(r"::error file=data/a\.ttl,line=19,(col=\d+,)?title=emkg validate::syntax error: ", out)


def test_validate_writes_nothing_but_its_cache(make_project, run_emkg) -> None:
    root = make_project(mini_files(**{
        "data/z.ttl": PREFIXES + '\nauthority:b a emkg:CountyCouncil ;\n    foaf:homepage "b" .\n',
        "queries/qc/broken.rq": QC_BROKEN,
    }))
    fixture_copy = root.parent / "outside.ttl"
    shutil.copy(INVALID[0], fixture_copy)

    def snapshot() -> dict[str, tuple[int, bytes]]:
        files = [p for p in root.parent.rglob("*") if p.is_file() and ".cache" not in p.relative_to(root.parent).parts]
        return {str(p): (p.stat().st_mtime_ns, p.read_bytes()) for p in files}

    before = snapshot()
    for args in ([], ["--format", "json"], ["--format", "github"], ["--strict"], [fixture_copy]):
        run_emkg("validate", *args, root=root)
    assert snapshot() == before
    assert (root / ".cache").is_dir(), "the work cache lives in the project's .cache/"


def test_no_cache_setting_writes_nothing_at_all(make_project, run_emkg, monkeypatch) -> None:
    root = make_project(mini_files())
    monkeypatch.setenv("EMKG_NO_CACHE", "1")
    code, out, _ = run_emkg("validate", root=root)
    assert code == 0, out
    assert not (root / ".cache").exists()


def _validate_json(run_emkg, root: Path) -> dict:
    code, out, _ = run_emkg("validate", "--format", "json", root=root)
    doc = json.loads(out)
    doc["summary"].pop("seconds", None)
    return {"code": code, **doc}


def test_a_reused_report_is_the_report(make_project, run_emkg, caplog) -> None:
    """The second run of an unchanged tree reuses the report, and says so; it is the same report."""
    root = make_project(mini_files(**{"data/z.ttl": PREFIXES + '\nauthority:b a emkg:CountyCouncil ;\n    foaf:homepage "b" .\n'}))
    first = _validate_json(run_emkg, root)
    assert first["code"] == 1 and first["results"]
    with caplog.at_level("INFO", logger="emkg"):
        second = _validate_json(run_emkg, root)
    assert "report is reused" in caplog.text
    assert second == first


@pytest.mark.parametrize("edit", ["data", "shapes", "qc", "new file", "removed file", "engine"])
def test_the_report_is_never_reused_after_a_change(make_project, run_emkg, monkeypatch, caplog, edit: str) -> None:
    """Whatever changes (data, shapes, a QC query, the set of files, the engine), validation runs
    again and its answer is the one a clean run gives."""
    bad = PREFIXES + '\nauthority:b a emkg:CountyCouncil ;\n    foaf:homepage "b" .\n'
    root = make_project(mini_files(**{"data/z.ttl": bad}))
    _validate_json(run_emkg, root)
    if edit == "data":
        (root / "data/z.ttl").write_text(bad.replace('"b"', '"c"'), encoding="utf-8")
    elif edit == "shapes":
        shapes = root / "shapes/core.ttl"
        text = shapes.read_text(encoding="utf-8")
        assert "sh:Warning" in text
        shapes.write_text(text.replace("sh:Warning", "sh:Info"), encoding="utf-8")
    elif edit == "qc":
        (root / "queries/qc/labels.rq").write_text(QC_LABELS.replace("severity: warning", "severity: violation"), encoding="utf-8")
    elif edit == "new file":
        (root / "data/y.ttl").write_text(bad.replace("authority:b", "authority:c"), encoding="utf-8")
    elif edit == "removed file":
        (root / "data/z.ttl").unlink()
    else:
        monkeypatch.setenv("EMKG_SHACL_ENGINE", "pyshacl")
    with caplog.at_level("INFO", logger="emkg"):
        again = _validate_json(run_emkg, root)
    assert "report is reused" not in caplog.text
    shutil.rmtree(root / ".cache")
    assert again == _validate_json(run_emkg, root)


def test_a_damaged_cache_is_ignored(make_project, run_emkg) -> None:
    root = make_project(mini_files())
    clean = _validate_json(run_emkg, root)
    for entry in (root / ".cache").rglob("*.pickle"):
        entry.write_bytes(b"not a pickle")
    assert _validate_json(run_emkg, root) == clean


def test_other_base_iri(make_project, run_emkg) -> None:
    root = make_project(mini_files(**{"data/z.ttl": PREFIXES + '\nauthority:b a emkg:CountyCouncil ;\n    rdfs:label "B"@en .\n'}),
                        base_iri="https://example.org/kg/")
    code, out, _ = run_emkg("validate", root=root)
    assert code == 1
    assert "data/z.ttl:19: violation: Add the authority's GSS code" in out
    assert "(focus authority:b, path emkg:gssCode)" in out


def test_empty_project_conforms(make_project, run_emkg) -> None:
    root = make_project({})
    code, out, _ = run_emkg("validate", root=root)
    assert code == 0
    assert out == "conforms: 0 triples, 0 shapes, 0 checks\n"


# --- the Python API -----------------------------------------------------------------------------------

def test_validate_loaded_api(make_project) -> None:
    root = make_project(mini_files(**{"data/w.ttl": PREFIXES + '\narea:s a emkg:Area ;\n    rdfs:label "S" .\n'}))
    project = open_project(root)
    report = validate_loaded(project, load_graph(project), load_shapes(project))
    assert isinstance(report, Report)
    assert report.conforms() and not report.conforms(strict=True)
    assert report.exit_code() == 0 and report.exit_code(strict=True) == 1
    assert report.warnings == 1 and report.violations == 0 and report.checks == 1
    (result,) = report.results
    assert result.location.file == "data/w.ttl" and result.location.line == 20
    assert result.focus == ox.NamedNode("https://w3id.org/emkg/id/area/s")
    assert result.value == ox.Literal("S")
    text = render_report(report, "text")
    assert text.splitlines()[0].startswith("data/w.ttl:20: warning: ")
    assert json.loads(render_report(report, "json", strict=True))["conforms"] is False
    assert validate_loaded(project, load_graph(project), load_shapes(project), qc=False).results == []


def test_engine_is_swappable(mini: Path) -> None:
    project = open_project(mini)
    bad = mini / "data" / "bad.ttl"
    bad.write_text(PREFIXES + '\nauthority:b a emkg:CountyCouncil ;\n    rdfs:label "B"@en .\n', encoding="utf-8")
    graph, shapes = load_graph(project), load_shapes(project)
    data_graph, shapes_graph = graph.to_rdflib(), shapes.to_rdflib()
    calls = []

    def spy(data, shapes_g):
        calls.append(len(data))
        return ENGINES["pyshacl"](data, shapes_g)

    raw, _results_graph = run_shacl(data_graph, shapes_graph, spy)
    assert calls and len(raw) == 1
    assert str(raw[0].focus) == "https://w3id.org/emkg/id/authority/b"
    report = validate_loaded(project, graph, shapes, engine=spy)
    assert [r.key()[0] for r in report.results] == ["violation"]


def test_unknown_engine_is_a_usage_error(mini: Path) -> None:
    from emkg.errors import UsageError

    project = open_project(mini)
    with pytest.raises(UsageError, match="unknown SHACL engine"):
        validate_loaded(project, load_graph(project), load_shapes(project), engine="nope")


def test_shortener() -> None:
    short = Shortener({"emkg": "https://w3id.org/emkg/def/", "ex": "https://w3id.org/emkg/", "": "http://x/"})
    assert short.iri("https://w3id.org/emkg/def/gssCode") == "emkg:gssCode"
    assert short.iri("https://w3id.org/emkg/id/a") == "<https://w3id.org/emkg/id/a>"  # '/' is not in a local name here
    assert short.iri("https://w3id.org/emkg/thing") == "ex:thing"
    assert short.iri("http://x/y") == ":y"
    assert short.iri("http://other/") == "<http://other/>"
    assert short.term(ox.Literal("a\"b")) == '"a\\"b"'
    assert short.term(ox.Literal("x", language="en")) == '"x"@en'
    long = short.term(ox.Literal("y" * 100))
    assert len(long) < 70 and long.endswith('…"')
    assert short.text("see https://w3id.org/emkg/def/gssCode.") == "see emkg:gssCode."
    assert short.text("write <https://w3id.org/emkg/def/x>") == "write <https://w3id.org/emkg/def/x>"
    assert short.text("(https://w3id.org/emkg/def/x)") == "(emkg:x)"


def test_located_file_list_is_project_relative(mini: Path) -> None:
    project = open_project(mini)
    graph = load_files([*project.graph_files(), FIXTURES / "valid" / "authority.ttl"], project)
    names = [f.name for f in graph.files]
    assert "data/core.ttl" in names
    assert str(FIXTURES / "valid" / "authority.ttl") in names


def test_sparql_constraints_are_parsed_once(make_project, monkeypatch) -> None:
    """pySHACL runs a SPARQL constraint per focus node; the engine parses its text once."""
    import rdflib.plugins.sparql.processor as processor

    many = PREFIXES + "".join(
        f'authority:a{i} a emkg:UnitaryAuthority ; rdfs:label "A"@en ; emkg:gssCode "E0610{i:04d}" .\n' for i in range(40)
    )
    root = make_project(mini_files(**{"data/many.ttl": many}))
    project = open_project(root)
    graph, shapes = load_graph(project), load_shapes(project)
    calls = []
    original = processor.parseQuery
    monkeypatch.setattr(processor, "parseQuery", lambda *a, **k: calls.append(1) or original(*a, **k))
    report = validate_loaded(project, graph, shapes, qc=False)
    assert report.conforms(strict=True)
    assert len(calls) <= 2
