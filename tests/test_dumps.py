"""The RDF dumps and the dataset description: a second parser agrees, formats agree, builds repeat byte
for byte, the VoID/DCAT description is complete and its checksums are right."""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import rdflib
from rdflib.compare import isomorphic
from rdflib.namespace import DCAT, DCTERMS, RDF, VOID

from test_site import REPO_ROOT, TINY_PREFIXES, build_real, run_cli, tiny_project

OGL = rdflib.URIRef("http://www.nationalarchives.gov.uk/doc/open-government-licence/version/3/")
SPDX = rdflib.Namespace("http://spdx.org/rdf/terms#")
DUMPS = ("emkg.ttl", "emkg.nt", "emkg.jsonld", "emkg.trig")
RAPPER_SYNTAX = {"emkg.ttl": "turtle", "emkg.nt": "ntriples", "emkg.trig": "trig", "void.ttl": "turtle"}


@pytest.fixture(scope="session")
def site(tmp_path_factory) -> Path:
    return build_real(tmp_path_factory)


@pytest.fixture(scope="session")
def turtle_graph(site: Path) -> rdflib.Graph:
    return rdflib.Graph().parse(site / "emkg.ttl", format="turtle")


def rapper_count(path: Path, syntax: str) -> int:
    done = subprocess.run(["rapper", "-i", syntax, "-c", str(path)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    match = re.search(r"Parsing returned (\d+) triples", done.stderr)
    assert match, done.stderr
    return int(match.group(1))


def need_rapper() -> None:
    if shutil.which("rapper") is None:
        if os.environ.get("CI"):
            pytest.fail("rapper (Debian raptor2-utils) is missing; .ci/install-tools installs it")
        pytest.skip("rapper (Debian raptor2-utils) is not installed here; CI installs it")


# --- the real dumps --------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["emkg.ttl", "emkg.nt", "emkg.trig", "void.ttl"])
def test_a_second_parser_agrees_on_the_triple_count(site: Path, name: str) -> None:
    need_rapper()
    if name == "emkg.trig":
        ours = sum(1 for _ in rdflib.Dataset().parse(site / name, format="trig").quads((None, None, None, None)))
    else:
        ours = len(rdflib.Graph().parse(site / name, format="nt" if name.endswith(".nt") else "turtle"))
    assert rapper_count(site / name, RAPPER_SYNTAX[name]) == ours > 0


def test_every_dump_holds_the_same_graph(site: Path, turtle_graph: rdflib.Graph) -> None:
    nt = rdflib.Graph().parse(site / "emkg.nt", format="nt")
    jsonld = rdflib.Graph().parse(site / "emkg.jsonld", format="json-ld")
    dataset = rdflib.Dataset().parse(site / "emkg.trig", format="trig")
    union = rdflib.Graph()
    for s, p, o, _g in dataset.quads((None, None, None, None)):
        union.add((s, p, o))
    assert len(turtle_graph) == len(nt) == len(jsonld) == len(union)
    assert isomorphic(turtle_graph, nt)
    assert isomorphic(turtle_graph, jsonld)
    assert isomorphic(turtle_graph, union)


def test_the_dumps_are_the_sources_plus_the_description(site: Path, turtle_graph: rdflib.Graph) -> None:
    from emkg.load import load_graph
    from emkg.project import open_project

    project = open_project(REPO_ROOT)
    sources = load_graph(project).to_rdflib()
    missing = [t for t in sources if t not in turtle_graph]
    assert missing == []
    extra = {s for s, _p, _o in turtle_graph if (s, None, None) not in sources}
    assert extra and all(str(s).startswith(project.base_iri) for s in extra)
    assert all(str(s) == project.base_iri + "dataset" or str(s).startswith(project.base_iri + "dataset/")
               or str(s).startswith(project.base_iri + "emkg.") for s in extra)


def test_jsonld_context_is_local(site: Path) -> None:
    doc = json.loads((site / "emkg.jsonld").read_text(encoding="utf-8"))
    assert isinstance(doc["@context"], dict) and doc["@context"]
    assert all(isinstance(v, str) and v.startswith("http") for v in doc["@context"].values())
    text = (site / "emkg.jsonld").read_text(encoding="utf-8")
    assert '"@context": "http' not in text and '"@import"' not in text


def test_trig_has_one_graph_per_source_document(site: Path) -> None:
    from emkg.project import open_project

    project = open_project(REPO_ROOT)
    base = project.base_iri
    dataset = rdflib.Dataset().parse(site / "emkg.trig", format="trig")
    names = {str(g.identifier) for g in dataset.graphs() if len(g)}
    documents = {str(d) for d in rdflib.Graph().parse(site / "emkg.ttl").subjects(RDF.type, rdflib.URIRef(base + "def/SourceDocument"))}
    assert documents
    for doc in documents:
        name = base + "graph/" + doc[len(base):]
        assert name in names, name
        graph = dataset.graph(rdflib.URIRef(name))
        assert (rdflib.URIRef(doc), RDF.type, rdflib.URIRef(base + "def/SourceDocument")) in graph
    assert {base + "graph/ontology", base + "graph/dataset"} <= names
    assert all(n.startswith(base + "graph/") for n in names)
    ontology = dataset.graph(rdflib.URIRef(base + "graph/ontology"))
    assert (rdflib.URIRef(base + "def/"), RDF.type, rdflib.OWL.Ontology) in ontology
    # an update's triples sit in its seed's graph
    update_graphs = [str(g.identifier) for g in dataset.graphs() if (rdflib.URIRef(base + "id/update/2019-09"), None, None) in g]
    assert len(update_graphs) == 1 and update_graphs[0].startswith(base + "graph/source/")


def test_prefixes_as_declared_in_the_sources(site: Path) -> None:
    from emkg.dumps import DESCRIPTION_PREFIXES
    from emkg.load import load_graph
    from emkg.project import open_project

    declared = dict(load_graph(open_project(REPO_ROOT)).prefixes)
    text = (site / "emkg.ttl").read_text(encoding="utf-8")
    written = dict(re.findall(r"^@prefix ([A-Za-z][\w-]*|): <([^>]+)> \.$", text, re.M))
    assert written, "the dump declares prefixes"
    for prefix, ns in written.items():
        assert declared.get(prefix, DESCRIPTION_PREFIXES.get(prefix)) == ns, prefix
    assert set(declared) <= set(written)
    assert not re.search(r"\bns\d+:", text) and "_:" not in text


def test_dataset_description(site: Path, turtle_graph: rdflib.Graph) -> None:
    from emkg.load import load_graph
    from emkg.project import open_project

    sources = load_graph(open_project(REPO_ROOT)).to_rdflib()
    void = rdflib.Graph().parse(site / "void.ttl", format="turtle")
    ds = rdflib.URIRef("https://w3id.org/emkg/dataset")
    for graph in (void, turtle_graph):
        assert (ds, RDF.type, VOID.Dataset) in graph and (ds, RDF.type, DCAT.Dataset) in graph
        for prop in (DCTERMS.title, DCTERMS.description, DCTERMS.publisher):
            assert graph.value(ds, prop) is not None, prop
        assert graph.value(ds, DCTERMS.license) == OGL
        assert int(graph.value(ds, VOID.triples)) == len(turtle_graph), "void:triples counts the whole dump"
        assert int(graph.value(ds, VOID.entities)) > 100
        partitions = list(graph.objects(ds, VOID.classPartition))
        assert int(graph.value(ds, VOID.classes)) == len(partitions) > 10
        for part in partitions:
            cls = graph.value(part, VOID["class"])
            # partitions count the ontology and data (not the description's own bookkeeping)
            assert int(graph.value(part, VOID.entities)) == len(set(sources.subjects(RDF.type, cls))), cls
        examples = list(graph.objects(ds, VOID.exampleResource))
        assert examples and all((e, None, None) in turtle_graph for e in examples)
        assert len(list(graph.objects(ds, DCAT.distribution))) == 4
    modified = void.value(ds, DCTERMS.modified)
    if modified is not None:
        assert modified.datatype in (rdflib.XSD.dateTime, rdflib.XSD.date)


def test_checksums_and_sizes_in_void_only(site: Path, turtle_graph: rdflib.Graph) -> None:
    void = rdflib.Graph().parse(site / "void.ttl", format="turtle")
    for name in DUMPS:
        dist = rdflib.URIRef("https://w3id.org/emkg/" + name)
        data = (site / name).read_bytes()
        assert int(void.value(dist, DCAT.byteSize)) == len(data), name
        checksum = void.value(dist, SPDX.checksum)
        assert void.value(checksum, SPDX.algorithm) == SPDX.checksumAlgorithm_sha256
        assert str(void.value(checksum, SPDX.checksumValue)) == hashlib.sha256(data).hexdigest(), name
        assert void.value(dist, DCAT.downloadURL) == dist and void.value(dist, DCAT.mediaType) is not None
        assert turtle_graph.value(dist, DCAT.byteSize) is None, "no checksum or size inside the graph dumps"
    assert (None, SPDX.checksum, None) not in turtle_graph


def test_views_as_csv_and_sparql_json(site: Path) -> None:
    from emkg.project import open_project
    from emkg.views import list_views

    views = [v for v in list_views(open_project(REPO_ROOT)) if not any(p.required for p in v.params)]
    assert views
    for view in views:
        result = json.loads((site / "views" / f"{view.name}.json").read_text(encoding="utf-8"))
        assert "vars" in result["head"] and "bindings" in result["results"]
        with open(site / "views" / f"{view.name}.csv", encoding="utf-8", newline="") as handle:
            rows = list(csv.reader(handle))
        assert rows[0] == result["head"]["vars"]
        assert len(rows) - 1 == len(result["results"]["bindings"])


# --- reproducibility, dates, endpoint (small projects) -----------------------------------------

def _build(root: Path, out: Path, *extra: str, env: dict | None = None) -> None:
    done = run_cli("--root", root, "build", "--out", out, *extra, env=env)
    assert done.returncode == 0, done.stdout + done.stderr


def test_two_builds_give_byte_identical_dumps(site: Path, tmp_path: Path) -> None:
    from emkg import publish
    from emkg.load import load_graph, load_shapes
    from emkg.project import open_project
    from emkg.validate import validate_loaded

    project = open_project(REPO_ROOT)
    graph, shapes = load_graph(project), load_shapes(project)
    out = publish.check_output(project, tmp_path / "again")
    publish.publish(project, out, graph, shapes, validate_loaded(project, graph, shapes, qc=False), site=False,
                    progress=publish.Progress(live=False))
    for name in (*DUMPS, "void.ttl"):
        assert (out / name).read_bytes() == (site / name).read_bytes(), name
    for csv in (site / "views").glob("*.csv"):
        assert (out / "views" / csv.name).read_bytes() == csv.read_bytes()


def test_dates_come_from_the_sources_never_the_clock(tmp_path: Path) -> None:
    root = tiny_project(tmp_path / "p")
    a, b = tmp_path / "a", tmp_path / "b"
    _build(root, a, "--no-site", env={"SOURCE_DATE_EPOCH": "1700000000"})
    _build(root, b, "--no-site", env={"SOURCE_DATE_EPOCH": "1700000000"})
    assert (a / "emkg.ttl").read_bytes() == (b / "emkg.ttl").read_bytes()
    text = (a / "emkg.ttl").read_text(encoding="utf-8")
    assert '"2023-11-14T22:13:20Z"^^xsd:dateTime' in text
    year = __import__("datetime").date.today().isoformat()
    assert year not in text or year.startswith("2023-11-14")


def test_git_commit_date_is_the_default(tmp_path: Path) -> None:
    if shutil.which("git") is None:
        pytest.skip("git is not installed")
    from emkg.dumps import source_date
    from emkg.project import open_project

    root = tiny_project(tmp_path / "p")
    env = {**os.environ, "GIT_AUTHOR_DATE": "2021-04-01T12:00:00+01:00", "GIT_COMMITTER_DATE": "2021-04-01T12:00:00+01:00",
           "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.org", "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.org"}
    for cmd in (["init", "-q"], ["add", "."], ["commit", "-q", "-m", "x"]):
        subprocess.run(["git", "-C", str(root), *cmd], check=True, env=env, capture_output=True)
    saved = os.environ.pop("SOURCE_DATE_EPOCH", None)
    try:
        assert source_date(open_project(root)) == "2021-04-01T12:00:00+01:00"
    finally:
        if saved is not None:
            os.environ["SOURCE_DATE_EPOCH"] = saved


def test_sparql_endpoint_described_when_configured(tmp_path: Path) -> None:
    root = tiny_project(tmp_path / "p")
    out = tmp_path / "o"
    _build(root, out, "--no-site", env={"EMKG_ENDPOINT": "https://sparql.example.org/emkg/query"})
    g = rdflib.Graph().parse(out / "void.ttl")
    assert g.value(rdflib.URIRef("https://w3id.org/emkg/dataset"), VOID.sparqlEndpoint) == rdflib.URIRef("https://sparql.example.org/emkg/query")
    out2 = tmp_path / "o2"
    _build(root, out2, "--no-site")
    assert (None, VOID.sparqlEndpoint, None) not in rdflib.Graph().parse(out2 / "void.ttl")


def test_named_graph_rule(tmp_path: Path) -> None:
    root = tiny_project(tmp_path / "p", extra={"data/orphan.ttl": 'programme:orphan a emkg:Programme ; rdfs:label "Orphan"@en .\n'})
    out = tmp_path / "o"
    _build(root, out, "--no-site")
    base = "https://w3id.org/emkg/"
    ds = rdflib.Dataset().parse(out / "emkg.trig", format="trig")

    def graph_of(iri: str) -> set[str]:
        return {str(g.identifier) for g in ds.graphs() if (rdflib.URIRef(base + iri), None, None) in g}

    assert graph_of("id/group/em-dcs-group") == {base + "graph/multi-source"}, "two documents"
    assert graph_of("id/person/anne-marie-mcblain") == {base + "graph/source/002_y"}
    assert graph_of("source/001_x-riia") == {base + "graph/source/001_x"}, "a section goes with its document"
    assert graph_of("source/001_x") == {base + "graph/source/001_x"}
    assert graph_of("id/authority/rutland-county-council") == {base + "graph/source/ref"}
    assert graph_of("id/programme/orphan") == {base + "graph/unsourced"}
    assert graph_of("def/LocalAuthority") == {base + "graph/ontology"}
    assert graph_of("dataset") == {base + "graph/dataset"}


def test_turtle_writer_handles_awkward_terms() -> None:
    import pyoxigraph as ox

    from emkg.dumps import Prefixes, write_jsonld, write_ntriples, write_turtle

    e = "https://w3id.org/emkg/id/x/"
    triples = [
        ox.Triple(ox.NamedNode(e + "a"), ox.NamedNode(e + "p"), ox.Literal('quote " back \\ new\nline </script>', language="en")),
        ox.Triple(ox.NamedNode(e + "a."), ox.NamedNode(e + "p"), ox.Literal("1", datatype=ox.NamedNode("http://www.w3.org/2001/XMLSchema#integer"))),
        ox.Triple(ox.NamedNode(e + "a"), ox.NamedNode(e + "p"), ox.NamedNode(e + "zoë?x=(1)")),
        ox.Triple(ox.NamedNode(e + "2019-09"), ox.NamedNode(e + "p"), ox.Literal("true", datatype=ox.NamedNode("http://www.w3.org/2001/XMLSchema#boolean"))),
        ox.Triple(ox.NamedNode(e + "b"), ox.NamedNode(e + "p"), ox.BlankNode("n1")),
        ox.Triple(ox.BlankNode("n1"), ox.NamedNode(e + "q"), ox.Literal("inner")),
    ]
    prefixes = Prefixes({"x": e, "xsd": "http://www.w3.org/2001/XMLSchema#"})
    expected = rdflib.Graph().parse(data="".join(f"{t} .\n" for t in triples), format="nt")
    ttl = write_turtle(triples, prefixes)
    assert isomorphic(rdflib.Graph().parse(data=ttl, format="turtle"), expected)
    assert isomorphic(rdflib.Graph().parse(data=write_ntriples(triples), format="nt"), expected)
    assert isomorphic(rdflib.Graph().parse(data=write_jsonld(triples, prefixes), format="json-ld"), expected)
    assert "x:a. " not in ttl and "<https://w3id.org/emkg/id/x/a.>" in ttl
    assert "x:2019-09" in ttl and " true" in ttl
    if shutil.which("rapper"):
        done = subprocess.run(["rapper", "-i", "turtle", "-c", "-", "http://example.org/"], input=ttl,
                              capture_output=True, text=True, timeout=60)
        assert "returned 6 triples" in done.stderr, done.stderr


def test_tiny_dumps_agree_with_rapper_too(tmp_path: Path) -> None:
    need_rapper()
    root = tiny_project(tmp_path / "p", extra={"data/x.ttl": 'authority:rutland-county-council skos:note "tab\\there \\"q\\" \\u00e9 \\U0001F600"@en .\n'})
    out = tmp_path / "o"
    _build(root, out, "--no-site")
    counts = {rapper_count(out / name, RAPPER_SYNTAX[name]) for name in ("emkg.ttl", "emkg.nt", "emkg.trig")}
    assert counts == {len(rdflib.Graph().parse(out / "emkg.ttl"))}
    assert TINY_PREFIXES  # the tiny project declares its prefixes; the dump keeps exactly those


def test_dumps_written_in_two_processes_are_the_same_bytes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """JSON-LD and TriG are written by a forked process at scale: the files and their records
    (sizes, SHA-256) are those a single process writes."""
    from emkg import dumps
    from emkg.load import load_graph
    from emkg.project import open_project

    project = open_project(REPO_ROOT)
    graph = load_graph(project)
    description = dumps.describe(project, graph.store, graph.prefixes, date="2023-01-01")
    monkeypatch.setattr(dumps, "PARALLEL_DUMPS_THRESHOLD", 0)
    serial = dumps.write_dumps(project, graph, tmp_path / "serial", description=description, parallel=False)
    parallel = dumps.write_dumps(project, graph, tmp_path / "parallel", description=description, parallel=True)
    assert parallel == serial
    names = sorted(p.name for p in (tmp_path / "serial").iterdir())
    assert names == sorted(p.name for p in (tmp_path / "parallel").iterdir())
    for name in names:
        assert (tmp_path / "parallel" / name).read_bytes() == (tmp_path / "serial" / name).read_bytes(), name


def test_dumps_from_the_sites_statements_are_the_same_bytes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A full build hands the dumps its model's statements (not parsed from the lines again): the
    same files; a subject whose statements do not add up to its lines is parsed from them."""
    from emkg import dumps
    from emkg.load import load_graph
    from emkg.project import open_project

    monkeypatch.setenv("EMKG_NO_CACHE", "1")  # every piece made, none from the cache
    project = open_project(REPO_ROOT)
    graph = load_graph(project)
    description = dumps.describe(project, graph.store, graph.prefixes, date="2023-01-01")
    own = description.store_graph
    plain = dumps.write_dumps(project, graph, tmp_path / "plain", description=description, parallel=False)
    by_subject: dict[str, dict[str, list]] = {}
    for t in [*graph.store.quads_for_pattern(None, None, None, None), *description.triples]:
        by_subject.setdefault(t.subject.value, {}).setdefault(t.predicate.value, []).append(t.object)
    asked: list[str] = []

    def statements(iri: str) -> dict[str, list]:
        asked.append(iri)
        pmap = by_subject.get(iri, {})
        if len(asked) == 3:  # one subject short of a statement: must be parsed from its lines
            first = next(iter(pmap))
            return {first: pmap[first][1:], **{p: o for p, o in pmap.items() if p != first}}
        return pmap

    description.store_graph = own
    given = dumps.write_dumps(project, graph, tmp_path / "given", description=description, parallel=False,
                              statements=statements)
    assert len(set(asked)) > 100
    assert given == plain
    for path in sorted((tmp_path / "plain").iterdir()):
        assert (tmp_path / "given" / path.name).read_bytes() == path.read_bytes(), path.name


BLANK_NODES = """\
@prefix ex: <http://example.org/> .
@prefix rdfs: <http://www.w3.org/2000/01/rdf-schema#> .
ex:a ex:p [ ex:q "one" ; ex:r [ ex:s 1 ] ] ; ex:list ( 1 2 [ ex:t "x" ] ) ; rdfs:label "A"@en .
ex:b ex:p _:shared . ex:c ex:p _:shared . _:shared ex:q "shared" .
[] ex:q "lonely" ; ex:r [] .
[] ex:q "lonely" ; ex:r [ ex:q "twin" ] .
"""


@pytest.mark.parametrize("tree", ["real", "synthetic", "blank nodes"])
def test_the_turtle_dump_is_laid_out_as_emkg_fmt_would(tree: str, tmp_path: Path) -> None:
    """emkg.ttl is laid out from the sorted triples directly: the bytes ``emkg fmt`` gives for
    the same graph written as Turtle and formatted (blank nodes, collections, twins included)."""
    import pyoxigraph as ox

    from emkg import dumps
    from emkg.fmt import format_graph, format_turtle
    from emkg.load import load_files, load_graph
    from emkg.project import Project, open_project
    from emkg.synth import generate_tree

    if tree == "blank nodes":
        (tmp_path / "b.ttl").write_text(BLANK_NODES, encoding="utf-8")
        project = Project(root=tmp_path)
        graph = load_files([tmp_path / "b.ttl"], project)
    else:
        root = REPO_ROOT
        if tree == "synthetic":
            root = tmp_path / "tree"
            generate_tree(open_project(REPO_ROOT), root, 3000, faults=40, seed=3)
        project = open_project(root)
        graph = load_graph(project)
    prefixes = dumps.Prefixes(dumps.all_prefixes(graph.prefixes))
    quads = list(graph.store.quads_for_pattern(None, None, None, ox.DefaultGraph()))
    quads = dumps.canonical_quads(sorted(set(quads), key=str))
    comment = ["a comment"]
    expected = format_turtle(dumps.write_turtle(quads, prefixes, comment), "emkg.ttl")
    assert format_graph(dumps.ntriples_lines(quads), dict(prefixes.mapping), comment) == expected


# --- per-subject pieces and the work cache -----------------------------------------------------------

PUBLISHED = ("emkg.ttl", "emkg.nt", "emkg.jsonld", "emkg.trig", "void.ttl")


def _published(out: Path) -> dict[str, bytes]:
    """The dumps, void.ttl and the views' files of an output folder."""
    files = {name: (out / name).read_bytes() for name in PUBLISHED}
    files.update({f"views/{p.name}": p.read_bytes() for p in sorted((out / "views").iterdir()) if p.suffix in (".csv", ".json")})
    return files


def _replace(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text, (path, old)
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


EDITS: list[tuple[str, str, str, str]] = [  # (kind, file, old, new)
    ("literal changed", "data/authorities.ttl", '"Derby City Council"@en ;\n', '"Derby City Council (edited)"@en ;\n'),
    ("subject added", "data/many.ttl", "prov:wasDerivedFrom source:ref .",
     'prov:wasDerivedFrom source:ref .\nauthority:added a emkg:DistrictCouncil ; rdfs:label "Added Council"@en ; '
     'skos:prefLabel "Added Council"@en ; emkg:gssCode "E07999999" ; emkg:inCounty area:derbyshire ; '
     'prov:wasDerivedFrom source:ref .'),
    ("subject removed", "data/many.ttl", "", ""),  # the line of authority:extra-0004 (one statement) is dropped
    ("blank node added", "data/authorities.ttl", "prov:wasDerivedFrom source:ref .\narea:rutland",
     'prov:wasDerivedFrom source:ref ; skos:note [ rdfs:label "a blank node"@en ; skos:note [ rdfs:label "nested"@en ] ] .\narea:rutland'),
    ("blank node removed", "data/authorities.ttl", ' ; skos:note [ rdfs:label "a blank node"@en ; skos:note [ rdfs:label "nested"@en ] ] .', " ."),
    ("prefix added", "data/authorities.ttl", "@prefix area:", "@prefix aa: <https://w3id.org/emkg/id/authority/> .\n@prefix area:"),
    ("prefix removed", "data/authorities.ttl", "@prefix aa: <https://w3id.org/emkg/id/authority/> .\n", ""),
    ("two subjects' literals", "data/many.ttl", '"Extra Council 7"@en ; skos:prefLabel "Extra Council 7"@en',
     '"Extra Council 7"@en ; skos:prefLabel "Extra Council seven"@en'),
]


def test_cached_builds_write_the_bytes_of_an_uncached_build(tmp_path: Path) -> None:
    """After each kind of edit, an incremental build that takes the dumps' per-subject pieces and
    the views' text from the work cache writes exactly what a build without any cache writes."""
    root = tiny_project(tmp_path / "p", authorities=12)
    out = tmp_path / "o"
    _build(root, out)
    assert any((root / ".cache" / "dumps").iterdir()) and any((root / ".cache" / "views").iterdir())
    for index, (kind, rel, old, new) in enumerate(EDITS):
        path = root / rel
        if kind == "subject removed":
            lines = path.read_text(encoding="utf-8").split("\n")
            path.write_text("\n".join(line for line in lines if not line.startswith("authority:extra-0004 ")), encoding="utf-8")
        else:
            _replace(path, old, new)
        _build(root, out)
        fresh = tmp_path / f"fresh-{index}"
        _build(root, fresh, "--no-site", env={"EMKG_NO_CACHE": "1"})
        cached, expected = _published(out), _published(fresh)
        assert cached.keys() == expected.keys(), kind
        for name in expected:
            assert cached[name] == expected[name], f"{kind}: {name}"
    assert "aa:" not in (out / "emkg.ttl").read_text(encoding="utf-8")


def _tiny_graph(root: Path):
    from emkg import dumps
    from emkg.load import load_graph
    from emkg.project import open_project

    project = open_project(root)
    graph = load_graph(project)
    return project, graph, dumps.describe(project, graph.store, graph.prefixes, date="2023-01-01")


def test_an_edit_formats_only_the_subjects_it_changed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from emkg import dumps

    root = tiny_project(tmp_path / "p", authorities=12)
    project, graph, description = _tiny_graph(root)
    dumps.write_dumps(project, graph, tmp_path / "first", description=description, parallel=False)
    _replace(root / "data/many.ttl", '"Extra Council 3"@en ; skos:prefLabel', '"Extra Council three"@en ; skos:prefLabel')
    project, graph, description = _tiny_graph(root)
    made: list[tuple[str, list[str]]] = []
    make = dumps._DumpJob._make_pieces

    def spy(self, name: str, indices: list[int]):
        made.append((name, [self.ground.subjects[i] for i in indices]))
        return make(self, name, indices)

    monkeypatch.setattr(dumps._DumpJob, "_make_pieces", spy)
    written = dumps.write_dumps(project, graph, tmp_path / "second", description=description, parallel=False)
    edited = ["<https://w3id.org/emkg/id/authority/extra-0003>"]
    assert made == [("emkg.ttl", edited), ("emkg.jsonld", edited), ("emkg.trig", edited)]
    monkeypatch.setenv("EMKG_NO_CACHE", "1")
    made.clear()
    plain = dumps.write_dumps(project, graph, tmp_path / "plain", description=description, parallel=False)
    assert len(made[0][1]) > 20, "without the cache every subject is formatted"
    assert written == plain
    for name in PUBLISHED:
        assert (tmp_path / "second" / name).read_bytes() == (tmp_path / "plain" / name).read_bytes(), name


@pytest.mark.parametrize("tree", ["real", "synthetic"])
def test_pieces_agree_with_the_whole_graph_writers(tree: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The per-subject way (cold, then warm) and the whole-graph writers give the same bytes."""
    from emkg import dumps
    from emkg.project import open_project
    from emkg.synth import generate_tree

    root = REPO_ROOT
    if tree == "synthetic":
        root = tmp_path / "tree"
        generate_tree(open_project(REPO_ROOT), root, 3000, faults=0, seed=5)
    project, graph, description = _tiny_graph(root)
    monkeypatch.setattr("emkg.cache.cache_root", lambda _project: tmp_path / "cache")
    assert dumps.ground_graph(graph.store, description.triples) is not None
    cold = dumps.write_dumps(project, graph, tmp_path / "cold", description=description, parallel=False)
    warm = dumps.write_dumps(project, graph, tmp_path / "warm", description=description, parallel=True)
    monkeypatch.setattr(dumps, "ground_graph", lambda *_args, **_kw: None)  # as if there were blank nodes
    as_if_blank = dataclasses.replace(description, store_graph=None)
    whole = dumps.write_dumps(project, graph, tmp_path / "whole", description=as_if_blank, parallel=False)
    assert cold == warm == whole
    for name in PUBLISHED:
        expected = (tmp_path / "whole" / name).read_bytes()
        assert (tmp_path / "cold" / name).read_bytes() == expected, name
        assert (tmp_path / "warm" / name).read_bytes() == expected, name


def test_a_damaged_or_foreign_dump_cache_is_a_miss(tmp_path: Path) -> None:
    import pickle

    from emkg import dumps

    root = tiny_project(tmp_path / "p", authorities=5)
    project, graph, description = _tiny_graph(root)
    dumps.write_dumps(project, graph, tmp_path / "first", description=description, parallel=False)
    shards = sorted((root / ".cache" / "dumps").iterdir())
    assert shards
    for n, shard in enumerate(shards):
        data = shard.read_bytes()
        if n % 3 == 0:
            shard.write_bytes(data[: len(data) // 2])  # truncated
        elif n % 3 == 1:
            shard.write_bytes(b"not a pickle")
        else:  # a well-formed entry under another key (other code or prefixes): its pieces are wrong
            key, value = pickle.loads(data)
            shard.write_bytes(pickle.dumps(("another key", {d: ("x", "wrong") if isinstance(v, tuple) else "wrong"
                                                            for d, v in value.items()})))
    dumps.write_dumps(project, graph, tmp_path / "second", description=description, parallel=False)
    for name in PUBLISHED:
        assert (tmp_path / "second" / name).read_bytes() == (tmp_path / "first" / name).read_bytes(), name


def test_ground_graph_groups_lines_by_subject_and_refuses_blank_nodes() -> None:
    import pyoxigraph as ox

    from emkg import dumps

    store = ox.Store()
    data = ('<http://e/b> <http://e/p> "é" .\n<http://e/a> <http://e/p> <http://e/b> .\n'
            '<http://e/a> <http://e/q> "x _: y" .\n<http://e/ab> <http://e/p> "1" .\n')
    store.load(data.encode("utf-8"), format=ox.RdfFormat.N_TRIPLES)
    extra = [ox.Triple(ox.NamedNode("http://e/a"), ox.NamedNode("http://e/p"), ox.NamedNode("http://e/b")),  # already there
             ox.Triple(ox.NamedNode("http://e/c"), ox.NamedNode("http://e/p"), ox.Literal("c"))]
    ground = dumps.ground_graph(store, extra)
    assert ground is not None
    assert ground.subjects == ["<http://e/a>", "<http://e/ab>", "<http://e/b>", "<http://e/c>"]
    assert [len(ground.lines_of(i)) for i in range(4)] == [2, 1, 1, 1]
    assert ground.data == b"".join(sorted(line.encode() + b"\n" for line in data.splitlines())[:3]) + \
        b'<http://e/b> <http://e/p> "\xc3\xa9" .\n<http://e/c> <http://e/p> "c" .\n'
    assert len(set(ground.digests)) == 4
    again = dumps.ground_graph(store, extra)
    assert again is not None and again.digests == ground.digests
    store.add(ox.Quad(ox.NamedNode("http://e/a"), ox.NamedNode("http://e/r"), ox.BlankNode("b0")))
    assert dumps.ground_graph(store) is None
    store.remove(ox.Quad(ox.NamedNode("http://e/a"), ox.NamedNode("http://e/r"), ox.BlankNode("b0")))
    store.add(ox.Quad(ox.BlankNode("b1"), ox.NamedNode("http://e/r"), ox.Literal("z")))
    assert dumps.ground_graph(store) is None


def test_ground_blocks_join_into_format_graph() -> None:
    from emkg.fmt import format_graph, ground_blocks, join_blocks

    lines = ['<http://e/x/b> <http://e/p> "two"@en .', '<http://e/x/a> <http://www.w3.org/1999/02/22-rdf-syntax-ns#type> <http://e/C> .',
             '<http://e/x/a> <http://e/p> "1"^^<http://www.w3.org/2001/XMLSchema#integer> .',
             '<http://e/x/a> <http://e/p> <http://e/x/b> .', '<http://other/z> <http://e/p> "z" .']
    prefixes = {"e": "http://e/", "x": "http://e/x/"}
    blocks = ground_blocks(lines, prefixes)
    ordered = [blocks[s][1] for s in sorted(blocks, key=lambda s: (blocks[s][0], s))]
    assert join_blocks(["top"], prefixes, ordered) == format_graph(lines, prefixes, ["top"])
    assert join_blocks([], {}, []) == format_graph([], {}, [])
    with pytest.raises(ValueError):
        ground_blocks(['<http://e/a> <http://e/p> _:b .'], prefixes)


def test_counts_from_lines_agree_with_the_sparql_counts(tmp_path: Path) -> None:
    import pyoxigraph as ox

    from emkg import dumps
    from emkg.load import load_graph
    from emkg.project import open_project
    from emkg.synth import generate_tree

    root = tmp_path / "tree"
    generate_tree(open_project(REPO_ROOT), root, 2000, faults=10, seed=7)
    stores = [load_graph(open_project(path)).store for path in (REPO_ROOT, root)]
    odd = ox.Store()
    odd.load(("<https://w3id.org/emkg/id/a> <http://www.w3.org/1999/02/22-rdf-syntax-ns#type> <http://e/C> .\n"
              "<https://w3id.org/emkg/id/a> <http://www.w3.org/1999/02/22-rdf-syntax-ns#type> \"<http://e/C>\" .\n"
              "<https://w3id.org/emkg/id/b> <http://e/p> \" <http://www.w3.org/1999/02/22-rdf-syntax-ns#type> <http://e/D> \" .\n"
              "<https://w3id.org/emkg/idx> <http://www.w3.org/1999/02/22-rdf-syntax-ns#type> <http://e/C> .\n"
              "<http://e/c> <http://www.w3.org/1999/02/22-rdf-syntax-ns#type> <http://e/\u00e9> .\n").encode("utf-8"),
             format=ox.RdfFormat.N_TRIPLES)
    stores.append(odd)
    for store in stores:
        ground = dumps.ground_graph(store)
        assert ground is not None
        for space in ("https://w3id.org/emkg/id/", "http://e/"):
            assert dumps._ground_counts(ground, space) == dumps._counts(store, space)
    assert dumps._ground_counts(dumps.ground_graph(odd), "https://w3id.org/emkg/id/").classes == {
        "http://e/C": 2, "http://e/\u00e9": 1}


def test_a_description_subject_also_in_the_data(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The description's triples join the data's own triples about the same subject (one block)."""
    from emkg import dumps

    root = tiny_project(tmp_path / "p", extra={"data/ds.ttl": (
        '<https://w3id.org/emkg/dataset> rdfs:comment "said in the data"@en ; dcterms:title "'
        "East Midlands children's services knowledge graph\"@en .\n")})
    project, graph, description = _tiny_graph(root)
    cached = dumps.write_dumps(project, graph, tmp_path / "pieces", description=description, parallel=False)
    monkeypatch.setattr(dumps, "ground_graph", lambda *_args, **_kw: None)
    whole = dumps.write_dumps(project, graph, tmp_path / "whole", description=dataclasses.replace(description, store_graph=None),
                              parallel=False)
    assert cached == whole
    for name in PUBLISHED:
        assert (tmp_path / "pieces" / name).read_bytes() == (tmp_path / "whole" / name).read_bytes(), name
    assert "said in the data" in (tmp_path / "pieces" / "emkg.ttl").read_text(encoding="utf-8")
