"""The static site and `emkg build`: pages, links, escaping, safety of paths and of the output folder.

The real project is built ONCE per session (``site_build``, shared with test_dumps.py and
test_browser.py through ``build_real``); small throw-away projects (``tiny_project``) cover the
command's behaviour (refusals, interrupted builds, markup in the data, reproducibility).
"""

from __future__ import annotations

import html
import json
import logging
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
BASE = "https://w3id.org/emkg/"
PAYLOAD = "<script>alert(1)</script> and </script> & <b>bold</b>"


# --- shared helpers (imported by test_dumps.py and test_browser.py) --------------------------------

def build_real(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The real project published once per session (dumps, views and site); returns the folder.

    Built with ``publish.publish`` after validation, whatever the report says: whether the real
    data conforms is the business of ``emkg validate`` (test_validate.py, ``make test``); here the
    output is under test. The folder is shared by every module through the session's base temp.
    """
    out = tmp_path_factory.getbasetemp() / "emkg-real-site" / "public"
    done = out.parent / "built.json"
    if done.is_file() and out.is_dir():
        return out
    from emkg import publish
    from emkg.load import load_graph, load_shapes
    from emkg.project import open_project
    from emkg.validate import validate_loaded

    project = open_project(REPO_ROOT)
    graph = load_graph(project)
    shapes = load_shapes(project)
    report = validate_loaded(project, graph, shapes)
    out.parent.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    summary = publish.publish(project, publish.check_output(project, out), graph, shapes, report,
                              progress=publish.Progress(live=False))
    done.write_text(json.dumps({"pages": summary.pages, "triples": summary.triples,
                                "seconds": time.monotonic() - started}), encoding="utf-8")
    return out


ONTOLOGY_NEEDED = (REPO_ROOT / "ontology").is_dir()

TINY_PREFIXES = """\
@prefix area: <https://w3id.org/emkg/id/area/> .
@prefix authority: <https://w3id.org/emkg/id/authority/> .
@prefix concept: <https://w3id.org/emkg/id/concept/> .
@prefix dcterms: <http://purl.org/dc/terms/> .
@prefix emkg: <https://w3id.org/emkg/def/> .
@prefix foaf: <http://xmlns.com/foaf/0.1/> .
@prefix group: <https://w3id.org/emkg/id/group/> .
@prefix person: <https://w3id.org/emkg/id/person/> .
@prefix programme: <https://w3id.org/emkg/id/programme/> .
@prefix prov: <http://www.w3.org/ns/prov#> .
@prefix rdfs: <http://www.w3.org/2000/01/rdf-schema#> .
@prefix schema: <https://schema.org/> .
@prefix scheme: <https://w3id.org/emkg/id/scheme/> .
@prefix section: <https://w3id.org/emkg/id/section/> .
@prefix skos: <http://www.w3.org/2004/02/skos/core#> .
@prefix source: <https://w3id.org/emkg/source/> .
@prefix update: <https://w3id.org/emkg/id/update/> .
@prefix xsd: <http://www.w3.org/2001/XMLSchema#> .
"""

TINY_DATA = {
    "data/sources.ttl": """
source:ref a emkg:SourceDocument ; dcterms:identifier "ref" ; dcterms:title "Reference list" ; emkg:fileName "ref.csv" .
source:001_x a emkg:SourceDocument ; dcterms:identifier "001_x" ; dcterms:title "East Midlands Regional Update September 2019" ; emkg:fileName "001_x.txt" .
source:001_x-riia a emkg:SourceSection ; dcterms:isPartOf source:001_x ; dcterms:title "Headlines (RIIA)" ;
    emkg:startLine 3 ; emkg:endLine 13 ; schema:position 1 .
source:001_x-pc a emkg:SourceSection ; dcterms:isPartOf source:001_x ; dcterms:title "Parental Conflict" ;
    emkg:startLine 27 ; emkg:endLine 29 ; schema:position 2 .
source:002_y a emkg:SourceDocument ; dcterms:identifier "002_y" ; dcterms:title "Regional lead" ; emkg:fileName "002_y.txt" .
source:002_y-intro a emkg:SourceSection ; dcterms:isPartOf source:002_y ; dcterms:title "Intro" ;
    emkg:startLine 1 ; emkg:endLine 3 ; schema:position 1 .
""",
    "data/authorities.ttl": """
area:east-midlands a emkg:Region ; rdfs:label "East Midlands"@en ; skos:prefLabel "East Midlands"@en ; prov:wasDerivedFrom source:ref .
area:rutland a emkg:County ; rdfs:label "Rutland"@en ; skos:prefLabel "Rutland"@en ; emkg:within area:east-midlands ; prov:wasDerivedFrom source:ref .
area:derbyshire a emkg:County ; rdfs:label "Derbyshire"@en ; skos:prefLabel "Derbyshire"@en ; emkg:within area:east-midlands ; prov:wasDerivedFrom source:ref .
authority:rutland-county-council a emkg:UnitaryAuthority ; rdfs:label "Rutland County Council"@en ;
    skos:prefLabel "Rutland County Council"@en ; emkg:gssCode "E06000017" ; emkg:ceremonialCounty area:rutland ;
    foaf:homepage <https://www.rutland.gov.uk/> ; prov:wasDerivedFrom source:ref .
authority:derby-city-council a emkg:UnitaryAuthority ; rdfs:label "Derby City Council"@en ;
    skos:prefLabel "Derby City Council"@en ; emkg:gssCode "E06000015" ; emkg:ceremonialCounty area:derbyshire ;
    prov:wasDerivedFrom source:ref .
authority:high-peak-borough-council a emkg:DistrictCouncil ; rdfs:label "High Peak Borough Council"@en ;
    skos:prefLabel "High Peak Borough Council"@en ; emkg:gssCode "E07000037" ; emkg:inCounty area:derbyshire ;
    prov:wasDerivedFrom source:ref .
""",
    "data/updates/2019-09.ttl": """
update:2019-09 a emkg:RegionalUpdate ; dcterms:title "East Midlands Regional Update September 2019" ;
    dcterms:date "2019-09-01"^^xsd:date ; emkg:datePrecision emkg:MonthPrecision ; emkg:statedDate "September 2019" ;
    schema:hasPart section:2019-09-riia, section:2019-09-pc ; prov:wasDerivedFrom source:001_x .
section:2019-09-riia a emkg:UpdateSection ; dcterms:isPartOf update:2019-09 ; dcterms:title "Headlines (RIIA)" ;
    schema:position 1 ;
    schema:text "The RIIA frames our work on SEND pressures. Rutland County Council and Derby City Council work with the EM DCS group; Rutland County Council again." ;
    schema:mentions authority:rutland-county-council, authority:derby-city-council, group:em-dcs-group ;
    emkg:reportsOn programme:riia ; prov:wasDerivedFrom source:001_x-riia .
section:2019-09-pc a emkg:UpdateSection ; dcterms:isPartOf update:2019-09 ; dcterms:title "Parental Conflict" ;
    schema:position 2 ; schema:text "All nine LAs pooled the grant." ; schema:mentions person:anne-marie-mcblain ;
    prov:wasDerivedFrom source:001_x-pc .
programme:riia a emkg:Programme ; rdfs:label "Regional Improvement and Innovation Alliance"@en ;
    skos:prefLabel "Regional Improvement and Innovation Alliance"@en ; skos:altLabel "RIIA"@en ;
    emkg:involves authority:rutland-county-council ; emkg:ledBy group:em-dcs-group ; prov:wasDerivedFrom source:001_x-riia .
group:em-dcs-group a emkg:Group ; rdfs:label "EM DCS group"@en ; skos:prefLabel "EM DCS group"@en ;
    prov:wasDerivedFrom source:001_x-riia, source:002_y-intro .
person:anne-marie-mcblain a foaf:Person ; foaf:name "Anne-Marie McBlain" ; rdfs:label "Anne-Marie McBlain" ;
    prov:wasDerivedFrom source:002_y-intro .
scheme:glossary a skos:ConceptScheme ; rdfs:label "Glossary"@en ; skos:prefLabel "Glossary"@en ; prov:wasDerivedFrom source:001_x-riia .
concept:glossary-send a emkg:GlossaryTerm ; skos:inScheme scheme:glossary ; skos:notation "SEND" ; skos:prefLabel "SEND"@en ;
    emkg:expansion "special educational needs and disabilities"@en ; emkg:usedIn section:2019-09-riia ;
    prov:wasDerivedFrom source:001_x-riia .
concept:glossary-dcs a emkg:GlossaryTerm ; skos:inScheme scheme:glossary ; skos:notation "DCS" ; skos:prefLabel "DCS"@en ;
    emkg:expansion "Director of Children's Services"@en ; emkg:usedIn section:2019-09-riia ; prov:wasDerivedFrom source:001_x-riia .
""",
}

TINY_SHAPES = """\
@prefix sh: <http://www.w3.org/ns/shacl#> .
@prefix emkg: <https://w3id.org/emkg/def/> .
@prefix emkgsh: <https://w3id.org/emkg/shapes/> .
@prefix rdfs: <http://www.w3.org/2000/01/rdf-schema#> .
@prefix rdf: <http://www.w3.org/1999/02/22-rdf-syntax-ns#> .
@prefix xsd: <http://www.w3.org/2001/XMLSchema#> .
@prefix foaf: <http://xmlns.com/foaf/0.1/> .
emkgsh:LocalAuthorityShape a sh:NodeShape ; sh:targetClass emkg:LocalAuthority ;
    sh:property emkgsh:LocalAuthorityShape-label, emkgsh:LocalAuthorityShape-gss, emkgsh:LocalAuthorityShape-homepage .
emkgsh:LocalAuthorityShape-label sh:path rdfs:label ; sh:minCount 1 ; sh:datatype rdf:langString ;
    sh:message "Every authority needs an English label." .
emkgsh:LocalAuthorityShape-gss sh:path emkg:gssCode ; sh:minCount 1 ; sh:maxCount 1 ; sh:datatype xsd:string ;
    sh:pattern "^E(06|07|10|12|26)[0-9]{6}$" ; sh:message "Write one GSS code." .
emkgsh:LocalAuthorityShape-homepage sh:path foaf:homepage ; sh:minCount 1 ; sh:nodeKind sh:IRI ; sh:severity sh:Warning ;
    sh:message "Add the authority's website." .
"""

TINY_VIEW = """\
# title: Local authorities
# description: The authorities, one row each.
PREFIX emkg: <https://w3id.org/emkg/def/>
PREFIX rdfs: <http://www.w3.org/2000/01/rdf-schema#>
SELECT ?authority ?label ?gss WHERE {
  ?authority a/rdfs:subClassOf* emkg:LocalAuthority ; rdfs:label ?label ; emkg:gssCode ?gss .
} ORDER BY ?label
"""


def tiny_project(root: Path, extra: dict[str, str] | None = None, authorities: int = 0, shapes: str = TINY_SHAPES) -> Path:
    """A small project with the real ontology: a few authorities, one update, a glossary, a view."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "pyproject.toml").write_text('[tool.emkg]\nbase-iri = "https://w3id.org/emkg/"\n', encoding="utf-8")
    (root / "ontology").mkdir(exist_ok=True)
    for src in (REPO_ROOT / "ontology").glob("*.ttl"):
        shutil.copyfile(src, root / "ontology" / src.name)
    files = dict(TINY_DATA)
    if authorities:
        files["data/many.ttl"] = "\n".join(
            f'authority:extra-{i:04d} a emkg:DistrictCouncil ; rdfs:label "Extra Council {i}"@en ; '
            f'skos:prefLabel "Extra Council {i}"@en ; emkg:gssCode "E07{i:06d}" ; emkg:inCounty area:derbyshire ; '
            f'prov:wasDerivedFrom source:ref .' for i in range(authorities))
    files.update(extra or {})
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(TINY_PREFIXES + text if rel.startswith("data/") else text, encoding="utf-8")
    (root / "shapes").mkdir(exist_ok=True)
    (root / "shapes" / "shapes.ttl").write_text(shapes, encoding="utf-8")
    (root / "queries" / "qc").mkdir(parents=True, exist_ok=True)
    (root / "queries" / "authorities.rq").write_text(TINY_VIEW, encoding="utf-8")
    return root


@dataclass
class Ran:
    returncode: int
    stdout: str
    stderr: str


def run_cli(*args: str | Path, env: dict | None = None) -> Ran:
    """``emkg ARGS`` in this process (fast: no interpreter start-up); stdout/stderr captured."""
    import contextlib
    import io

    from emkg.cli import main

    out, err = io.StringIO(), io.StringIO()
    saved = {k: os.environ.get(k) for k in ("EMKG_ENDPOINT", *(env or {}))}
    os.environ.pop("EMKG_ENDPOINT", None)
    os.environ.update(env or {})
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                code = main([str(a) for a in args])
            except SystemExit as exc:
                code = exc.code if isinstance(exc.code, int) else 2
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    return Ran(code, out.getvalue(), err.getvalue())


def run_subprocess(*args: str | Path, timeout: float = 300) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "EMKG_ENDPOINT"}
    return subprocess.run([sys.executable, "-m", "emkg.cli", *map(str, args)], env=env,
                          capture_output=True, text=True, timeout=timeout)


class LinkParser(HTMLParser):
    """Collects href/src/action of a page, the ids it defines and the text of its scripts."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.links: list[str] = []
        self.ids: set[str] = set()
        self.scripts: list[tuple[dict, str]] = []
        self._script: dict | None = None
        self._buffer: list[str] = []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if a.get("id"):
            self.ids.add(a["id"])
        for key in ("href", "src", "action"):
            if a.get(key) is not None:
                self.links.append(a[key])
        if tag == "script":
            self._script = a
            self._buffer = []

    def handle_data(self, data):
        if self._script is not None:
            self._buffer.append(data)

    def handle_endtag(self, tag):
        if tag == "script" and self._script is not None:
            self.scripts.append((self._script, "".join(self._buffer)))
            self._script = None


def parse_page(path: Path) -> LinkParser:
    parser = LinkParser()
    parser.feed(path.read_text(encoding="utf-8"))
    parser.close()
    return parser


def html_files(folder: Path) -> list[Path]:
    return sorted(folder.rglob("*.html"))


def broken_links(site: Path, parsed: dict[Path, LinkParser] | None = None) -> list[str]:
    """Every internal href/src/action of every page, resolved against the page's file, must exist
    (and a #fragment must name an id in the target page)."""
    problems = []
    ids: dict[Path, set[str]] = {}
    parsed = parsed if parsed is not None else {p: parse_page(p) for p in html_files(site)}
    for page, parser in parsed.items():
        ids[page] = parser.ids
    for page, parser in parsed.items():
        for link in parser.links:
            if re.match(r"^[a-z][a-z0-9+.-]*:", link, re.I):  # http:, https:, mailto:
                continue
            target_part, _, fragment = link.partition("#")
            target_part = target_part.split("?", 1)[0]
            target = page if not target_part else (page.parent / target_part).resolve()
            if not str(target).startswith(str(site.resolve())):
                problems.append(f"{page.relative_to(site)}: {link} leaves the site")
                continue
            if not target.exists() or target.is_dir():
                problems.append(f"{page.relative_to(site)}: {link} -> missing {target}")
                continue
            if fragment and target.suffix == ".html":
                if target not in ids:
                    ids[target] = parse_page(target).ids
                if fragment not in ids[target]:
                    problems.append(f"{page.relative_to(site)}: {link} -> no id {fragment!r}")
    return problems


# --- fixtures --------------------------------------------------------------------------------------

@pytest.fixture(scope="session")
def site_build(tmp_path_factory) -> Path:
    return build_real(tmp_path_factory)


@pytest.fixture(scope="session")
def parsed_site(site_build: Path) -> dict[Path, LinkParser]:
    return {p: parse_page(p) for p in html_files(site_build)}


@pytest.fixture(scope="session")
def real_model():
    """The real graph as the site sees it (for finding resources to check)."""
    import pyoxigraph as ox

    from emkg.load import load_graph
    from emkg.project import open_project

    project = open_project(REPO_ROOT)
    graph = load_graph(project)
    return project, graph, ox


def _tiny_build(tmp_path: Path, name: str = "tiny", **kwargs) -> tuple[Path, Path]:
    root = tiny_project(tmp_path / name, **kwargs)
    out = tmp_path / f"{name}-out"
    done = run_cli("--root", root, "build", "--out", out)
    assert done.returncode == 0, done.stdout + done.stderr
    return root, out


# --- the real site ---------------------------------------------------------------------------------

def test_every_resource_has_a_page_with_its_data_beside_it(site_build: Path, real_model) -> None:
    project, graph, ox = real_model
    from emkg.site import resource_dir

    subjects = {q.subject.value for q in graph.store.quads_for_pattern(None, None, None, ox.DefaultGraph())
                if isinstance(q.subject, ox.NamedNode) and q.subject.value.startswith(project.base_iri)}
    assert len(subjects) > 100
    for iri in sorted(subjects):
        folder = resource_dir(iri, project.base_iri)
        assert folder is not None, iri
        if iri.startswith(project.id_base):
            assert folder == iri[len(project.base_iri):], "IRIs under id/ mirror their path"
        page = site_build / folder / "index.html"
        assert page.is_file(), iri
        assert (site_build / folder / "index.ttl").is_file() and (site_build / folder / "index.jsonld").is_file()
    text = (site_build / "id/authority/derby-city-council/index.html").read_text(encoding="utf-8")
    assert '<link rel="alternate" type="text/turtle" href="index.ttl"' in text
    assert '<link rel="alternate" type="application/ld+json" href="index.jsonld"' in text


def test_resource_data_files_hold_the_resource_triples(site_build: Path, real_model) -> None:
    import rdflib

    project, graph, ox = real_model
    iri = project.id_base + "authority/derby-city-council"
    expected = {(str(q.predicate.value), str(q.object)) for q in graph.store.quads_for_pattern(ox.NamedNode(iri), None, None, ox.DefaultGraph())}
    folder = site_build / "id/authority/derby-city-council"
    for name, fmt in (("index.ttl", "turtle"), ("index.jsonld", "json-ld")):
        g = rdflib.Graph().parse(folder / name, format=fmt)
        assert {str(s) for s in g.subjects()} == {iri}
        assert len(g) == len(expected), name


def test_no_broken_internal_links(site_build: Path, parsed_site) -> None:
    problems = broken_links(site_build, parsed_site)
    assert not problems, "\n".join(problems[:30])


def test_pages_show_labels_and_where_facts_come_from(site_build: Path) -> None:
    page = (site_build / "id/authority/derby-city-council/index.html").read_text(encoding="utf-8")
    assert "<h1>Derby City Council</h1>" in page
    assert "Where this comes from" in page
    assert re.search(r"lines \d+–\d+", page), "provenance shows seed line numbers"
    assert "data/authorities.ttl:" in page, "and where the record is written"
    # properties are labelled, not raw IRIs
    assert ">GSS code<" in page or ">gSS code<" not in page


def test_home_page_counts_latest_update_downloads(site_build: Path) -> None:
    page = (site_build / "index.html").read_text(encoding="utf-8")
    for needle in ("At a glance", "Latest update", "emkg.ttl", "emkg.nt", "emkg.jsonld", "emkg.trig", "void.ttl",
                   "views/index.html", "search/index.html"):
        assert needle in page, needle
    latest = re.search(r'<p class="latest"><strong><a href="([^"]+)">', page)
    assert latest and latest.group(1) == "id/update/2023-03/index.html"


def test_authorities_grouped_by_county(site_build: Path) -> None:
    page = (site_build / "authorities/index.html").read_text(encoding="utf-8")
    headings = re.findall(r'<h2 id="h-county-([a-z-]+)">', page)
    assert {"derbyshire", "rutland", "lincolnshire", "nottinghamshire", "leicestershire", "northamptonshire"} <= set(headings)
    rutland = page.split('id="h-county-rutland"')[1].split("<h2")[0]
    assert "Rutland County Council" in rutland
    derbyshire = page.split('id="h-county-derbyshire"')[1].split("<h2")[0]
    assert "Amber Valley Borough Council" in derbyshire and "Derby City Council" in derbyshire
    assert "https://www.derbyshire.gov.uk/" in derbyshire
    assert '<th scope="col">GSS code</th>' in page


def test_authority_page_lists_updates_programmes_events(site_build: Path) -> None:
    page = (site_build / "id/authority/northamptonshire-county-council/index.html").read_text(encoding="utf-8")
    involvement = page.split('id="h-involvement"')[1].split('id="h-properties"')[0]
    assert "id/update/2018-06/index.html" in involvement
    assert "<h3>Programmes</h3>" in involvement and "<h3>Events</h3>" in involvement


def test_update_page_renders_sections_with_abbr_and_links(site_build: Path) -> None:
    page = (site_build / "id/update/2019-09/index.html").read_text(encoding="utf-8")
    assert page.count('class="update-section"') >= 5
    assert re.search(r'<abbr title="[^"]+">(DCS|SEND|LA|MoU)</abbr>', page)
    assert re.search(r'<a href="\.\./\.\./\.\./id/group/[a-z-]+/index.html" title="[^"]+">', page), "mentions link to pages"


def test_updates_timeline_in_date_order(site_build: Path) -> None:
    page = (site_build / "updates/index.html").read_text(encoding="utf-8")
    order = re.findall(r'href="\.\./id/update/(\d{4}-\d{2})/index.html"', page)
    assert order == sorted(order) and len(set(order)) == 5


def test_listing_pages_exist_and_have_content(site_build: Path) -> None:
    for rel, needle in (("programmes/index.html", "Appears in updates"), ("people/index.html", "Trustees"),
                        ("events/index.html", "id/event/"), ("publications/index.html", "id/publication/"),
                        ("themes/index.html", "id/concept/"), ("glossary/index.html", "<dfn>SEND</dfn>"),
                        ("organisations/index.html", "id/organisation/"), ("quality/index.html", "validation report")):
        page = (site_build / rel).read_text(encoding="utf-8")
        assert needle in page, rel


def test_view_pages_and_downloads(site_build: Path) -> None:
    from emkg.project import open_project
    from emkg.views import list_views

    views = list_views(open_project(REPO_ROOT))
    assert views
    index = (site_build / "views/index.html").read_text(encoding="utf-8")
    for view in views:
        page = site_build / "views" / f"{view.name}.html"
        assert page.is_file(), view.name
        assert f'href="{view.name}.html"' in index
        if not any(p.required for p in view.params):
            text = page.read_text(encoding="utf-8")
            assert f'href="{view.name}.csv"' in text and f'href="{view.name}.json"' in text
            assert "<pre class=\"query\"><code>" in text


def test_ontology_documentation_with_requirements(site_build: Path) -> None:
    page = (site_build / "def/index.html").read_text(encoding="utf-8")
    assert 'id="LocalAuthority"' in page and 'id="gssCode"' in page
    section = page.split('id="LocalAuthority"')[1].split('<article class="term"')[0]
    assert "Requirements" in section and "GSS code" in section
    assert re.search(r"level-(must|should)", section)
    cls = (site_build / "def/LocalAuthority/index.html").read_text(encoding="utf-8")
    assert "What a data officer must supply" in cls


def test_search_index_and_page(site_build: Path) -> None:
    entries = json.loads((site_build / "search-index.json").read_text(encoding="utf-8"))
    rutland = [e for e in entries if e["label"] == "Rutland County Council"]
    assert rutland and rutland[0]["url"] == "id/authority/rutland-county-council/index.html"
    assert all(set(e) >= {"label", "type", "url"} for e in entries)
    script = (site_build / "search/index.js").read_text(encoding="utf-8")
    assert script.startswith("/*") and "window.EMKG_SEARCH" in script
    page = (site_build / "search/index.html").read_text(encoding="utf-8")
    assert "Everything, A to Z" in page and 'href="../id/authority/rutland-county-council/index.html"' in page
    for p in html_files(site_build)[:50]:
        assert 'role="search"' in p.read_text(encoding="utf-8"), "a search box on every page"


def test_pages_are_accessible_by_construction(site_build: Path) -> None:
    for p in [site_build / "index.html", site_build / "id/authority/derby-city-council/index.html",
              site_build / "authorities/index.html", site_build / "def/index.html"]:
        text = p.read_text(encoding="utf-8")
        assert '<html lang="en-GB">' in text and 'class="skip-link" href="#main"' in text
        for tag in ("<header", "<nav", "<main", "<footer"):
            assert tag in text
        levels = [int(x) for x in re.findall(r"<h([1-6])[ >]", text)]
        assert levels[0] == 1 and levels.count(1) == 1
        assert all(b - a <= 1 for a, b in zip(levels, levels[1:])), f"heading levels skip in {p}"
        assert "<th>" not in text, "every th has a scope"
    css = (site_build / "static/emkg.css").read_text(encoding="utf-8")
    assert "@media print" in css and "@media (max-width" in css


def test_nothing_from_the_network(site_build: Path, parsed_site) -> None:
    for p, parser in parsed_site.items():
        for attrs, _body in parser.scripts:
            assert not attrs.get("src", "").startswith(("http:", "https:", "//")), p
        text = p.read_text(encoding="utf-8")
        assert not re.search(r'<link[^>]+rel="stylesheet"[^>]+href="(https?:)?//', text), p


def test_site_is_relative_everywhere(parsed_site) -> None:
    for p, parser in parsed_site.items():
        for link in parser.links:
            assert not link.startswith("/"), f"{p}: absolute path {link}"
            assert not link.startswith(BASE), f"{p}: links to the base IRI instead of a relative path: {link}"


# --- paths never escape ---------------------------------------------------------------------------

@pytest.mark.parametrize("iri, expected", [
    (BASE + "id/authority/derby-city-council", "id/authority/derby-city-council"),
    (BASE + "def/", "def"),
    (BASE + "def/LocalAuthority", "def/LocalAuthority"),
    (BASE + "id/update/2019-09", "id/update/2019-09"),
    ("https://example.org/x", None),
    (BASE, None),
    (BASE + "id/x#frag", None),
])
def test_resource_dir_mirrors_iris(iri: str, expected: str | None) -> None:
    from emkg.site import resource_dir

    assert resource_dir(iri, BASE) == expected


@pytest.mark.parametrize("rest", ["id/../../etc/x", "id/./x", "id//x", "../x", "id/%2e%2e/x", "id/x/index.html",
                                  "id/.hidden", "static/x", "views/x", "id/a b", "id/x\\..\\y", "id/zoë"])
def test_unsafe_iris_get_a_hashed_folder_inside_the_output(rest: str) -> None:
    from emkg.site import resource_dir, safe_join

    folder = resource_dir(BASE + rest, BASE)
    assert folder is not None and folder.startswith("_r/") and ".." not in folder
    safe_join(Path("/tmp/out"), folder + "/index.html")


def test_safe_join_refuses_escapes() -> None:
    from emkg.site import safe_join

    for bad in ("../x", "/etc/passwd", "a/../../x", "a/./b", "a\\b"):
        with pytest.raises(ValueError):
            safe_join(Path("/tmp/out"), bad)


def test_iri_with_dot_segments_stays_inside(tmp_path: Path) -> None:
    evil = 'authority:rutland-county-council schema:mentions <https://w3id.org/emkg/id/../../etc/x> .\n' \
           '<https://w3id.org/emkg/id/../../etc/x> rdfs:label "Escaper"@en ; prov:wasDerivedFrom source:ref .\n'
    root, out = _tiny_build(tmp_path, extra={"data/evil.ttl": evil})
    outside = [p for p in tmp_path.rglob("*") if p.is_file() and not str(p).startswith((str(root), str(out)))]
    assert outside == []
    pages = [p for p in (out / "_r").rglob("index.html") if "Escaper" in p.read_text(encoding="utf-8")]
    assert len(pages) == 1


# --- markup in the data ----------------------------------------------------------------------------

def test_markup_in_literals_is_text_everywhere(tmp_path: Path) -> None:
    lit = json.dumps(PAYLOAD)
    extra = {"data/xss.ttl": f"""
authority:rutland-county-council skos:altLabel {lit}@en ; skos:editorialNote {lit}@en .
concept:glossary-send emkg:expansion {lit}@en .
section:2019-09-pc schema:text {json.dumps("All nine LAs " + PAYLOAD)} .
"""}
    _root, out = _tiny_build(tmp_path, extra=extra)
    escaped = html.escape(PAYLOAD, quote=False)
    pages = html_files(out)
    reached = 0
    for page in pages:
        text = page.read_text(encoding="utf-8")
        assert "<script>alert(1)" not in text, page
        assert "<b>bold</b>" not in text, page
        parser = parse_page(page)
        for attrs, body in parser.scripts:
            assert "</script" not in body.lower()
            if attrs.get("type") == "application/ld+json":
                json.loads(body)
        if "alert(1)" in text:
            reached += 1
    assert reached >= 3, "the payload reaches several pages (authority, glossary, update, search)"
    page = (out / "id/authority/rutland-county-council/index.html").read_text(encoding="utf-8")
    assert escaped in page or html.escape(PAYLOAD) in page
    block = [body for attrs, body in parse_page(out / "id/authority/rutland-county-council/index.html").scripts
             if attrs.get("type") == "application/ld+json"][0]
    assert "\\u003c/script\\u003e" in block
    assert PAYLOAD in json.loads(block)["alternateName"]
    update = (out / "id/update/2019-09/index.html").read_text(encoding="utf-8")
    assert re.search(r'<abbr title="&lt;script&gt;alert\(1\)', update), "expansions are escaped in attributes"
    script = (out / "search/index.js").read_text(encoding="utf-8")
    assert "</script" not in script.lower() and "\\u003cscript\\u003e" in script


def test_rich_text_escapes_and_links_first_occurrence() -> None:
    from emkg.site import rich_text

    text = "Rutland County Council met the DCS <b>x</b>; Rutland County Council again. DCS."
    out = str(rich_text(text, [(["Rutland County Council"], "a/index.html", "Rutland & co")], {"DCS": 'Director "of" CS'}))
    assert out.count('<a href="a/index.html" title="Rutland &amp; co">Rutland County Council</a>') == 1
    assert out.count('<abbr title="Director &#34;of&#34; CS">DCS</abbr>') == 2
    assert "&lt;b&gt;x&lt;/b&gt;" in out


def test_rich_text_nests_abbr_inside_links() -> None:
    from emkg.site import rich_text

    out = str(rich_text("the EM DCS group met", [(["EM DCS group"], "g.html", "G")], {"DCS": "Directors"}))
    assert out == 'the <a href="g.html" title="G">EM <abbr title="Directors">DCS</abbr> group</a> met'


def test_glossary_candidates_are_the_acronyms_that_match_longest_first() -> None:
    """``Glossary.candidates`` skips the acronyms that cannot match without trying each: it must
    name exactly those whose word pattern matches, in the order they are marked up."""
    from emkg.site import Glossary, _word_pattern

    notations = ["SEND", "SEN", "SW MoU", "UASC", "-x", "x-", "a.b", "Ofsted", "ÉCOLE", "LA", "LAs", " ", "EM-DCS", "DCS"]
    glossary = Glossary({n: n.lower() for n in notations})
    texts = ["SEND and SEN", "SENDING sent", "the SW MoU, UASC-led", "pre-x -x x- x-y", "a.b a-b ab", "École ÉCOLE",
             "LAs: LA, LA's", "EM-DCS and EM DCS", "", "<b>SEND</b>", "DCS-", "(UASC)"]
    for text in texts:
        expected = [n for n in sorted(notations, key=len, reverse=True)
                    if n.strip() and _word_pattern(n, False, True).search(text)]
        got = [n for n in glossary.candidates(text) if _word_pattern(n, False, True).search(text)]
        assert got == expected, text
        assert set(glossary.candidates(text)) <= {n for n in notations if n in text}, text
    assert dict(glossary) == {n: n.lower() for n in notations}
    from emkg.site import rich_text

    out = str(rich_text("SEND and SEN, EM-DCS and EM DCS", [], glossary))
    assert out == ('<abbr title="send">SEND</abbr> and <abbr title="sen">SEN</abbr>, <abbr title="em-dcs">EM-DCS</abbr>'
                   ' and EM <abbr title="dcs">DCS</abbr>')


# --- the command -----------------------------------------------------------------------------------

def test_build_tiny_project_summary_and_progress(tmp_path: Path) -> None:
    root = tiny_project(tmp_path / "p")
    out = tmp_path / "site"
    done = run_subprocess("--root", root, "build", "--out", out)
    assert done.returncode == 0, done.stderr
    assert "emkg: validating" in done.stderr and "emkg: rendering the site" in done.stderr
    assert re.search(r"emkg: built .* in [\d.]+ s: [\d,]+ triples, 4 dumps, 1 views, \d+ pages", done.stderr)
    assert "\r" not in done.stderr, "plain lines when stderr is not a terminal"
    assert (out / "index.html").is_file() and (out / ".emkg-build").is_file()
    assert not list(tmp_path.glob(".site.*")), "no temporary folder left"


def test_no_site_writes_dumps_and_views_only(tmp_path: Path) -> None:
    root = tiny_project(tmp_path / "p")
    out = tmp_path / "dumps"
    done = run_cli("--root", root, "build", "--out", out, "--no-site")
    assert done.returncode == 0, done.stderr
    assert sorted(p.name for p in out.iterdir()) == [".emkg-build", "emkg.jsonld", "emkg.nt", "emkg.trig", "emkg.ttl", "views", "void.ttl"]
    assert (out / "views/authorities.csv").is_file() and (out / "views/authorities.json").is_file()


def test_refuses_non_conforming_data_and_keeps_previous_output(tmp_path: Path) -> None:
    root, out = _tiny_build(tmp_path)
    before = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    (root / "data" / "bad.ttl").write_text(TINY_PREFIXES + 'authority:bad a emkg:CountyCouncil ; emkg:gssCode "X1" .\n', encoding="utf-8")
    done = run_cli("--root", root, "build", "--out", out)
    assert done.returncode == 1
    assert "data/bad.ttl:" in done.stdout and "violation" in done.stdout, "the same report as emkg validate"
    validate = run_cli("--root", root, "validate")
    assert validate.stdout.strip() == done.stdout.strip()
    after = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    assert after == before


def test_refuses_syntax_errors(tmp_path: Path) -> None:
    root = tiny_project(tmp_path / "p", extra={"data/broken.ttl": "authority:x a ."})
    done = run_cli("--root", root, "build", "--out", tmp_path / "o")
    assert done.returncode == 1 and "data/broken.ttl:" in done.stdout
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("case", ["file", "under-file", "foreign-folder", "project-root", "inside-sources"])
def test_bad_out_is_one_clear_error(tmp_path: Path, case: str) -> None:
    root = tiny_project(tmp_path / "p")
    if case == "file":
        out = tmp_path / "afile"
        out.write_text("x")
    elif case == "under-file":
        (tmp_path / "afile").write_text("x")
        out = tmp_path / "afile" / "site"
    elif case == "foreign-folder":
        out = tmp_path / "mine"
        out.mkdir()
        (out / "precious.txt").write_text("keep me")
    elif case == "project-root":
        out = root
    else:
        out = root / "data" / "site"
    done = run_cli("--root", root, "build", "--out", out)
    assert done.returncode == 2, done.stderr
    lines = [line for line in done.stderr.splitlines() if line.startswith("emkg: error:")]
    assert len(lines) == 1 and "Traceback" not in done.stderr, done.stderr
    if case == "foreign-folder":
        assert (out / "precious.txt").read_text() == "keep me"
    assert (root / "data" / "authorities.ttl").is_file()


def test_a_failing_step_leaves_the_previous_output(tmp_path: Path, monkeypatch) -> None:
    from emkg import publish, site
    from emkg.cli import main

    root, out = _tiny_build(tmp_path)
    before = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()}

    def boom(*args, **kwargs):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(site, "render_site", boom)
    assert publish  # the build imports render_site from emkg.site at run time
    code = main(["--root", str(root), "build", "--out", str(out)])
    assert code == 2
    after = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    assert after == before
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(f".{out.name}.")]


def _interrupt_build(root: Path, out: Path, sig: int) -> tuple[subprocess.Popen, str]:
    env = {k: v for k, v in os.environ.items() if k != "EMKG_ENDPOINT"}
    proc = subprocess.Popen([sys.executable, "-m", "emkg.cli", "--root", str(root), "build", "--out", str(out), "--jobs", "1", "--full"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    tmp = out.parent / f".{out.name}.tmp-{proc.pid}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        if (tmp / "id").is_dir():  # mid-way through the resource pages (--full: all of them are written)
            break
        time.sleep(0.005)
    assert proc.poll() is None, "the build finished before it could be interrupted"
    proc.send_signal(sig)
    _out, err = proc.communicate(timeout=60)
    return proc, err


def test_an_interrupted_build_leaves_the_previous_output(tmp_path: Path) -> None:
    root, out = _tiny_build(tmp_path, authorities=250)
    before = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    killed, _err = _interrupt_build(root, out, signal.SIGKILL)
    assert {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()} == before
    assert (tmp_path / f".{out.name}.tmp-{killed.pid}").is_dir(), "a killed build cannot clean up..."
    terminated, err = _interrupt_build(root, out, signal.SIGTERM)
    assert terminated.returncode == 130 and "emkg: interrupted" in err and "Traceback" not in err
    assert not (tmp_path / f".{out.name}.tmp-{terminated.pid}").exists(), "SIGTERM cleans up"
    assert {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()} == before
    assert not (tmp_path / f".{out.name}.tmp-{killed.pid}").exists(), "...the next build removes its leftovers"


def test_parallel_rendering_gives_the_same_site(tmp_path: Path, monkeypatch, caplog) -> None:
    """Rendered in this process, or by workers started before the dumps and views (with the
    dataset description in their copy of the store, not in the dumps' and views'): the same bytes."""
    from emkg import publish, site
    from emkg.load import load_graph, load_shapes
    from emkg.project import open_project
    from emkg.validate import validate_loaded

    caplog.set_level(logging.INFO, logger="emkg.site")
    root = tiny_project(tmp_path / "p", authorities=60)
    project = open_project(root)
    outs = []
    for jobs, threshold in ((1, 10**9), (2, 0)):
        monkeypatch.setattr(site, "PARALLEL_THRESHOLD", threshold)
        monkeypatch.setattr(site, "BATCH_SIZE", 16)
        graph, shapes = load_graph(project), load_shapes(project)
        report = validate_loaded(project, graph, shapes)
        out = publish.check_output(project, tmp_path / f"out-{jobs}")
        caplog.clear()
        summary = publish.publish(project, out, graph, shapes, report, jobs=jobs, progress=publish.Progress(live=False))
        assert summary.pages > 60
        started_early = any("before the dumps and views" in r.getMessage() for r in caplog.records)
        assert started_early == (jobs == 2), "two jobs: the resource pages are started before the dumps"
        outs.append(out)
    files = [{p.relative_to(o): p.read_bytes() for p in o.rglob("*") if p.is_file()} for o in outs]
    assert files[0] == files[1]


def test_a_build_failing_while_the_pages_render_ends_the_workers(tmp_path: Path, monkeypatch) -> None:
    """A view that cannot be published while the workers render the resource pages: exit 2, the
    workers ended, nothing published, no temporary folder left."""
    import multiprocessing

    from emkg import publish, site

    monkeypatch.setattr(site, "PARALLEL_THRESHOLD", 0)
    monkeypatch.setattr(site, "BATCH_SIZE", 4)
    from emkg.errors import UsageError

    root = tiny_project(tmp_path / "p", authorities=60)
    started = []
    real_start = site.start_resource_pages

    def start(*args, **kwargs):
        started.append(real_start(*args, **kwargs))
        return started[-1]

    def views_fail(*_args, **_kwargs):
        assert started and started[0].workers.running, "the workers are rendering"
        raise UsageError("view 'broken' cannot be published: the test made it fail")

    monkeypatch.setattr(site, "start_resource_pages", start)
    monkeypatch.setattr(publish, "run_views", views_fail)
    out = tmp_path / "site"
    ran = run_cli("--root", root, "build", "--jobs", "2", "--out", out)
    assert ran.returncode == 2 and "broken" in ran.stderr and "Traceback" not in ran.stderr, ran.stderr
    assert started and started[0] is not None and not started[0].workers.running, "the workers were started, then ended"
    assert not multiprocessing.active_children()
    assert not out.exists() and not list(tmp_path.glob(".site.tmp-*"))


def test_two_builds_give_identical_sites(tmp_path: Path) -> None:
    root = tiny_project(tmp_path / "p")
    a, b = tmp_path / "a", tmp_path / "b"
    for out in (a, b):
        assert run_cli("--root", root, "build", "--out", out).returncode == 0
    fa = {p.relative_to(a): p.read_bytes() for p in a.rglob("*") if p.is_file()}
    fb = {p.relative_to(b): p.read_bytes() for p in b.rglob("*") if p.is_file()}
    assert fa.keys() == fb.keys()
    assert [k for k in fa if fa[k] != fb[k]] == []


def test_progress_live_line_on_a_terminal() -> None:
    import io

    from emkg.publish import Progress

    stream = io.StringIO()
    progress = Progress(stream, live=True)
    progress.step("rendering")
    for i in range(1, 1001):
        progress.tick("pages", i, 1000)
    progress.done("built")
    text = stream.getvalue()
    assert "\r\x1b[K" in text and "pages 1,000/1,000 (100%)" in text and text.endswith("emkg: built\n")
    plain = io.StringIO()
    progress = Progress(plain, live=False)
    for i in range(1, 1001):
        progress.tick("pages", i, 1000)
    assert plain.getvalue().count("\n") == 4 and "\r" not in plain.getvalue()


def test_indented_json_is_the_json_modules_text() -> None:
    """The site's JSON writer gives ``json.dumps(..., ensure_ascii=False, indent=1 or 0)``'s text."""
    from emkg.site import _indented_json, index_json_text

    values = [
        [], {}, "", 0, -1.5, True, None, [[]], [{}],
        {"label": 'a "quoted" \\ back\tslash\n\u2028 \U0001F600 \x01', "type": "T", "url": "x/index.html"},
        [{"label": "\u00e9t\u00e9", "see": "x", "n": 3, "list": [1, "two", None, {"deep": [False]}]}],
        {"nested": {"a": {"b": []}}, "": "empty key"},
    ]
    for value in values:
        assert _indented_json(value, "\n") == json.dumps(value, ensure_ascii=False, indent=1), value
        assert _indented_json(value, "\n", "") == json.dumps(value, ensure_ascii=False, indent=0), value
    entries = [{"label": f"L{i} \u00e9 \"q\"", "type": "Local authority", "url": f"id/a/{i}/index.html"} for i in range(50)]
    assert index_json_text(entries) == json.dumps(entries, ensure_ascii=False, indent=0) + "\n"
    odd = [{"label": "x", "n": float("nan")}, {1: "not a string key"}]  # json's own writer: the same text
    assert index_json_text(odd) == json.dumps(odd, ensure_ascii=False, indent=0) + "\n"
