"""Reproducible RDF dumps of the graph and its VoID/DCAT description.

``emkg build`` writes, at the root of the output folder:

``emkg.ttl``, ``emkg.nt``, ``emkg.jsonld``
    The whole graph: the ontology, the data and the dataset description (below). The three files
    hold exactly the same triples. JSON-LD carries its ``@context`` inline (the prefixes declared
    in the sources), so reading it never needs the network.
``emkg.trig``
    The same triples split into named graphs, one per source document. The rule, per subject
    (every triple goes where its subject goes, so each triple is in exactly one graph):

    * subjects written in ``ontology/`` → ``<base>graph/ontology``;
    * the dataset description → ``<base>graph/dataset``;
    * a source document → its own graph ``<base>graph/source/<stem>``; a source section → the
      graph of the document it is part of;
    * any other subject → the graph of the one source document its ``prov:wasDerivedFrom``
      sections belong to (a section counts for its ``dcterms:isPartOf`` document, a document for
      itself); subjects derived from two or more documents → ``<base>graph/multi-source``;
      subjects with no provenance → ``<base>graph/unsourced``;
    * a blank node goes with the subject that refers to it.
``void.ttl``
    The dataset description on its own, plus the byte size (``dcat:byteSize``) and SHA-256
    (``spdx:checksum``) of each of the four dumps. Sizes and checksums live ONLY here: a file
    cannot contain its own checksum, and keeping them out of the graph keeps the four dumps
    identical in content.

Incremental: a graph without blank nodes (the usual case) is written from per-subject pieces (each
subject's Turtle block, JSON-LD node and TriG block, plus what the named-graph rule needs to know
of it), which depend only on that subject's triples, the prefixes and the base IRI. They are kept
in the work cache (``.cache/dumps/``, sharded, keyed by the code and prefixes) under a hash of the
subject's sorted N-Triples lines, so a build after an edit formats only the subjects that changed
and joins the rest; the files are byte for byte what the whole-graph writers below give (and what
a build with ``EMKG_NO_CACHE=1`` writes). A graph with blank nodes (whose labels depend on the
whole graph) is written by the whole-graph writers. The statistics of the description are counted
from the same sorted lines (no SPARQL aggregates).

``emkg.ttl`` and ``void.ttl`` are laid out by the project's canonical formatter
(``fmt.format_turtle``, the layout of the sources); the TriG dump and each page's ``index.ttl``
use the writer here (sorted subjects, ``rdf:type`` first, then predicates and objects sorted).

Reproducible: subjects, predicates and objects are sorted by their N-Triples text; prefixes are
those declared in the sources (plus the few standard ones the description needs: ``dcat``,
``void``, ``spdx``...), never invented; blank nodes (the sources have none) are labelled by RDFC-1.0
canonicalisation; the one date comes from the sources (``SOURCE_DATE_EPOCH``, else the date of the
last git commit that touched ``ontology/`` or ``data/``), never from the clock.

The description counts: ``void:triples`` is the number of triples in ``emkg.ttl`` (description
included: the count is computed after the description is built, whose size does not depend on
the number written). The other counts describe the ontology and data, not the description's own
bookkeeping: ``void:entities`` the distinct subjects under ``<base>id/`` (``void:uriSpace``),
``void:classes`` the distinct ``rdf:type`` objects, each with a ``void:classPartition``
(``<base>dataset/class/<prefix>-<name>``) giving its instance count, ``void:properties`` the
distinct predicates. The dataset is ``<base>dataset``; each dump is a ``dcat:Distribution`` whose
IRI is its download address (``<base>emkg.ttl`` ...).
"""

from __future__ import annotations

import bisect
import datetime as _dt
import functools
import hashlib
import itertools
import json
import logging
import os
import threading
import re
import subprocess
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyoxigraph as ox

from .fmt import format_graph, format_turtle, ground_blocks, join_blocks
from .forked import ChildDied, Forked
from .project import Project

log = logging.getLogger(__name__)

RDF = "http://www.w3.org/1999/02/22-rdf-syntax-ns#"
RDFS = "http://www.w3.org/2000/01/rdf-schema#"
XSD = "http://www.w3.org/2001/XMLSchema#"
OWL = "http://www.w3.org/2002/07/owl#"
SKOS = "http://www.w3.org/2004/02/skos/core#"
DCTERMS = "http://purl.org/dc/terms/"
FOAF = "http://xmlns.com/foaf/0.1/"
PROV = "http://www.w3.org/ns/prov#"
DCAT = "http://www.w3.org/ns/dcat#"
VOID = "http://rdfs.org/ns/void#"
SPDX = "http://spdx.org/rdf/terms#"
SCHEMA = "https://schema.org/"
RDF_TYPE = RDF + "type"
XSD_STRING = XSD + "string"

OGL = "http://www.nationalarchives.gov.uk/doc/open-government-licence/version/3/"
ENDPOINT_ENV = "EMKG_ENDPOINT"
TITLE = "East Midlands children's services knowledge graph"
DESCRIPTION = (
    "Linked data about children's services in the East Midlands region of England: the region's "
    "counties and local authorities, their partner organisations, groups and networks, and the "
    "regional updates of 2016 to 2023 with their programmes, events, publications, people and "
    "stated quantities. Every fact is traced to a section of a seed document."
)
PUBLISHER_NAME = "The emkg project"
KEYWORDS = ("children's services", "East Midlands", "local authorities", "regional improvement")
IANA = "https://www.iana.org/assignments/media-types/"

# Prefixes the description uses; added only when the sources do not declare them.
DESCRIPTION_PREFIXES = {
    "dcat": DCAT, "dcterms": DCTERMS, "foaf": FOAF, "rdf": RDF, "rdfs": RDFS, "spdx": SPDX,
    "void": VOID, "xsd": XSD,
}

NT = ox.NamedNode
Term = ox.NamedNode | ox.BlankNode | ox.Literal


# --- dates -------------------------------------------------------------------------------------------

def source_date(project: Project) -> str | None:
    """The date of the sources as an ISO 8601 date-time, never the clock.

    ``SOURCE_DATE_EPOCH`` (seconds, UTC) wins; otherwise the committer date of the last git commit
    that touched ``ontology/`` or ``data/`` (``git log -1 --format=%cI``); ``None`` outside git.
    """
    epoch = os.environ.get("SOURCE_DATE_EPOCH", "").strip()
    if epoch:
        try:
            stamp = _dt.datetime.fromtimestamp(int(epoch), tz=_dt.timezone.utc)
        except (ValueError, OverflowError, OSError):
            log.warning("ignoring SOURCE_DATE_EPOCH=%r: not a number of seconds", epoch)
        else:
            return stamp.isoformat(timespec="seconds").replace("+00:00", "Z")
    paths = [p for p in (project.ontology_dir, project.data_dir) if p.exists()]
    try:
        done = subprocess.run(
            ["git", "-C", str(project.root), "log", "-1", "--format=%cI", "--", *map(str, paths)],
            capture_output=True, text=True, timeout=30, check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    text = done.stdout.strip()
    if done.returncode != 0 or not text:
        return None
    try:
        _dt.datetime.fromisoformat(text)
    except ValueError:
        return None
    return text


# --- prefixes and term text --------------------------------------------------------------------------

_PN_PREFIX = re.compile(r"^(?:[A-Za-z][A-Za-z0-9_\-]*)?$")
_PN_LOCAL = re.compile(r"^(?:[A-Za-z0-9_](?:[A-Za-z0-9_\-.]*[A-Za-z0-9_\-])?)?$")
_INTEGER = re.compile(r"^[+-]?[0-9]+$")


class Prefixes:
    """A prefix map that compacts IRIs to ``prefix:local`` only where the result is valid Turtle."""

    def __init__(self, mapping: Mapping[str, str]) -> None:
        self.mapping = {k: v for k, v in sorted(mapping.items()) if _PN_PREFIX.match(k) and v}
        by_ns: dict[str, str] = {}
        for prefix, ns in self.mapping.items():  # sorted: the alphabetically first prefix wins
            by_ns.setdefault(ns, prefix)
        self._by_ns = by_ns
        self._longest = sorted(by_ns, key=len, reverse=True)
        self._cache: dict[str, str | None] = {}

    def curie(self, iri: str) -> str | None:
        """``prefix:local`` for an IRI, or None when no declared prefix gives a valid name."""
        try:
            return self._cache[iri]
        except KeyError:
            pass
        found = None
        cut = max(iri.rfind("/"), iri.rfind("#")) + 1
        ns = iri[:cut]
        if ns in self._by_ns and _PN_LOCAL.match(iri[cut:]):
            found = f"{self._by_ns[ns]}:{iri[cut:]}"
        else:
            for ns in self._longest:
                if iri.startswith(ns) and _PN_LOCAL.match(iri[len(ns):]):
                    found = f"{self._by_ns[ns]}:{iri[len(ns):]}"
                    break
        if len(self._cache) < 2_000_000:
            self._cache[iri] = found
        return found

    def used(self, curies: Iterable[str]) -> dict[str, str]:
        names = {c.split(":", 1)[0] for c in curies}
        return {k: v for k, v in self.mapping.items() if k in names}


def nt(term: Term) -> str:
    """A term as N-Triples text (pyoxigraph escapes it)."""
    return str(term)


def _quoted(value: str) -> str:
    return str(ox.Literal(value))


def turtle_term(term: Term, prefixes: Prefixes) -> str:
    """A term as compact Turtle text: CURIEs, ``a``-free (the caller writes ``a``), short literals."""
    if isinstance(term, ox.NamedNode):
        return prefixes.curie(term.value) or f"<{_iri_text(term.value)}>"
    if isinstance(term, ox.BlankNode):
        return f"_:{term.value}"
    if term.language:
        return f"{_quoted(term.value)}@{term.language}"
    datatype = term.datatype.value
    if datatype == XSD_STRING:
        return _quoted(term.value)
    if datatype == XSD + "integer" and _INTEGER.match(term.value):
        return term.value
    if datatype == XSD + "boolean" and term.value in ("true", "false"):
        return term.value
    return f"{_quoted(term.value)}^^{turtle_term(term.datatype, prefixes)}"


def _iri_text(iri: str) -> str:
    return nt(NT(iri))[1:-1]


# --- the Turtle writer -------------------------------------------------------------------------------

SubjectMap = dict[Term, dict[str, list[Term]]]


def group_triples(triples: Iterable[ox.Triple | ox.Quad]) -> SubjectMap:
    """subject → predicate IRI → objects, for the writers."""
    grouped: SubjectMap = {}
    for t in triples:
        grouped.setdefault(t.subject, {}).setdefault(t.predicate.value, []).append(t.object)
    return grouped


def _subject_order(grouped: SubjectMap) -> list[Term]:
    return sorted(grouped, key=lambda s: (isinstance(s, ox.BlankNode), nt(s)))


def _predicate_order(preds: Iterable[str]) -> list[str]:
    return sorted(preds, key=lambda p: (p != RDF_TYPE, p))


class TurtleWriter:
    """Deterministic Turtle: sorted subjects, ``rdf:type`` first then predicates by IRI, objects
    sorted, four-space indents. Blank nodes used once as an object are written inline (``[ ]``)."""

    def __init__(self, prefixes: Prefixes) -> None:
        self.prefixes = prefixes
        self._texts: dict[Term, str] = {}  # turtle_term per term (the same terms recur throughout)

    def _text(self, term: Term) -> str:
        text = self._texts.get(term)
        if text is None:
            text = self._texts[term] = turtle_term(term, self.prefixes)
        return text

    def header(self, comment: Sequence[str] = (), used: Mapping[str, str] | None = None) -> str:
        lines = [f"# {c}" for c in comment]
        for prefix, ns in (used if used is not None else self.prefixes.mapping).items():
            lines.append(f"@prefix {prefix}: <{_iri_text(ns)}> .")
        return "\n".join(lines) + "\n" if lines else ""

    def blocks(self, grouped: SubjectMap, indent: str = "") -> Iterable[str]:
        """One text block per top-level subject (each ends with ' .\\n')."""
        refs: dict[ox.BlankNode, int] = defaultdict(int)
        for pmap in grouped.values():
            for objs in pmap.values():
                for o in objs:
                    if isinstance(o, ox.BlankNode):
                        refs[o] += 1
        inline = {b for b, n in refs.items() if n == 1 and b in grouped}
        self._grouped, self._inline = grouped, inline
        for subject in _subject_order(grouped):
            if subject in inline:
                continue
            yield self._block(subject, indent)

    def _block(self, subject: Term, indent: str) -> str:
        head = turtle_term(subject, self.prefixes)
        body = self._pairs(subject, indent + "    ", set())
        return f"{indent}{head} {body} .\n"

    def _pairs(self, subject: Term, indent: str, seen: set) -> str:
        pmap = self._grouped.get(subject, {})
        parts = []
        for pred in _predicate_order(pmap):
            ptext = "a" if pred == RDF_TYPE else self._text(NT(pred))
            objs = sorted(set(pmap[pred]), key=nt)
            texts = [self._object(o, indent, seen) for o in objs]
            joined = " , ".join(texts)
            if len(texts) > 1 and (len(joined) + len(ptext) + len(indent) > 100 or "\n" in joined):
                joined = f" ,\n{indent}    ".join(texts)
            parts.append(f"{ptext} {joined}")
        return f" ;\n{indent}".join(parts)

    def _object(self, obj: Term, indent: str, seen: set) -> str:
        if isinstance(obj, ox.BlankNode) and obj in self._inline and obj not in seen:
            seen.add(obj)
            inner = self._pairs(obj, indent + "    ", seen)
            return f"[\n{indent}    {inner}\n{indent}]"
        return self._text(obj)


def write_turtle(triples: Iterable[ox.Triple | ox.Quad], prefixes: Prefixes, comment: Sequence[str] = (),
                 only_used_prefixes: bool = False) -> str:
    grouped = group_triples(triples)
    used = used_prefixes(grouped, prefixes) if only_used_prefixes else None
    return turtle_text(grouped, TurtleWriter(prefixes), comment, used)


def turtle_text(grouped: SubjectMap, writer: TurtleWriter, comment: Sequence[str] = (),
                used: Mapping[str, str] | None = None) -> str:
    """Turtle for triples already grouped by subject, declaring the prefixes ``used`` (all if None).
    A writer may serve many calls (the site's pages): it remembers each term's text."""
    blocks = list(writer.blocks(grouped))
    head = writer.header(comment, used)
    return head + ("\n" if head else "") + "\n".join(blocks)


def used_prefixes(grouped: SubjectMap, prefixes: Prefixes) -> dict[str, str]:
    """The declared prefixes the CURIEs of these triples need."""
    curies = []

    def add(term):
        if isinstance(term, ox.NamedNode):
            c = prefixes.curie(term.value)
            if c:
                curies.append(c)
        elif isinstance(term, ox.Literal) and not term.language:
            add(term.datatype)

    for s, pmap in grouped.items():
        add(s)
        for p, objs in pmap.items():
            if p != RDF_TYPE:
                add(NT(p))
            for o in objs:
                add(o)
    return prefixes.used(curies)


def ntriples_lines(quads: Sequence[ox.Quad | ox.Triple]) -> list[str]:
    """The N-Triples line of each triple (pyoxigraph's serializer), in the given order."""
    data = ox.serialize((ox.Triple(q.subject, q.predicate, q.object) for q in quads), format=ox.RdfFormat.N_TRIPLES)
    text = data.decode("utf-8") if data else ""
    return text.split("\n")[:-1] if text else []


def write_ntriples(triples: Iterable[ox.Triple | ox.Quad]) -> str:
    lines = sorted({f"{nt(t.subject)} {nt(t.predicate)} {nt(t.object)} ." for t in triples})
    return "\n".join(lines) + ("\n" if lines else "")


def write_trig(graphs: Mapping[str, Sequence[ox.Triple | ox.Quad]], prefixes: Prefixes, comment: Sequence[str] = ()) -> str:
    writer = TurtleWriter(prefixes)
    out = [writer.header(comment)]
    for name in sorted(graphs):
        grouped = group_triples(graphs[name])
        if not grouped:
            continue
        gname = turtle_term(NT(name), prefixes)
        out.append(f"\n{gname} {{\n" + "\n".join(writer.blocks(grouped, indent="    ")) + "}\n")
    return "".join(out)


# --- JSON-LD -----------------------------------------------------------------------------------------

def jsonld_context(prefixes: Prefixes) -> dict[str, str]:
    """The inline context: every declared prefix (JSON-LD needs no network to expand them)."""
    return {k: v for k, v in prefixes.mapping.items() if k and not k.startswith("_") and v[-1:] in "/#:?[]@"}


def _jsonld_iri(iri: str, prefixes: Prefixes, context: Mapping[str, str]) -> str:
    curie = prefixes.curie(iri)
    if curie:
        prefix, local = curie.split(":", 1)
        if prefix in context and local and not local.startswith("//"):
            return curie
    return iri


def jsonld_value(term: Term, prefixes: Prefixes, context: Mapping[str, str]) -> dict[str, str]:
    if isinstance(term, ox.NamedNode):
        return {"@id": _jsonld_iri(term.value, prefixes, context)}
    if isinstance(term, ox.BlankNode):
        return {"@id": f"_:{term.value}"}
    if term.language:
        return {"@value": term.value, "@language": term.language}
    if term.datatype.value == XSD_STRING:
        return {"@value": term.value}
    return {"@value": term.value, "@type": _jsonld_iri(term.datatype.value, prefixes, context)}


def jsonld_nodes(grouped: SubjectMap, prefixes: Prefixes, context: Mapping[str, str]) -> list[dict]:
    nodes = []
    for subject in _subject_order(grouped):
        pmap = grouped[subject]
        node: dict = {"@id": jsonld_value(subject, prefixes, context)["@id"]}
        types = sorted(set(pmap.get(RDF_TYPE, [])), key=nt)
        if types and all(isinstance(t, ox.NamedNode) for t in types):
            node["@type"] = [_jsonld_iri(t.value, prefixes, context) for t in types]
        for pred in _predicate_order(pmap):
            if pred == RDF_TYPE and "@type" in node:
                continue
            key = _jsonld_iri(pred, prefixes, context)
            node[key] = [jsonld_value(o, prefixes, context) for o in sorted(set(pmap[pred]), key=nt)]
        nodes.append(node)
    return nodes


def write_jsonld(triples: Iterable[ox.Triple | ox.Quad], prefixes: Prefixes, only_used_prefixes: bool = False) -> str:
    grouped = group_triples(triples)
    return jsonld_text(grouped, prefixes, used_prefixes(grouped, prefixes) if only_used_prefixes else None)


def jsonld_text(grouped: SubjectMap, prefixes: Prefixes, used: Mapping[str, str] | None = None) -> str:
    """JSON-LD for triples already grouped by subject; the context holds the prefixes ``used`` (all if None)."""
    context = jsonld_context(prefixes)
    if used is not None:
        context = {k: v for k, v in context.items() if k in used}
    doc = {"@context": context, "@graph": jsonld_nodes(grouped, prefixes, context)}
    return _json_lines(doc)


@functools.lru_cache(maxsize=1024)
def _context_text(items: tuple[tuple[str, str], ...]) -> str:
    """The indented ``@context`` (the site's pages share a few)."""
    return json.dumps(dict(items), ensure_ascii=False, indent=2).replace("\n", "\n  ")


def _json_lines(doc: dict) -> str:
    """JSON with one node per line inside @graph: diff-friendly and still fast for big graphs."""
    return _json_document(doc["@context"], [_node_line(n) for n in doc["@graph"]])


def _node_line(node: dict) -> str:
    """One node of ``@graph`` as its line of the JSON-LD text."""
    return "  " + json.dumps(node, ensure_ascii=False, separators=(", ", ": "))


def _json_document(context: Mapping[str, str], node_lines: Iterable[str]) -> str:
    nodes = ",\n".join(node_lines)
    return ('{\n  "@context": ' + _context_text(tuple(context.items())) + ',\n  "@graph": [\n' + nodes
            + ("\n" if nodes else "") + "  ]\n}\n")


# --- the dataset description -------------------------------------------------------------------------

@dataclass(frozen=True)
class DumpFormat:
    name: str
    title: str
    media_type: str
    format_iri: str


FORMATS = (
    DumpFormat("emkg.ttl", "The whole graph in Turtle", "text/turtle", "http://www.w3.org/ns/formats/Turtle"),
    DumpFormat("emkg.nt", "The whole graph in N-Triples", "application/n-triples", "http://www.w3.org/ns/formats/N-Triples"),
    DumpFormat("emkg.jsonld", "The whole graph in JSON-LD (inline context)", "application/ld+json", "http://www.w3.org/ns/formats/JSON-LD"),
    DumpFormat("emkg.trig", "The whole graph in TriG, one named graph per source document", "application/trig", "http://www.w3.org/ns/formats/TriG"),
)
VOID_FILE = "void.ttl"


@dataclass
class Dump:
    """A written file: its name in the output folder, size and SHA-256."""

    name: str
    title: str
    media_type: str
    size: int
    sha256: str
    triples: int


@dataclass
class Description:
    """The VoID/DCAT description of the graph (without sizes and checksums) and the counts."""

    triples: list[ox.Triple]
    dataset: str
    total_triples: int
    entities: int
    classes: int
    properties: int
    class_counts: list[tuple[str, int]]
    examples: list[str]
    date: str | None
    endpoint: str | None
    prefixes: dict[str, str] = field(default_factory=dict)
    # the store's own triples as described: write_dumps adds the description to them (and drops them)
    store_graph: GroundGraph | None = field(default=None, repr=False, compare=False)


def dataset_iri(project: Project) -> str:
    return project.base_iri + "dataset"


def graph_iri(project: Project, name: str) -> str:
    return project.base_iri + "graph/" + name


def _class_slug(iri: str, prefixes: Prefixes) -> str:
    curie = prefixes.curie(iri)
    text = curie.replace(":", "-") if curie else iri.rstrip("/#").rsplit("/", 1)[-1].rsplit("#", 1)[-1]
    slug = re.sub(r"[^A-Za-z0-9_-]+", "-", text).strip("-") or "class"
    if not curie:
        slug += "-" + hashlib.sha256(iri.encode()).hexdigest()[:8]
    return slug


def all_prefixes(graph_prefixes: Mapping[str, str]) -> dict[str, str]:
    merged = dict(graph_prefixes)
    for k, v in DESCRIPTION_PREFIXES.items():
        if k not in merged and v not in merged.values():
            merged[k] = v
    return merged


def describe(project: Project, store: ox.Store, graph_prefixes: Mapping[str, str], *,
             date: str | None = None, endpoint: str | None = None) -> Description:
    """The description triples of the dataset in ``store`` (the default graph: ontology + data)."""
    prefixes = Prefixes(all_prefixes(graph_prefixes))
    ds = NT(dataset_iri(project))
    base = project.base_iri
    id_space = project.id_base
    ground = ground_graph(store)
    counts = _counts(store, id_space) if ground is None else _ground_counts(ground, id_space)
    lit = ox.Literal
    en = lambda text: lit(text, language="en")  # noqa: E731
    integer = lambda n: lit(str(n), datatype=NT(XSD + "integer"))  # noqa: E731
    t: list[ox.Triple] = []

    def add(s, p, o):
        t.append(ox.Triple(NT(s) if isinstance(s, str) else s, NT(p), o))

    add(ds, RDF_TYPE, NT(VOID + "Dataset"))
    add(ds, RDF_TYPE, NT(DCAT + "Dataset"))
    add(ds, DCTERMS + "title", en(TITLE))
    add(ds, RDFS + "label", en(TITLE))
    add(ds, DCTERMS + "description", en(DESCRIPTION))
    publisher = NT(base + "dataset/publisher")
    add(ds, DCTERMS + "publisher", publisher)
    add(publisher, RDF_TYPE, NT(FOAF + "Organization"))
    add(publisher, FOAF + "name", en(PUBLISHER_NAME))
    add(publisher, RDFS + "label", en(PUBLISHER_NAME))
    add(publisher, FOAF + "homepage", NT(base))
    add(ds, DCTERMS + "license", NT(OGL))
    add(ds, FOAF + "homepage", NT(base))
    add(ds, DCAT + "landingPage", NT(base))
    for keyword in KEYWORDS:
        add(ds, DCAT + "keyword", en(keyword))
    if date:
        add(ds, DCTERMS + "modified", lit(date, datatype=NT(XSD + ("dateTime" if "T" in date else "date"))))
    add(ds, VOID + "uriSpace", lit(id_space))
    add(ds, VOID + "vocabulary", NT(project.ontology_iri))
    add(ds, VOID + "feature", NT("http://www.w3.org/ns/formats/Turtle"))
    for doc in _instances(store, base + "def/SourceDocument"):
        add(ds, DCTERMS + "source", NT(doc))
    add(ds, VOID + "entities", integer(counts.entities))
    add(ds, VOID + "classes", integer(len(counts.classes)))
    add(ds, VOID + "properties", integer(counts.properties))
    add(ds, VOID + "distinctSubjects", integer(counts.subjects))
    class_counts = sorted(counts.classes.items(), key=lambda x: (-x[1], x[0]))
    for cls, count in sorted(class_counts):
        part = NT(f"{base}dataset/class/{_class_slug(cls, prefixes)}")
        add(ds, VOID + "classPartition", part)
        add(part, RDF_TYPE, NT(VOID + "Dataset"))
        add(part, VOID + "class", NT(cls))
        add(part, VOID + "entities", integer(count))
        label = _label_in(store, cls) or (prefixes.curie(cls) or cls)
        add(part, RDFS + "label", en(f"Instances of {label}"))
    examples = _examples(class_counts, store, project)
    for example in examples:
        add(ds, VOID + "exampleResource", NT(example))
    if endpoint:
        add(ds, VOID + "sparqlEndpoint", NT(endpoint))
    for fmt in FORMATS:
        dist = NT(base + fmt.name)
        add(ds, DCAT + "distribution", dist)
        add(ds, VOID + "dataDump", dist)
        add(dist, RDF_TYPE, NT(DCAT + "Distribution"))
        add(dist, DCTERMS + "title", en(fmt.title))
        add(dist, RDFS + "label", en(fmt.title))
        add(dist, DCAT + "downloadURL", dist)
        add(dist, DCAT + "mediaType", NT(IANA + fmt.media_type))
        add(dist, DCTERMS + "format", NT(fmt.format_iri))
        add(dist, DCTERMS + "license", NT(OGL))
    # void:triples counts the whole dump, this description included: the description's size does
    # not depend on the number written, so count first and add the one triple that states it.
    unique = set(t)
    new = sum(1 for x in unique if ox.Quad(x.subject, x.predicate, x.object, ox.DefaultGraph()) not in store)
    total = counts.triples + new + 1
    add(ds, VOID + "triples", integer(total))
    return Description(
        triples=sorted(set(t), key=lambda x: (nt(x.subject), nt(x.predicate), nt(x.object))),
        dataset=ds.value, total_triples=total, entities=counts.entities, classes=len(counts.classes),
        properties=counts.properties, class_counts=class_counts, examples=examples,
        date=date, endpoint=endpoint, prefixes=prefixes.mapping, store_graph=ground,
    )


def _label_in(store: ox.Store, iri: str) -> str | None:
    labels = sorted(
        q.object.value for q in store.quads_for_pattern(NT(iri), NT(RDFS + "label"), None, ox.DefaultGraph())
        if isinstance(q.object, ox.Literal)
    )
    return labels[0] if labels else None


@dataclass(frozen=True)
class _Counts:
    triples: int
    subjects: int
    entities: int  # IRI subjects in the id space
    properties: int
    classes: dict[str, int]  # class IRI -> distinct instances


def _one_number(store: ox.Store, query: str) -> int:
    for row in store.query(query):
        return int(row[0].value)
    return 0


def _counts(store: ox.Store, id_space: str) -> _Counts:
    """The dataset's statistics, counted by the store (the default graph)."""
    space = id_space.replace("\\", "\\\\").replace('"', '\\"')
    classes = {row[0].value: int(row[1].value) for row in store.query(
        "SELECT ?c (COUNT(DISTINCT ?s) AS ?n) WHERE { ?s a ?c FILTER(isIRI(?c)) } GROUP BY ?c")}
    return _Counts(
        triples=len(store),
        subjects=_one_number(store, "SELECT (COUNT(DISTINCT ?s) AS ?n) WHERE { ?s ?p ?o }"),
        entities=_one_number(store, "SELECT (COUNT(DISTINCT ?s) AS ?n) WHERE { ?s ?p ?o "
                                    f'FILTER(isIRI(?s) && STRSTARTS(STR(?s), "{space}")) }}'),
        properties=_one_number(store, "SELECT (COUNT(DISTINCT ?p) AS ?n) WHERE { ?s ?p ?o }"),
        classes=classes,
    )


_RDF_TYPE_NT = f"<{RDF_TYPE}>".encode()


def _ground_counts(ground: GroundGraph, id_space: str) -> _Counts:
    """``_counts`` from the lines of a graph without blank nodes (no SPARQL aggregates: faster)."""
    space = "<" + id_space
    predicates: set[bytes] = set()
    classes: Counter[bytes] = Counter()
    for _s, p, o in (line.split(b" ", 2) for line in ground.lines):
        predicates.add(p)
        if p == _RDF_TYPE_NT and o[:1] == b"<" and o[1:2] != b"<":  # an IRI class (not a triple term)
            classes[o] += 1  # each (subject, class) line is distinct: a distinct instance
    return _Counts(
        triples=len(ground.lines),
        subjects=len(ground.subjects),
        entities=sum(1 for s in ground.subjects if s.startswith(space)),
        properties=len(predicates),
        classes={o[1:-3].decode("utf-8"): n for o, n in classes.items()},
    )


def _instances(store: ox.Store, cls: str) -> list[str]:
    """The IRIs of the instances of ``cls``, sorted."""
    return sorted(q.subject.value for q in store.quads_for_pattern(None, NT(RDF_TYPE), NT(cls), ox.DefaultGraph())
                  if isinstance(q.subject, ox.NamedNode))


def _examples(class_counts: list[tuple[str, int]], store: ox.Store, project: Project) -> list[str]:
    """Up to five example resources: the first instance (by IRI) of the most populous data classes."""
    out: list[str] = []
    for cls, _count in class_counts:
        if not cls.startswith(project.ontology_iri):
            continue
        members = [m for m in _instances(store, cls) if m.startswith(project.id_base)]
        if members and members[0] not in out:
            out.append(members[0])
        if len(out) == 5:
            break
    return out


# --- named graphs (TriG) -----------------------------------------------------------------------------

def _document_graph(project: Project, value: str) -> str:
    """The named graph of a source document (its IRI, or a blank node's N-Triples text)."""
    local = value[len(project.base_iri):] if value.startswith(project.base_iri) else hashlib.sha256(value.encode()).hexdigest()[:16]
    return graph_iri(project, local)


def assign_graphs(project: Project, quads: Sequence[ox.Quad | ox.Triple], ontology_subjects: set[str],
                  description_subjects: set[str]) -> dict[Term, str]:
    """subject → named graph IRI, by the rule in the module docstring."""
    source_doc = project.base_iri + "def/SourceDocument"
    source_section = project.base_iri + "def/SourceSection"
    part_of = DCTERMS + "isPartOf"
    derived = PROV + "wasDerivedFrom"
    docs: set[Term] = set()
    sections: set[Term] = set()
    doc_of: dict[Term, Term] = {}
    derived_from: dict[Term, list[Term]] = defaultdict(list)
    subjects: list[Term] = []
    seen: set[Term] = set()
    referrer: dict[ox.BlankNode, Term] = {}
    for q in quads:
        s, p, o = q.subject, q.predicate.value, q.object
        if s not in seen:
            seen.add(s)
            subjects.append(s)
        if p == RDF_TYPE and isinstance(o, ox.NamedNode):
            if o.value == source_doc:
                docs.add(s)
            elif o.value == source_section:
                sections.add(s)
        elif p == part_of:
            doc_of.setdefault(s, o) if isinstance(o, ox.NamedNode) else None
        elif p == derived:
            derived_from[s].append(o)
        if isinstance(o, ox.BlankNode) and o not in referrer:
            referrer[o] = s

    def doc_graph(doc: Term) -> str:
        return _document_graph(project, doc.value if isinstance(doc, ox.NamedNode) else nt(doc))

    def docs_of(target: Term) -> set[Term]:
        if target in docs:
            return {target}
        if target in sections and target in doc_of:
            return {doc_of[target]}
        return set()

    result: dict[Term, str] = {}
    for s in subjects:
        if isinstance(s, ox.BlankNode):
            continue
        key = s.value
        if key in description_subjects:
            result[s] = graph_iri(project, "dataset")
        elif key in ontology_subjects:
            result[s] = graph_iri(project, "ontology")
        elif s in docs:
            result[s] = doc_graph(s)
        elif s in sections and s in doc_of:
            result[s] = doc_graph(doc_of[s])
        else:
            found: set[Term] = set()
            for target in derived_from.get(s, []):
                found |= docs_of(target)
            if len(found) == 1:
                result[s] = doc_graph(next(iter(found)))
            elif found:
                result[s] = graph_iri(project, "multi-source")
            else:
                result[s] = graph_iri(project, "unsourced")
    for s in subjects:  # blank nodes: the graph of the subject that refers to them
        if isinstance(s, ox.BlankNode):
            current, hops = s, 0
            while isinstance(current, ox.BlankNode) and current in referrer and hops < 1000:
                current, hops = referrer[current], hops + 1
            result[s] = result.get(current, graph_iri(project, "unsourced"))
    return result


def ontology_subjects(project: Project, graph) -> set[str]:
    """IRIs of the subjects written in ``ontology/`` files (the loader's index, already rebased)."""
    folder = project.ontology_dir.resolve()
    out: set[str] = set()
    for parsed in graph.files:
        try:
            parsed.path.resolve().relative_to(folder)
        except ValueError:
            continue
        out.update(parsed.ensure_index().subjects)
    return out


# --- canonical blank nodes ---------------------------------------------------------------------------

def canonical_quads(quads: list[ox.Quad]) -> list[ox.Quad]:
    """The same quads with blank nodes relabelled by RDFC-1.0 (unchanged when there are none)."""
    if not any(isinstance(q.subject, ox.BlankNode) or isinstance(q.object, ox.BlankNode) for q in quads):
        return quads
    dataset = ox.Dataset(ox.Quad(q.subject, q.predicate, q.object, ox.DefaultGraph()) for q in quads)
    dataset.canonicalize(ox.CanonicalizationAlgorithm.RDFC_1_0)
    return list(dataset)


# --- writing -----------------------------------------------------------------------------------------

def _write_file(path: Path, text: str | bytes) -> tuple[int, str]:
    data = text.encode("utf-8") if isinstance(text, str) else text
    tmp = path.with_name(path.name + ".part")
    tmp.write_bytes(data)
    os.replace(tmp, path)
    return len(data), hashlib.sha256(data).hexdigest()


def _comment(description: Description, fmt_name: str) -> list[str]:
    lines = [f"{TITLE}: {fmt_name}", f"{description.total_triples} triples. Licence: Open Government Licence v3.0 <{OGL}>"]
    if description.date:
        lines.append(f"Sources as of {description.date}")
    return lines


def write_dumps(project: Project, graph, out_dir: Path, *, description: Description | None = None,
                date: str | None = None, endpoint: str | None = None,
                progress: Callable[[str], None] | None = None, parallel: bool = True,
                on_lines: Callable[[list[bytes]], None] | None = None,
                statements: Callable[[str], Mapping[str, list[Term]]] | None = None) -> list[Dump]:
    """Write ``emkg.{ttl,nt,jsonld,trig}`` and ``void.ttl`` into ``out_dir``; return what was written.

    ``graph`` is a :class:`~emkg.load.LoadedGraph` (ontology + data in its store's default graph).
    ``description`` (from :func:`describe`) is computed when not given. ``parallel``: write the
    JSON-LD and TriG dumps in a forked process while this one writes Turtle and N-Triples (the
    same bytes either way; serial where ``fork`` is not available).

    A graph without blank nodes (the sources have none) is written from per-subject pieces: each
    subject's Turtle block, JSON-LD node and TriG block depend on its own triples and the prefixes
    alone, so they are kept in the work cache (``.cache/dumps/``) under a hash of the subject's
    N-Triples lines and only the subjects an edit changed are formatted again. The files are the
    bytes the whole-graph writers give (``tests/test_dumps.py`` checks both ways agree). Then
    ``on_lines`` is given those lines (sorted, distinct N-Triples lines of the store and the
    description), for the build record not to dump the store again. ``statements`` (a subject
    IRI -> its predicates and objects, the store and description's) saves parsing the lines again
    where the caller holds them (a subject whose count differs is parsed from its lines).
    """
    say = progress or (lambda _msg: None)
    if description is None:
        description = describe(project, graph.store, graph.prefixes, date=date, endpoint=endpoint)
    prefixes = Prefixes(description.prefixes)
    own, description.store_graph = description.store_graph, None  # used once: not kept for the site's long phase
    if own is not None and len(own.lines) == len(graph.store):  # the store as described: add the description
        ground = own.plus(line.encode("utf-8") for line in ntriples_lines(description.triples))
    else:
        ground = ground_graph(graph.store, description.triples)
    quads: list[ox.Quad] = []
    if ground is None:  # blank nodes: the whole-graph writers (labels depend on the whole graph)
        quads = list(graph.store.quads_for_pattern(None, None, None, ox.DefaultGraph()))  # already default-graph quads
        quads += [ox.Quad(t.subject, t.predicate, t.object, ox.DefaultGraph()) for t in description.triples]
        # by the N-Triples text of subject, predicate, object: a quad's own text (all in the default
        # graph) sorts the same, the separating space sorting before any character of an IRI or label
        quads = canonical_quads(sorted(set(quads), key=str))
        count = len(quads)
    else:
        count = len(ground.lines)
        if on_lines is not None:
            on_lines(ground.lines)
    if count != description.total_triples:
        log.debug("description says %d triples, writing %d", description.total_triples, count)
    out_dir.mkdir(parents=True, exist_ok=True)
    job = _DumpJob(project, graph, out_dir, description, prefixes, quads, ground, statements=statements)
    by_name = {f.name: f for f in FORMATS}
    written: dict[str, tuple[int, str]] = {}
    second = ("emkg.jsonld", "emkg.trig")
    # a second process pays when there is much to format: a whole graph, or many changed subjects
    work = count if ground is None else job.lines_to_format("emkg.ttl")
    child = _start_in_child(job, second) if parallel and work >= PARALLEL_DUMPS_THRESHOLD else None
    try:
        for name in ("emkg.ttl", "emkg.nt", *(second if child is None else ())):
            say(f"writing {name}")
            written[name] = job.write(name)
    except BaseException:
        if child is not None:
            child.stop()
        raise
    if child is not None:
        for name in second:
            say(f"writing {name}")
        written.update(_finish_child(child, job, second))
    dumps = [Dump(name, by_name[name].title, by_name[name].media_type, *written[name], count)
             for name in ("emkg.ttl", "emkg.nt", "emkg.jsonld", "emkg.trig")]
    say("writing void.ttl")
    void_text = write_turtle(void_triples(description, dumps, project), prefixes,
                             _comment(description, "void.ttl (the dataset description with the dumps' sizes and SHA-256)"),
                             only_used_prefixes=True)
    size, digest = _write_file(out_dir / VOID_FILE, format_turtle(void_text, VOID_FILE))
    dumps.append(Dump(VOID_FILE, "The dataset description (VoID and DCAT) with sizes and checksums", "text/turtle", size, digest, 0))
    return dumps


PARALLEL_DUMPS_THRESHOLD = 20_000  # quads: below this a second process costs more than it saves


# --- per-subject pieces ----------------------------------------------------------------------------

@dataclass
class GroundGraph:
    """A graph without blank nodes as its sorted, distinct N-Triples lines (UTF-8; byte order is
    code point order), grouped by subject: ``subjects[i]`` (N-Triples text) has the lines
    ``lines[starts[i]:starts[i + 1]]``, whose hash is ``digests[i]``; ``data`` is the N-Triples file."""

    lines: list[bytes]
    subjects: list[str]
    starts: list[int]  # one more than subjects: the end of the last group
    digests: list[bytes]
    data: bytes

    def lines_of(self, index: int) -> list[bytes]:
        return self.lines[self.starts[index]:self.starts[index + 1]]

    def plus(self, extra: Iterable[bytes]) -> GroundGraph | None:
        """This graph with the N-Triples lines ``extra`` added (None if one has a blank node): the
        groups they do not touch are copied, with their hashes, not grouped and hashed again."""
        groups: dict[str, set[bytes]] = {}
        for line in extra:
            subject, _p, o = line.split(b" ", 2)
            if subject[:1] != b"<" or subject[1:2] == b"<" or o[:1] == b"_" or (o.startswith(b"<<(") and b"_:" in o):
                return None
            groups.setdefault(subject.decode("utf-8"), set()).add(line)
        if not groups:
            return self
        lines: list[bytes] = []
        subjects: list[str] = []
        starts: list[int] = []
        digests: list[bytes] = []
        done = 0  # the subjects of this graph copied so far

        def copy(upto: int) -> None:
            nonlocal done
            if upto > done:
                offset = len(lines) - self.starts[done]
                starts.extend(start + offset for start in self.starts[done:upto])
                lines.extend(self.lines[self.starts[done]:self.starts[upto]])
                subjects.extend(self.subjects[done:upto])
                digests.extend(self.digests[done:upto])
                done = upto

        for subject in sorted(groups):
            at = bisect.bisect_left(self.subjects, subject, done)
            copy(at)
            own = groups[subject]
            if at < len(self.subjects) and self.subjects[at] == subject:
                own.update(self.lines_of(at))
                done = at + 1
            group = sorted(own)
            starts.append(len(lines))
            lines.extend(group)
            subjects.append(subject)
            digests.append(_group_digest(b"\n".join(group) + b"\n"))
        copy(len(self.subjects))
        starts.append(len(lines))
        return GroundGraph(lines, subjects, starts, digests, b"\n".join(lines) + b"\n")


def _group_digest(data: bytes | memoryview) -> bytes:
    """The hash of a subject's lines (each ending with a newline): its pieces' key in the cache."""
    return hashlib.blake2b(data, digest_size=16).digest()


def ground_graph(store: ox.Store, extra: Sequence[ox.Triple] = ()) -> GroundGraph | None:
    """The default graph of ``store`` plus ``extra`` as a :class:`GroundGraph`; None when it has a
    blank node (or a triple term as subject), which the per-subject pieces do not cover."""
    text = store.dump(format=ox.RdfFormat.N_TRIPLES, from_graph=ox.DefaultGraph())
    lines = text.split(b"\n")
    if lines and not lines[-1]:
        lines.pop()
    new = [t for t in dict.fromkeys(extra) if ox.Quad(t.subject, t.predicate, t.object, ox.DefaultGraph()) not in store]
    more = [line.encode("utf-8") for line in ntriples_lines(new)]
    lines.extend(more)
    lines.sort()
    if b"_:" in text or any(b"_:" in line for line in more):  # perhaps a blank node: look closer
        for line in lines:
            _s, _p, o = line.split(b" ", 2)
            if o[:1] == b"_" or (o.startswith(b"<<(") and b"_:" in o):
                return None
    of_line = [line[:line.find(b" ")] for line in lines]  # each line's subject (IRIs hold no spaces)
    counts = Counter(of_line)
    if any(s[:1] != b"<" or s[1:2] == b"<" for s in counts):  # a blank node or a triple term as subject
        return None
    subjects = [s.decode("utf-8") for s in counts]  # in first-seen order: sorted, as the lines are
    starts = [0, *itertools.accumulate(counts.values())]
    ends = [0, *itertools.accumulate(map(len, lines))]  # line j starts at byte ends[j] + j of ``data``
    data = b"\n".join(lines) + b"\n" if lines else b""
    view = memoryview(data)
    digests = [_group_digest(view[ends[a] + a:ends[b] + b]) for a, b in zip(starts, starts[1:])]
    return GroundGraph(lines, subjects, starts, digests, data)


DUMP_CACHE_SHARDS = 32  # an edit rewrites the few shards its subjects fall in, not the whole cache


class PieceCache:
    """The per-subject pieces of one dump in the work cache (``.cache/dumps/NAME-NN.pickle``), in
    shards by subject hash, each under a key made of the code, the dump, the base IRI and the
    prefixes (a piece depends on nothing else). A missing, damaged or foreign shard is a miss."""

    def __init__(self, project: Project, dump: str, prefixes: Prefixes) -> None:
        from .cache import cache_root, code_fingerprint, enabled

        self.enabled = enabled()
        self.folder = cache_root(project) / "dumps"
        self.dump = dump
        raw = json.dumps([code_fingerprint("dumps", "fmt"), dump, project.base_iri, sorted(prefixes.mapping.items())])
        self.key = hashlib.sha256(raw.encode("utf-8")).hexdigest()
        self._loaded: list[set[bytes]] = [set() for _ in range(DUMP_CACHE_SHARDS)]
        self._type = str if dump == "emkg.jsonld" else tuple  # what a piece is (a damaged shard is a miss)

    def _path(self, shard: int) -> Path:
        return self.folder / f"{self.dump.replace('.', '-')}-{shard:02d}.pickle"

    def load(self) -> dict[bytes, Any]:
        """Every piece stored for this dump (empty when the cache is off)."""
        from .cache import read_entry

        pieces: dict[bytes, Any] = {}
        if not self.enabled:
            return pieces
        for shard in range(DUMP_CACHE_SHARDS):
            value = read_entry(self._path(shard), self.key)
            if isinstance(value, dict) and {type(piece) for piece in value.values()} <= {self._type}:
                pieces.update(value)
                self._loaded[shard] = set(value)
        return pieces

    def save(self, pieces: Mapping[bytes, Any]) -> None:
        """Keep exactly ``pieces`` (this build's): rewrite only the shards whose contents differ."""
        from .cache import write_entry

        if not self.enabled:
            return
        shards: list[dict[bytes, Any]] = [{} for _ in range(DUMP_CACHE_SHARDS)]
        for digest, piece in pieces.items():
            shards[digest[0] % DUMP_CACHE_SHARDS][digest] = piece
        rewritten = 0
        for shard, content in enumerate(shards):
            if set(content) != self._loaded[shard]:
                if write_entry(self._path(shard), self.key, content):
                    self._loaded[shard] = set(content)
                rewritten += 1
        log.debug("dumps: %s: %d of %d cache shards rewritten", self.dump, rewritten, DUMP_CACHE_SHARDS)


@dataclass
class _DumpJob:
    """What every dump is written from; ``write(name)`` writes one file and returns (size, sha256).
    ``ground`` (a graph without blank nodes) is written from per-subject pieces, else ``quads``."""

    project: Project
    graph: Any
    out_dir: Path
    description: Description
    prefixes: Prefixes
    quads: list[ox.Quad]
    ground: GroundGraph | None = None
    _grouped: dict[str, dict[str, list[Term]]] = field(default_factory=dict)
    # a subject IRI's statements (predicate -> objects), where they are at hand already (the
    # site's model, in a full build): the pieces are made from them, not from the lines parsed again
    statements: Callable[[str], Mapping[str, list[Term]]] | None = None
    _caches: dict[str, PieceCache] = field(default_factory=dict)
    _stored: dict[str, dict[bytes, Any]] = field(default_factory=dict)
    _missing: dict[str, list[int]] = field(default_factory=dict)

    def write(self, name: str) -> tuple[int, str]:
        if name == "emkg.nt" and self.ground is not None:
            return _write_file(self.out_dir / name, self.ground.data)
        return _write_file(self.out_dir / name, self.text(name))

    def text(self, name: str) -> str:
        if self.ground is not None:
            return self._ground_text(name)
        quads, prefixes, description = self.quads, self.prefixes, self.description
        if name == "emkg.ttl":  # the layout of ``emkg fmt``, straight from the sorted triples
            return format_graph(ntriples_lines(quads), dict(prefixes.mapping), _comment(description, name))
        if name == "emkg.nt":
            return write_ntriples(quads)
        if name == "emkg.jsonld":
            return write_jsonld(quads, prefixes)
        if name == "emkg.trig":
            assignment = assign_graphs(self.project, quads, ontology_subjects(self.project, self.graph),
                                       self._description_subjects())
            graphs: dict[str, list[ox.Quad]] = defaultdict(list)
            for q in quads:
                graphs[assignment.get(q.subject, graph_iri(self.project, "unsourced"))].append(q)
            return write_trig(graphs, prefixes, _comment(description, name))
        raise ValueError(f"unknown dump {name!r}")

    def lines_to_format(self, name: str) -> int:
        """How many lines of the graph dump ``name`` has to format (not in the cache)."""
        if self.ground is None:
            return len(self.quads)
        self._cached(name)
        return sum(self.ground.starts[i + 1] - self.ground.starts[i] for i in self._missing[name])

    def _cached(self, name: str) -> dict[bytes, Any]:
        """The cached pieces of dump ``name`` (read once); the subjects missing are ``_missing[name]``."""
        if name not in self._stored:
            assert self.ground is not None
            cache = self._caches[name] = PieceCache(self.project, name, self.prefixes)
            stored = self._stored[name] = cache.load()
            self._missing[name] = [i for i, digest in enumerate(self.ground.digests) if digest not in stored]
        return self._stored[name]

    def _description_subjects(self) -> set[str]:
        return {t.subject.value for t in self.description.triples if isinstance(t.subject, ox.NamedNode)}

    # -- from per-subject pieces --------------------------------------------------------------------

    def _ground_text(self, name: str) -> str:
        ground, prefixes, description = self.ground, self.prefixes, self.description
        assert ground is not None
        if name not in ("emkg.ttl", "emkg.jsonld", "emkg.trig"):
            raise ValueError(f"unknown dump {name!r}")
        pieces = self._pieces(name)
        subjects = ground.subjects
        if name == "emkg.ttl":
            order = sorted(range(len(subjects)), key=lambda i: (pieces[i][0], subjects[i]))
            return join_blocks(_comment(description, name), dict(prefixes.mapping), [pieces[i][1] for i in order])
        by_text = sorted(range(len(subjects)), key=subjects.__getitem__)
        if name == "emkg.jsonld":
            return _json_document(jsonld_context(prefixes), [pieces[i] for i in by_text])
        graph_of = self._ground_graphs([piece[1] for piece in pieces])
        graphs: dict[str, list[int]] = defaultdict(list)
        for i in by_text:
            graphs[graph_of[i]].append(i)
        out = [TurtleWriter(prefixes).header(_comment(description, name))]
        for graph_name in sorted(graphs):
            gname = turtle_term(NT(graph_name), prefixes)
            out.append(f"\n{gname} {{\n" + "\n".join(pieces[i][0] for i in graphs[graph_name]) + "}\n")
        return "".join(out)

    def _pieces(self, name: str) -> list[Any]:
        """Each subject's piece of dump ``name``: from the cache, else made (and then cached)."""
        ground = self.ground
        assert ground is not None
        stored = self._cached(name)
        cache, missing = self._caches.pop(name), self._missing.pop(name)
        del self._stored[name]
        made = self._make_pieces(name, missing)
        pieces = [stored[digest] if digest in stored else made[i] for i, digest in enumerate(ground.digests)]
        log.debug("dumps: %s: %d of %d subjects formatted, the others from the cache", name, len(missing), len(pieces))
        if missing or len(stored) != len(set(ground.digests)):
            cache.save(dict(zip(ground.digests, pieces)))
        return pieces

    def _make_pieces(self, name: str, indices: list[int]) -> dict[int, Any]:
        ground, prefixes = self.ground, self.prefixes
        assert ground is not None
        if not indices:
            return {}
        if name == "emkg.ttl":
            lines = [line.decode("utf-8") for i in indices for line in ground.lines_of(i)]
            blocks = ground_blocks(lines, dict(prefixes.mapping))
            return {i: blocks[ground.subjects[i]] for i in indices}
        grouped = self._terms(indices)
        if name == "emkg.jsonld":
            context = jsonld_context(prefixes)
            return {i: _node_line(jsonld_nodes({NT(ground.subjects[i][1:-1]): grouped[ground.subjects[i]]},
                                               prefixes, context)[0])
                    for i in indices}
        writer = TurtleWriter(prefixes)
        out = {}
        for i in indices:
            text = ground.subjects[i]
            pmap = grouped[text]
            block = next(iter(writer.blocks({NT(text[1:-1]): pmap}, indent="    ")))
            out[i] = (block, _trig_facts(self.project, pmap))
        return out

    def _terms(self, indices: list[int]) -> dict[str, dict[str, list[Term]]]:
        """subject text -> predicate IRI -> objects (terms) for these subjects, parsed once per process."""
        ground = self.ground
        assert ground is not None
        todo = [i for i in indices if ground.subjects[i] not in self._grouped]
        if self.statements is not None and todo:
            rest = []
            for i in todo:
                text = ground.subjects[i]
                pmap = self.statements(text[1:-1])
                if sum(map(len, pmap.values())) == ground.starts[i + 1] - ground.starts[i]:  # every line: the same triples
                    self._grouped[text] = pmap  # type: ignore[assignment]
                else:
                    rest.append(i)
            todo = rest
        if todo:
            data = b"\n".join(line for i in todo for line in ground.lines_of(i))
            for t in ox.parse(data, format=ox.RdfFormat.N_TRIPLES):
                self._grouped.setdefault(str(t.subject), {}).setdefault(t.predicate.value, []).append(t.object)
        return self._grouped

    def _ground_graphs(self, facts: list[tuple]) -> list[str]:
        """The named graph of each subject (``assign_graphs``' rule, from each subject's facts)."""
        ground, project = self.ground, self.project
        assert ground is not None
        subjects = ground.subjects
        docs = {subjects[i] for i, f in enumerate(facts) if f[0]}
        sections = {subjects[i] for i, f in enumerate(facts) if f[1]}
        doc_of = {subjects[i]: f[2] for i, f in enumerate(facts) if f[2] is not None}
        described = self._description_subjects()
        ontology = ontology_subjects(project, self.graph)

        def doc_graph(doc: str) -> str:
            return _document_graph(project, doc[1:-1])

        out = []
        for text, f in zip(subjects, facts):
            value = text[1:-1]
            if value in described:
                out.append(graph_iri(project, "dataset"))
            elif value in ontology:
                out.append(graph_iri(project, "ontology"))
            elif text in docs:
                out.append(doc_graph(text))
            elif text in sections and text in doc_of:
                out.append(doc_graph(doc_of[text]))
            else:
                found: set[str] = set()
                for target in f[3]:
                    if target in docs:
                        found.add(target)
                    elif target in sections and target in doc_of:
                        found.add(doc_of[target])
                if len(found) == 1:
                    out.append(doc_graph(next(iter(found))))
                else:
                    out.append(graph_iri(project, "multi-source" if found else "unsourced"))
        return out


def _trig_facts(project: Project, pmap: Mapping[str, list[Term]]) -> tuple[bool, bool, str | None, tuple[str, ...]]:
    """What the named-graph rule needs of a subject: (a source document?, a source section?, the
    first IRI it is ``dcterms:isPartOf``, the objects of its ``prov:wasDerivedFrom``) as N-Triples text."""
    types = {o.value for o in pmap.get(RDF_TYPE, ()) if isinstance(o, ox.NamedNode)}
    part_of = next((nt(o) for o in pmap.get(DCTERMS + "isPartOf", ()) if isinstance(o, ox.NamedNode)), None)
    return (project.base_iri + "def/SourceDocument" in types, project.base_iri + "def/SourceSection" in types,
            part_of, tuple(nt(o) for o in pmap.get(PROV + "wasDerivedFrom", ())))


def _start_in_child(job: _DumpJob, names: tuple[str, ...]) -> Forked | None:
    """Start writing ``names`` in a forked process (None where fork is not available, or while
    another thread runs, whose locks a forked child would inherit)."""
    if not hasattr(os, "fork") or threading.active_count() > 1:
        return None
    try:
        return Forked(lambda: {name: job.write(name) for name in names})
    except OSError as exc:  # no process could be started: write them here
        log.debug("dumps: no second process (%s); writing serially", exc)
        return None


def _finish_child(child: Forked, job: _DumpJob, names: tuple[str, ...]) -> dict[str, tuple[int, str]]:
    """The (size, sha256) of the files the child wrote; written here instead if the child died."""
    try:
        return child.result()
    except ChildDied:
        log.debug("dumps: the second process died; writing %s here", ", ".join(names))
        return {name: job.write(name) for name in names}


def void_triples(description: Description, dumps: Sequence[Dump], project: Project) -> list[ox.Triple]:
    """The description plus ``dcat:byteSize`` and ``spdx:checksum`` of every graph dump."""
    out = list(description.triples)
    for dump in dumps:
        dist = NT(project.base_iri + dump.name)
        out.append(ox.Triple(dist, NT(DCAT + "byteSize"), ox.Literal(str(dump.size), datatype=NT(XSD + "nonNegativeInteger"))))
        checksum = ox.BlankNode("sha256-" + re.sub(r"[^A-Za-z0-9]", "-", dump.name))
        out.append(ox.Triple(dist, NT(SPDX + "checksum"), checksum))
        out.append(ox.Triple(checksum, NT(RDF_TYPE), NT(SPDX + "Checksum")))
        out.append(ox.Triple(checksum, NT(SPDX + "algorithm"), NT(SPDX + "checksumAlgorithm_sha256")))
        out.append(ox.Triple(checksum, NT(SPDX + "checksumValue"), ox.Literal(dump.sha256, datatype=NT(XSD + "hexBinary"))))
    return out


__all__ = [
    "Description", "Dump", "FORMATS", "GroundGraph", "Prefixes", "TurtleWriter", "assign_graphs", "describe", "jsonld_nodes",
    "ground_graph", "source_date", "turtle_term", "void_triples", "write_dumps", "write_jsonld", "write_ntriples", "write_trig",
    "write_turtle",
]
