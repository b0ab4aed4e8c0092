"""Incremental validation (``revalidation.py``, ``shapedeps.py``): after an edit, ``emkg validate``
runs only the shape groups and QC queries the edit can change, and its report is exactly the one
a validation without any cache gives."""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
import rdflib
from edits import first_update, sub

from emkg.project import open_project

SIZE = 2500
FAULTS = 40


@pytest.fixture(autouse=True)
def _small_graphs_too(monkeypatch: pytest.MonkeyPatch) -> None:
    """The test trees are small: validate them incrementally all the same."""
    monkeypatch.setattr("emkg.validate.INCREMENTAL_TRIPLES", 0)


@pytest.fixture(scope="module")
def faulty_tree(tmp_path_factory: pytest.TempPathFactory, request) -> Path:
    from emkg.synth import generate_tree

    root = tmp_path_factory.mktemp("revalidation") / "tree"
    generate_tree(open_project(Path(request.config.rootpath)), root, SIZE, faults=FAULTS, seed=5)
    return root


def _drop_line(path: Path, pattern: str) -> None:
    text = path.read_text(encoding="utf-8")
    changed = re.sub(pattern, "", text, count=1, flags=re.M)
    assert changed != text, (path, pattern)
    path.write_text(changed, encoding="utf-8")


EDITS: dict[str, Callable[[Path], None]] = {
    # a literal only one shape group reads
    "section text": lambda r: sub(first_update(r), 'schema:text "', 'schema:text "Edited by the test. '),
    # a new violation: a section text with a tab (the whitespace warning) and a required value gone
    "whitespace fault": lambda r: sub(first_update(r), 'schema:text "', 'schema:text "Tab\tin the text. '),
    "title removed": lambda r: _drop_line(first_update(r), r"^    dcterms:title [^\n]*;\n"),
    # every result of the file moves down: kept results must be located again
    "lines shift": lambda r: sub(r / "data" / "authorities.ttl", "\n\n", "\n\n# a comment the test adds\n\n"),
    # a type changes: every group with a class target reads rdf:type
    "type changed": lambda r: sub(r / "data" / "events.ttl", "a emkg:Event", "a emkg:Publication"),
    # a file added, then removed
    "file added": lambda r: (r / "data" / "extra.ttl").write_text(
        "@prefix emkg: <https://w3id.org/emkg/def/> .\n@prefix rdfs: <http://www.w3.org/2000/01/rdf-schema#> .\n"
        "@prefix area: <https://w3id.org/emkg/id/area/> .\n\narea:synthetic-extra\n    a emkg:Area ;\n"
        "    rdfs:label \"Synthetic Extra\" .\n", encoding="utf-8"),
    "file removed": lambda r: (r / "data" / "extra.ttl").unlink(),
    # a blank node appears (QC blank-node check; results naming blank nodes are never kept)
    "blank node": lambda r: sub(r / "data" / "glossary.ttl", "\n\n", '\n\n<https://w3id.org/emkg/id/concept/synthetic-bnode> '
                                 '<http://www.w3.org/2000/01/rdf-schema#seeAlso> [ <http://www.w3.org/2000/01/rdf-schema#label> "x" ] .\n\n'),
}


def _report(run_emkg, root: Path) -> dict:
    code, out, _ = run_emkg("validate", "--format", "json", root=root)
    doc = json.loads(re.sub(r"_:[0-9A-Za-z]+", "_:b", out))  # blank node labels differ from parse to parse
    doc["summary"].pop("seconds", None)
    return {"code": code, **doc}


def _clean_report(run_emkg, root: Path, monkeypatch: pytest.MonkeyPatch) -> dict:
    with monkeypatch.context() as m:
        m.setenv("EMKG_NO_CACHE", "1")
        return _report(run_emkg, root)


def test_incremental_validation_equals_a_clean_one(faulty_tree: Path, tmp_path: Path, run_emkg, caplog, monkeypatch) -> None:
    """Edit after edit, each report equals a validation without cache; and most edits run only
    some of the shape groups, on part of the graph."""
    root = tmp_path / "tree"
    shutil.copytree(faulty_tree, root)
    first = _report(run_emkg, root)
    assert first["code"] == 1 and len(first["results"]) >= 20  # the faults are found
    partial = 0
    for name, edit in EDITS.items():
        edit(root)
        caplog.clear()
        with caplog.at_level("INFO", logger="emkg"):
            incremental = _report(run_emkg, root)
        ran = re.search(r"validation: (\d+) of (\d+) shape groups run again", caplog.text)
        if ran:
            partial += 1
            assert int(ran.group(1)) < int(ran.group(2))
        assert incremental == _clean_report(run_emkg, root, monkeypatch), f"after the edit {name!r}"
    assert partial >= 5, "incremental validation should have run only some shape groups after most edits"


def test_a_text_edit_runs_only_the_groups_that_read_it(faulty_tree: Path, tmp_path: Path, run_emkg, caplog) -> None:
    root = tmp_path / "tree"
    shutil.copytree(faulty_tree, root)
    _report(run_emkg, root)
    EDITS["section text"](root)
    with caplog.at_level("INFO", logger="emkg"):
        _report(run_emkg, root)
    ran = re.search(r"validation: (\d+) of (\d+) shape groups run again, on (\d+) of (\d+) triples", caplog.text)
    assert ran, caplog.text
    assert int(ran.group(1)) <= 3 < int(ran.group(2))
    assert int(ran.group(3)) < int(ran.group(4))


def test_the_analysis_prefetched_is_the_one_validation_reads(faulty_tree: Path, tmp_path: Path, run_emkg, monkeypatch) -> None:
    """For sources large enough to be validated incrementally, what the QC queries and the shapes'
    SPARQL read is worked out by a child process while the graph loads: the validations after it,
    whole and incremental, find every answer in the cache, and report what a clean one does."""
    from emkg.load import load_shapes
    from emkg.validate import _prefetch_analysis

    root = tmp_path / "tree"
    shutil.copytree(faulty_tree, root)
    project = open_project(root)
    shapes = load_shapes(project)
    assert _prefetch_analysis(project, shapes, project.graph_files(), qc=True) is None  # too small
    monkeypatch.setattr("emkg.validate.INCREMENTAL_BYTES", 0)
    prefetch = _prefetch_analysis(project, shapes, project.graph_files(), qc=True)
    assert prefetch is not None and prefetch._child is not None
    prefetch.wait()

    def analysed_here(text: str):
        raise AssertionError(f"analysed again, not found in the cache:\n{text}")

    with monkeypatch.context() as m:
        m.setattr("emkg.querydeps._analyse", analysed_here)
        whole = _report(run_emkg, root)
        EDITS["section text"](root)
        incremental = _report(run_emkg, root)
    assert whole["code"] == incremental["code"] == 1
    assert incremental == _clean_report(run_emkg, root, monkeypatch)


def test_small_graphs_validate_whole(faulty_tree: Path, tmp_path: Path, run_emkg, caplog, monkeypatch) -> None:
    """Below ``INCREMENTAL_TRIPLES`` nothing is kept for incremental validation (no shape analysis)."""
    monkeypatch.setattr("emkg.validate.INCREMENTAL_TRIPLES", 10**9)
    root = tmp_path / "tree"
    shutil.copytree(faulty_tree, root)
    _report(run_emkg, root)
    EDITS["section text"](root)
    with caplog.at_level("INFO", logger="emkg"):
        again = _report(run_emkg, root)
    assert "shape groups run again" not in caplog.text
    assert not (root / ".cache" / "validate" / "state.pickle").exists()
    assert again == _clean_report(run_emkg, root, monkeypatch)


def test_missing_copies_mean_a_whole_validation(faulty_tree: Path, tmp_path: Path, run_emkg, caplog, monkeypatch) -> None:
    root = tmp_path / "tree"
    shutil.copytree(faulty_tree, root)
    _report(run_emkg, root)
    shutil.rmtree(root / ".cache" / "validate" / "sources")
    EDITS["whitespace fault"](root)
    with caplog.at_level("INFO", logger="emkg"):
        again = _report(run_emkg, root)
    assert "shape groups run again" not in caplog.text
    assert again == _clean_report(run_emkg, root, monkeypatch)


def _shapes(text: str) -> rdflib.Graph:
    prefixes = ("@prefix sh: <http://www.w3.org/ns/shacl#> .\n@prefix ex: <http://example.org/> .\n"
                "@prefix rdf: <http://www.w3.org/1999/02/22-rdf-syntax-ns#> .\n")
    return rdflib.Graph().parse(data=prefixes + text, format="turtle")


def test_what_shape_groups_read() -> None:
    from emkg.shapedeps import plan_shapes

    plan = plan_shapes(_shapes("""
        ex:A a sh:NodeShape ; sh:targetClass ex:C ; sh:property ex:Shared , ex:P .
        ex:P sh:path ( ex:p [ sh:inversePath ex:q ] ) ; sh:class ex:D .
        ex:Shared sh:path [ sh:alternativePath ( ex:r ex:s ) ] ; sh:node ex:N .
        ex:N sh:property [ sh:path [ sh:zeroOrMorePath ex:t ] ; sh:minCount 1 ] .
        ex:B a sh:NodeShape ; sh:targetSubjectsOf ex:u ; sh:property ex:Shared .
        ex:Closed a sh:NodeShape ; sh:targetNode ex:x ; sh:closed true .
        ex:Pair a sh:NodeShape ; sh:targetObjectsOf ex:v ; sh:property [ sh:path ex:w ; sh:lessThan ex:y ] .
    """))
    assert plan is not None
    ex, rdf = "http://example.org/", "http://www.w3.org/1999/02/22-rdf-syntax-ns#"
    # A and B report through one property shape: one group
    shared = plan.groups[f"{ex}A {ex}B"]
    assert shared.reads == {rdf + "type", "http://www.w3.org/2000/01/rdf-schema#subClassOf",
                            *(ex + p for p in "pqrstu")}
    assert plan.group_of(rdflib.URIRef(ex + "Shared")) == shared.key
    assert plan.groups[ex + "Closed"].reads is None  # closed: any predicate
    assert plan.groups[ex + "Pair"].reads == {ex + "v", ex + "w", ex + "y"}


def test_unknown_parameters_read_everything() -> None:
    from emkg.shapedeps import plan_shapes

    plan = plan_shapes(_shapes("ex:A a sh:NodeShape ; sh:targetNode ex:x ; ex:custom 1 ; sh:rule [ a sh:TripleRule ] ."))
    assert plan is not None and plan.groups["http://example.org/A"].reads is None
    # a blank targeted shape cannot be told apart across runs: no plan at all
    assert plan_shapes(_shapes("[] a sh:NodeShape ; sh:targetNode ex:x .")) is None
    # a constraint component of the shapes' own: its parameters could read anything
    assert plan_shapes(_shapes("ex:C a sh:ConstraintComponent ; sh:parameter [ sh:path ex:custom ] .\n"
                               "ex:A a sh:NodeShape ; sh:targetNode ex:x ; ex:custom 1 .")) is None


def test_the_reduced_shapes_target_only_the_groups_run() -> None:
    from emkg.shapedeps import reduced_shapes
    from rdflib.namespace import SH

    shapes = _shapes("""
        ex:A a sh:NodeShape ; sh:targetClass ex:C ; sh:node ex:B ; sh:or ( ex:S1 ex:S2 ) .
        ex:B a sh:NodeShape ; sh:targetClass ex:D ; sh:property [ sh:path ex:p ; sh:minCount 1 ] .
        ex:S1 sh:datatype ex:dt . ex:S2 sh:nodeKind sh:IRI .
        ex:Other a sh:NodeShape ; sh:targetClass ex:E .
    """)
    reduced = reduced_shapes(shapes, [rdflib.URIRef("http://example.org/A")])
    ex = rdflib.Namespace("http://example.org/")
    assert (ex.A, SH.targetClass, ex.C) in reduced
    assert (ex.B, SH.targetClass, ex.D) not in reduced  # evaluated through sh:node, never targeted
    assert reduced.value(reduced.value(ex.B, SH.property), SH.minCount) is not None
    assert (ex.S1, SH.datatype, ex.dt) in reduced and (ex.S2, SH.nodeKind, SH.IRI) in reduced
    assert not set(reduced.triples((ex.Other, None, None)))

