"""The static HTML site: a page for every resource, listings, views, ontology docs, data quality, search.

Layout (every link is relative, so the folder works from ``file://`` and from any sub-path):

* A resource ``<base>id/authority/derby-city-council`` gets the folder
  ``id/authority/derby-city-council/`` with ``index.html`` (the page), ``index.ttl`` and
  ``index.jsonld`` (its own triples). Hosted at the base IRI, every IRI dereferences: a static
  server answers ``.../derby-city-council`` with a redirect to ``.../derby-city-council/`` and
  serves its ``index.html``. Links inside the site name ``index.html`` explicitly (``file://``
  does not resolve folders).
* IRIs that cannot be mapped safely to a folder (a segment that is empty, ``.``/``..``, has
  characters outside ``A-Z a-z 0-9 - _ ~ .``, starts with a dot, or would collide with the site's
  own pages) get a page under ``_r/<hash>/`` instead: nothing is ever written outside the output.
* The ontology ``<base>def/`` is documented at ``def/index.html``; each class and property has its
  own page beside it, classes with the requirements the SHACL shapes place on their instances.
* Listings: ``authorities/``, ``updates/``, ``programmes/``, ``people/``, ``organisations/``,
  ``events/``, ``publications/``, ``themes/``, ``glossary/``; ``views/NAME.html`` per stored view;
  ``quality/`` the validation report; ``search/`` the search page (``search/index.js`` holds the
  index for the script, ``search-index.json`` the same for machines); ``.nojekyll`` so that GitHub
  Pages serves ``_r/``.

Pages are rendered by jinja2 with autoescape on; all logic is here, templates only lay out.
The fragments a resource page repeats dozens of times (values, the property table, link lists,
provenance) are written by the "HTML fragments" functions below, exactly as the macros of
``macros.html`` that expose them; every page's header and footer are rendered once per place.
Big graphs are rendered by a pool of processes over batches of pages (``jobs``), while the main
process writes the listing pages. An incremental build (``incremental.py``) renders only the
resource pages a change can touch; the listing and other pages are keyed by their context
(``content_key``) and rendered only when it is not the last build's. What is not rendered stays
in the previous output, which the build then updates in place. Every file is written as a new
file, never through a link.
"""

from __future__ import annotations

import datetime as _dt
import functools
import gc
import hashlib
import json
import logging
import multiprocessing
import os
import pickle
import re
import shutil
from collections import defaultdict
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyoxigraph as ox
from markupsafe import Markup, escape

from . import dumps as D
from .heap import bulk
from .project import Project

log = logging.getLogger(__name__)

RESOURCE_FILES = ("index.html", "index.ttl", "index.jsonld")  # the files of a resource's folder

RDF, RDFS, XSD, OWL, SKOS = D.RDF, D.RDFS, D.XSD, D.OWL, D.SKOS
DCTERMS, FOAF, PROV, DCAT, VOID, SCHEMA = D.DCTERMS, D.FOAF, D.PROV, D.DCAT, D.VOID, D.SCHEMA
ORG = "http://www.w3.org/ns/org#"
SH = "http://www.w3.org/ns/shacl#"
RDF_TYPE = RDF + "type"

PARALLEL_THRESHOLD = 400  # resource pages: below this, render in this process
BATCH_SIZE = 200
INCOMING_LIMIT = 300  # links listed per relation on a page ("and N more")
SEARCH_LIST_LIMIT = 20000

# Labels: the first of these with a value names a resource (English first).
LABEL_PROPERTIES = (SKOS + "prefLabel", RDFS + "label", SCHEMA + "name", FOAF + "name", DCTERMS + "title")

# Properties shown above the table rather than in it.
DESCRIPTION_PROPERTIES = (SKOS + "definition", DCTERMS + "description")

# Names of common vocabulary terms the graph does not label itself.
KNOWN_LABELS = {
    RDF_TYPE: "type", RDFS + "label": "label", RDFS + "comment": "comment", RDFS + "seeAlso": "see also",
    RDFS + "subClassOf": "subclass of", RDFS + "subPropertyOf": "subproperty of", RDFS + "isDefinedBy": "defined by",
    RDFS + "domain": "domain", RDFS + "range": "range",
    SKOS + "prefLabel": "preferred label", SKOS + "altLabel": "also known as", SKOS + "definition": "definition",
    SKOS + "notation": "notation", SKOS + "inScheme": "in scheme", SKOS + "topConceptOf": "top concept of",
    SKOS + "editorialNote": "editorial note", SKOS + "scopeNote": "scope note", SKOS + "example": "example",
    SKOS + "broader": "broader", SKOS + "narrower": "narrower", SKOS + "related": "related",
    SKOS + "hasTopConcept": "top concept",
    FOAF + "homepage": "website", FOAF + "name": "name",
    DCTERMS + "title": "title", DCTERMS + "description": "description", DCTERMS + "date": "date",
    DCTERMS + "isPartOf": "part of", DCTERMS + "identifier": "identifier", DCTERMS + "source": "source",
    DCTERMS + "spatial": "area", DCTERMS + "license": "licence", DCTERMS + "publisher": "publisher",
    DCTERMS + "modified": "modified", DCTERMS + "creator": "creator", DCTERMS + "issued": "issued",
    DCTERMS + "isReplacedBy": "replaced by", DCTERMS + "replaces": "replaces", DCTERMS + "format": "format",
    SCHEMA + "text": "text", SCHEMA + "mentions": "mentions", SCHEMA + "hasPart": "has part",
    SCHEMA + "position": "position", SCHEMA + "name": "name", SCHEMA + "startDate": "start date",
    SCHEMA + "endDate": "end date", SCHEMA + "organizer": "organiser", SCHEMA + "attendee": "attendee",
    SCHEMA + "about": "about", SCHEMA + "url": "web address", SCHEMA + "value": "value",
    SCHEMA + "unitText": "unit", SCHEMA + "superEvent": "part of event", SCHEMA + "foundingDate": "founded",
    SCHEMA + "dissolutionDate": "dissolved", SCHEMA + "domainIncludes": "used on", SCHEMA + "rangeIncludes": "values",
    PROV + "wasDerivedFrom": "derived from", PROV + "startedAtTime": "started", PROV + "endedAtTime": "ended",
    ORG + "holds": "holds", ORG + "postIn": "post in", ORG + "role": "role", ORG + "member": "member",
    ORG + "organization": "organisation", ORG + "subOrganizationOf": "part of organisation",
    ORG + "originalOrganization": "original organisation", ORG + "resultingOrganization": "resulting organisation",
    OWL + "versionInfo": "version", OWL + "inverseOf": "inverse of", OWL + "equivalentClass": "equivalent class",
    OWL + "equivalentProperty": "equivalent property", OWL + "sameAs": "same as",
    VOID + "triples": "triples", VOID + "entities": "entities", VOID + "classes": "classes",
    VOID + "properties": "properties", VOID + "distinctSubjects": "distinct subjects",
    VOID + "classPartition": "class partition", VOID + "class": "class", VOID + "exampleResource": "example resource",
    VOID + "sparqlEndpoint": "SPARQL endpoint", VOID + "dataDump": "data dump", VOID + "uriSpace": "IRI space",
    VOID + "vocabulary": "vocabulary", VOID + "feature": "feature",
    DCAT + "distribution": "distribution", DCAT + "downloadURL": "download", DCAT + "mediaType": "media type",
    DCAT + "keyword": "keyword", DCAT + "landingPage": "landing page",
    "http://purl.org/vocab/vann/preferredNamespacePrefix": "preferred prefix",
    "http://purl.org/vocab/vann/preferredNamespaceUri": "namespace",
}

# How a page names the links that point at it, by the property of the linking triple.
INVERSE_LABELS = {
    SCHEMA + "mentions": "Mentioned in",
    SCHEMA + "attendee": "Took part in",
    SCHEMA + "organizer": "Organised",
    SCHEMA + "about": "Subject of",
    SCHEMA + "superEvent": "Sub-events",
    SCHEMA + "hasPart": "Part of",
    DCTERMS + "isPartOf": "Has parts",
    DCTERMS + "spatial": "About this area",
    DCTERMS + "creator": "Created",
    DCTERMS + "isReplacedBy": "Replaces",
    DCTERMS + "replaces": "Replaced by",
    DCTERMS + "source": "Source of",
    ORG + "member": "Member of",
    ORG + "holds": "Held by",
    ORG + "postIn": "Posts",
    ORG + "role": "Holders of this role",
    ORG + "subOrganizationOf": "Has sub-organisations",
    ORG + "organization": "Memberships",
    ORG + "originalOrganization": "Ended by change",
    ORG + "resultingOrganization": "Created by change",
    PROV + "wasDerivedFrom": "Source of",
    RDF_TYPE: "Instances",
    RDFS + "subClassOf": "Subclasses",
    RDFS + "subPropertyOf": "Subproperties",
    SKOS + "inScheme": "Concepts",
    SKOS + "topConceptOf": "Top concepts",
    SKOS + "broader": "Narrower",
    VOID + "class": "Class partition",
    VOID + "exampleResource": "Example of",
}
EMKG_INVERSE = {
    "involves": "Involved in", "ledBy": "Leads", "partner": "Partner in", "reportsOn": "Reported on in",
    "inCounty": "Districts in this county", "ceremonialCounty": "Authorities in this ceremonial county",
    "operatesIn": "Operating in this area", "within": "Contains", "usedIn": "Terms used here",
    "addresses": "Addressed by", "produced": "Produced by", "commissionedBy": "Commissioned",
    "quantifies": "Quantities", "hostedBy": "Hosted", "region": "Memberships in this region",
    "hasQuantity": "Quantity of", "participantCount": "Participant count of",
}
# Incoming links not worth listing on every page (they are everywhere).
INCOMING_SKIP = {RDFS + "isDefinedBy", DCTERMS + "license", FOAF + "homepage", DCAT + "landingPage",
                 VOID + "vocabulary", DCAT + "downloadURL", DCAT + "accessURL"}

SCHEMA_TYPES = {  # emkg local name → schema.org type for the embedded JSON-LD
    "LocalAuthority": "GovernmentOrganization", "GovernmentBody": "GovernmentOrganization",
    "Organisation": "Organization", "Group": "Organization", "University": "CollegeOrUniversity",
    "ResearchCentre": "ResearchOrganization", "School": "School", "RegionalUpdate": "Report",
    "UpdateSection": "CreativeWork", "Event": "Event", "Publication": "CreativeWork", "Area": "AdministrativeArea",
    "GlossaryTerm": "DefinedTerm", "Programme": "Project", "Quantity": "QuantitativeValue",
}

RESERVED_TOP = {
    "index.html", "index.ttl", "index.jsonld", "static", "search", "views", "quality", "authorities", "updates",
    "programmes", "people", "organisations", "events", "publications", "themes", "glossary", "_r",
    "search-index.json", "void.ttl", "emkg.ttl", "emkg.nt", "emkg.jsonld", "emkg.trig", "robots.txt", ".emkg-build",
}
DUMP_FILES = ("emkg.ttl", "emkg.nt", "emkg.jsonld", "emkg.trig", "void.ttl")
RESERVED_NAMES = {"index.html", "index.ttl", "index.jsonld"}
_SAFE_SEGMENT = re.compile(r"^[A-Za-z0-9_~-][A-Za-z0-9._~-]*$")
_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")
MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
          "November", "December")

STATIC_DIR = Path(__file__).parent / "templates" / "static"


# --- paths ----------------------------------------------------------------------------------------

def resource_dir(iri: str, base: str) -> str | None:
    """The folder (relative to the output root) of a resource's page, or None if it gets no page.

    Only IRIs under ``base`` get pages. The folder mirrors the IRI path when every segment is safe;
    otherwise ``_r/<sha256>`` (still inside the output). Never absolute, never with ``..``.
    """
    if not iri.startswith(base):
        return None
    rest = iri[len(base):]
    if not rest or "#" in rest or "?" in rest:
        return None
    segments = rest.split("/")
    if segments[-1] == "":
        segments = segments[:-1]
    if (not segments or segments[0] in RESERVED_TOP
            or any(not _SAFE_SEGMENT.match(s) or s in RESERVED_NAMES or s.startswith(".") for s in segments)):
        return fallback_dir(iri)
    return "/".join(segments)


def fallback_dir(iri: str) -> str:
    return "_r/" + hashlib.sha256(iri.encode("utf-8")).hexdigest()[:24]


def safe_join(root: Path, relative: str) -> Path:
    """``root / relative``, refusing anything that could leave ``root`` (absolute paths, ``..``,
    ``.``, empty segments, backslashes). Every page path goes through here."""
    if (not relative or relative.startswith("/") or "\\" in relative or "\x00" in relative
            or any(p in ("..", ".", "") for p in relative.split("/"))):
        raise ValueError(f"unsafe output path {relative!r}")
    return root / relative


# --- text helpers ---------------------------------------------------------------------------------

def humanise(local: str) -> str:
    text = _CAMEL.sub(" ", local).replace("_", " ").replace("-", " ").strip()
    return text[:1].lower() + text[1:] if text[1:2].islower() else text


def capitalise(text: str) -> str:
    return text[:1].upper() + text[1:] if text else text


def local_name(iri: str) -> str:
    cut = max(iri.rfind("/", 0, len(iri) - 1), iri.rfind("#"))
    return iri[cut + 1:].rstrip("/") or iri


_EXTERNAL = (
    (re.compile(r"^https?://www\.wikidata\.org/entity/(Q\d+)$"), "Wikidata {}"),
    (re.compile(r"^https?://statistics\.data\.gov\.uk/id/statistical-geography/([A-Z]\d{8})$"), "ONS statistical geography {}"),
)


def safe_external_href(iri: str) -> str | None:
    """An IRI usable as a live link (http, https, mailto); None for javascript:, data: and the rest."""
    return iri if re.match(r"(?i)^(https?|mailto):", iri) and not re.search(r"[\s\x00-\x1f]", iri) else None


def external_label(iri: str) -> str | None:
    """Words for well-known external identifiers (a Wikidata item, an ONS geography)."""
    for pattern, words in _EXTERNAL:
        match = pattern.match(iri)
        if match:
            return words.format(match.group(1))
    return None


def format_date(value: str, datatype: str, precision: str | None = None) -> str | None:
    """A date as people write it ("1 September 2019", "September 2019"), or None if not a date."""
    try:
        if datatype == XSD + "gYearMonth":
            year, month = value[:7].split("-")
            return f"{MONTHS[int(month) - 1]} {int(year)}"
        if datatype == XSD + "gYear":
            return str(int(value[:4]))
        if datatype in (XSD + "date", XSD + "dateTime"):
            day = _dt.date.fromisoformat(value[:10])
            if precision == "month":
                return f"{MONTHS[day.month - 1]} {day.year}"
            if precision == "year":
                return str(day.year)
            text = f"{day.day} {MONTHS[day.month - 1]} {day.year}"
            if datatype == XSD + "dateTime" and len(value) >= 16:
                text += f", {value[11:16]}"
            return text
    except (ValueError, IndexError):
        return None
    return None


def script_json(data: Any) -> Markup:
    """JSON safe inside ``<script>``: ``<``, ``>`` and ``&`` are escaped as \\u sequences."""
    try:
        text = _indented_json(data, "\n")
    except TypeError:  # something _indented_json does not write: json's own (slower) writer
        text = json.dumps(data, ensure_ascii=False, sort_keys=False, indent=1)
    text = text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    text = text.replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")
    return Markup(text)


_JSON_LEAVES = (str, int, float, bool, type(None))


def _indented_json(value: Any, newline: str, step: str = " ") -> str:
    """``json.dumps(value, ensure_ascii=False, indent=len(step))`` for dicts with string keys, lists
    and JSON scalars, with json's C writer for the scalars (its indenting writer is pure Python).
    ``newline``: a newline and the indent of ``value``'s own line; ``step``: one level's indent
    (spaces). TypeError for anything else."""
    if type(value) is str:
        return _encode_json_string(value)
    if type(value) is dict:
        if not value:
            return "{}"
        inner = newline + step
        items = []
        for key, item in value.items():
            if type(key) is not str:
                raise TypeError("not a string key")
            items.append(f"{_encode_json_string(key)}: {_indented_json(item, inner, step)}")
        return "{" + inner + ("," + inner).join(items) + newline + "}"
    if type(value) in (list, tuple):
        if not value:
            return "[]"
        inner = newline + step
        return "[" + inner + ("," + inner).join(_indented_json(item, inner, step) for item in value) + newline + "]"
    if type(value) in _JSON_LEAVES:
        return json.dumps(value, ensure_ascii=False)
    raise TypeError(f"not written here: {type(value).__name__}")


_encode_json_string = json.encoder.encode_basestring  # what json.dumps(ensure_ascii=False) writes for a str


def index_json_text(entries: list[dict]) -> str:
    """The search index file: ``json.dumps(entries, ensure_ascii=False, indent=0)`` and a newline
    (written faster: entries of string fields)."""
    try:
        return _indented_json(entries, "\n", "") + "\n"
    except TypeError:
        return json.dumps(entries, ensure_ascii=False, indent=0) + "\n"


@functools.lru_cache(maxsize=65536)
def _word_pattern(word: str, ignore_case: bool, hyphen: bool) -> re.Pattern:
    edge = r"[\w-]" if hyphen else r"\w"
    return re.compile(rf"(?<!{edge})" + re.escape(word) + rf"(?!{edge})", re.IGNORECASE if ignore_case else 0)


class Glossary(Mapping[str, str]):
    """Acronyms (``skos:notation``) and their expansions, read-only, with what ``rich_text`` needs
    to find them in a text without trying every acronym of a national glossary on every section:
    the notations longest first (the order they are marked up in), and those made only of word
    characters and hyphens by name (such a notation can only match a whole ``[\\w-]+`` word)."""

    def __init__(self, expansions: Mapping[str, str]) -> None:
        self._expansions = dict(expansions)
        ordered = sorted((n for n in self._expansions if n.strip()), key=len, reverse=True)
        self._rank = {n: i for i, n in enumerate(ordered)}
        self._words = {n for n in ordered if _WORD.fullmatch(n)}
        self._others = [n for n in ordered if n not in self._words]

    def __getitem__(self, notation: str) -> str:
        return self._expansions[notation]

    def __iter__(self):
        return iter(self._expansions)

    def __len__(self) -> int:
        return len(self._expansions)

    def candidates(self, text: str) -> list[str]:
        """The notations that may occur in ``text`` as a word, longest first."""
        found = {w for w in _WORD.findall(text) if w in self._words}
        found.update(n for n in self._others if n in text)
        return sorted(found, key=self._rank.__getitem__)


_WORD = re.compile(r"[\w-]+")


def rich_text(text: str, links: Sequence[tuple[Sequence[str], str, str]], glossary: Mapping[str, str]) -> Markup:
    """Escaped text with the first occurrence of each linked entity's label made a link, and every
    glossary acronym marked up as ``<abbr title=expansion>``.

    ``links``: (labels, href, title) per entity. Built only from escaped pieces: the result is safe
    whatever the text contains.
    """
    spans: list[tuple[int, int, str, str]] = []  # start, end, href, title

    def free(start: int, end: int) -> bool:
        return all(end <= s or start >= e for s, e, _h, _t in spans)

    lowered = text.lower()
    ordered = sorted(links, key=lambda item: -max((len(lbl) for lbl in item[0]), default=0))
    for labels, href, title in ordered:
        best: tuple[int, int] | None = None
        for label in sorted({lbl for lbl in labels if lbl and lbl.strip()}, key=len, reverse=True):
            if label.lower() not in lowered:
                continue
            for ignore_case in (False, True):
                for match in _word_pattern(label, ignore_case, False).finditer(text):
                    if free(match.start(), match.end()):
                        if best is None or match.start() < best[0]:
                            best = (match.start(), match.end())
                        break
                if best is not None and not ignore_case:
                    break
        if best is not None:
            spans.append((best[0], best[1], href, title))
    spans.sort()
    abbrs: list[tuple[int, int, str]] = []
    terms = glossary if isinstance(glossary, Glossary) else Glossary(glossary)
    for notation in terms.candidates(text):
        for match in _word_pattern(notation, False, True).finditer(text):
            s, e = match.start(), match.end()
            if any(not (e <= a or s >= b) for a, b, _x in abbrs):
                continue
            if any(s < ls < e or s < le < e for ls, le, _h, _t in spans):
                continue  # crosses a link boundary
            abbrs.append((s, e, glossary[notation]))
    abbrs.sort()

    def plain(start: int, end: int) -> Markup:
        out = Markup("")
        pos = start
        for s, e, expansion in abbrs:
            if s >= start and e <= end:
                out += escape(text[pos:s]) + Markup('<abbr title="{}">{}</abbr>').format(expansion, text[s:e])
                pos = e
        return out + escape(text[pos:end])

    result = Markup("")
    pos = 0
    for s, e, href, title in spans:
        result += plain(pos, s)
        result += Markup('<a href="{}" title="{}">').format(href, title) + plain(s, e) + Markup("</a>")
        pos = e
    return result + plain(pos, len(text))


# --- the model ------------------------------------------------------------------------------------

def _key(term) -> str:
    return term.value if isinstance(term, ox.NamedNode) else "_:" + term.value


@dataclass
class SiteInput:
    """What the site is made from (publish fills it)."""

    project: Project
    store: ox.Store
    prefixes: dict[str, str]
    locations: Mapping[str, Sequence[Any]] = field(default_factory=dict)
    shapes: ox.Store | None = None
    report: Any = None
    views: Sequence[Any] = ()
    dumps: Sequence[Any] = ()
    description: Any = None
    date: str | None = None
    endpoint: str | None = None
    subjects: Collection[str] | None = None  # every subject of ``store`` (``_:`` and the id for a blank node), if known


@dataclass
class Reads:
    """What building pages read of the graph (``Model``'s accessors record it), for an incremental
    build to tell whether an edit can change a page it did not build again: the predicates read
    on any subject, the subjects whose every statement was read, the objects whose every incoming
    link was read, and ``flags``: ``"subjects"`` (which resources exist: page paths, membership)
    and ``"locations"`` (where subjects are written)."""

    predicates: set[str] = field(default_factory=set)
    subjects: set[str] = field(default_factory=set)
    objects: set[str] = field(default_factory=set)
    flags: set[str] = field(default_factory=set)

    def plain(self) -> tuple[list[str], list[str], list[str], list[str]]:
        return sorted(self.predicates), sorted(self.subjects), sorted(self.objects), sorted(self.flags)


class Model:
    """The graph indexed for page building: out-links, in-links, types, labels, page paths.

    The statements of a subject and the incoming links of an object are read from the store when
    first asked for (``statements_of``, ``links_to``: an incremental build asks for few), in the
    store's order, which is the same for every build of the same triples. Page building reads the
    graph only through the methods below, which record what they read (``reads``, from the
    model's creation on, so that what a remembered label was made from is counted too); planning
    code calls ``statements_of`` and ``links_to`` directly (not recorded)."""

    def __init__(self, data: SiteInput, read_all: bool = False) -> None:
        """``read_all``: read every statement at once (``read_all``), and so the subjects too."""
        self.data = data
        self.project = data.project
        self.base = data.project.base_iri
        self.E = data.project.ontology_iri
        self.prefixes = D.Prefixes(D.all_prefixes(data.prefixes))
        self._store = data.store
        self._out: dict[str, dict[str, list]] = {}
        self._inc: dict[str, list[tuple[str, str]]] = {}
        self._types: dict[str, list[str]] = {}
        self._complete = False  # every statement read (``read_all``)
        if read_all:
            self.read_all()
        subjects: Iterable[str]
        if data.subjects is not None:
            subjects = data.subjects
        elif read_all:
            subjects = self._out  # the subjects it read
        else:
            subjects = (_key(row[0]) for row in data.store.query("SELECT DISTINCT ?s WHERE { ?s ?p ?o }"))
        self._subjects: frozenset[str] = frozenset(subjects)
        self.reads = Reads()
        self._labels: dict[str, str] = {}
        self._supers: dict[str, set[str]] = {}
        self._classes: dict[str, frozenset[str]] = {}  # per resource: its types and all their superclasses
        self._term_labels: dict[str, str] = {}
        self._type_labels: dict[str, str] = {}
        self._contexts: dict[str, str | None] = {}
        self._date_values: dict[str, str] = {}
        self.paths: dict[str, str] = {}
        self._assign_paths()

    # -- paths
    def _assign_paths(self) -> None:
        taken: dict[str, str] = {}
        for iri in sorted(k for k in self._subjects if not k.startswith("_:")):
            if iri[len(self.base):] in DUMP_FILES and iri.startswith(self.base):
                continue  # a distribution's IRI is the file itself
            folder = resource_dir(iri, self.base)
            if folder is None:
                continue
            if folder in taken:
                folder = fallback_dir(iri)
            taken[folder] = iri
            self.paths[iri] = folder + "/index.html"

    def page(self, iri: str) -> str | None:
        self.reads.flags.add("subjects")
        return self.paths.get(iri)

    def page_items(self) -> Iterable[tuple[str, str]]:
        """(IRI, page path) of every resource page."""
        self.reads.flags.add("subjects")
        return self.paths.items()

    def file_target(self, iri: str) -> str | None:
        """A site path for IRIs under the base that are files or pages we write (not resources)."""
        self.reads.flags.add("subjects")
        if iri in self.paths:
            return self.paths[iri]
        if iri == self.base:
            return "index.html"
        if iri.startswith(self.base):
            rest = iri[len(self.base):]
            if rest in DUMP_FILES:
                return rest
        return None

    # -- the graph, read from the store when first asked for (not recorded)
    def read_all(self) -> None:
        """Read every statement in one pass over the store, in the same order (a full build reads
        nearly all of them, and one pass is much faster than one lookup per subject)."""
        with bulk():  # millions of containers, built in one go
            self._out, self._inc = self._read_all()
        self._complete = True

    def _read_all(self) -> tuple[dict[str, dict[str, list]], dict[str, list[tuple[str, str]]]]:
        out: dict[str, dict[str, list]] = {}
        inc: dict[str, list[tuple[str, str]]] = {}
        NamedNode = ox.NamedNode
        for q in self._store.quads_for_pattern(None, None, None, ox.DefaultGraph()):
            s = _key(q.subject)
            p = q.predicate.value
            o = q.object
            pmap = out.get(s)
            if pmap is None:
                pmap = out[s] = {}
            objects = pmap.get(p)
            if objects is None:
                pmap[p] = [o]
            else:
                objects.append(o)
            if type(o) is NamedNode:
                links = inc.get(o.value)
                if links is None:
                    inc[o.value] = [(s, p)]
                else:
                    links.append((s, p))
        return out, inc

    def statements_of(self, s: str) -> dict[str, list]:
        """predicate -> objects of the statements of ``s`` (an IRI, or ``_:`` and a blank node's id)."""
        found = self._out.get(s)
        if found is None:
            if self._complete:
                return {}
            found = {}
            if s in self._subjects:
                term = ox.BlankNode(s[2:]) if s.startswith("_:") else ox.NamedNode(s)
                for q in self._store.quads_for_pattern(term, None, None, ox.DefaultGraph()):
                    objects = found.get(q.predicate.value)
                    if objects is None:
                        found[q.predicate.value] = [q.object]
                    else:
                        objects.append(q.object)
            self._out[s] = found
        return found

    def links_to(self, o: str) -> list[tuple[str, str]]:
        """(subject, predicate) of the statements whose object is the IRI ``o``."""
        found = self._inc.get(o)
        if found is None:
            if self._complete:
                return []
            found = self._inc[o] = [(_key(q.subject), q.predicate.value) for q in
                                    self._store.quads_for_pattern(None, None, ox.NamedNode(o), ox.DefaultGraph())]
        return found

    def _direct_types(self, s: str) -> list[str]:
        found = self._types.get(s)
        if found is None:
            found = self._types[s] = [o.value for o in self.statements_of(s).get(RDF_TYPE, ()) if isinstance(o, ox.NamedNode)]
        return found

    # -- values
    def values(self, s: str, p: str) -> list:
        self.reads.predicates.add(p)
        found = self._out.get(s)  # (the common case first: read already)
        return (found if found is not None else self.statements_of(s)).get(p, [])

    def statements(self, s: str) -> dict[str, list]:
        """Every statement of ``s``: predicate -> objects."""
        self.reads.subjects.add(s)
        return self.statements_of(s)

    def incoming(self, o: str, predicates: Collection[str] | None = None) -> list[tuple[str, str]]:
        """(subject, predicate) of the statements whose object is ``o`` (with one of ``predicates``)."""
        links = self.links_to(o)
        if predicates is None:
            self.reads.objects.add(o)
            return list(links)
        self.reads.predicates.update(predicates)
        return [(s, p) for s, p in links if p in predicates]

    def types_of(self, s: str) -> list[str]:
        self.reads.predicates.add(RDF_TYPE)
        return self._direct_types(s)

    def typed(self) -> Iterable[tuple[str, list[str]]]:
        """(subject, its types) of every typed subject."""
        self.reads.predicates.add(RDF_TYPE)
        return [(s, types) for s in sorted(self._subjects) if (types := self._direct_types(s))]

    def has(self, s: str) -> bool:
        """Whether ``s`` is the subject of a statement."""
        self.reads.flags.add("subjects")
        return s in self._subjects

    def subject_keys(self) -> Iterable[str]:
        self.reads.flags.add("subjects")
        return self._subjects

    def locations_of(self, s: str) -> Sequence[Any]:
        self.reads.flags.add("locations")
        return self.data.locations.get(s, ())

    def literal(self, s: str, *preds: str) -> str | None:
        for p in preds:
            best = _pick_literal(self.values(s, p))
            if best is not None:
                return best
        return None

    def literals(self, s: str, p: str) -> list[str]:
        return sorted({o.value for o in self.values(s, p) if isinstance(o, ox.Literal)})

    def objects(self, s: str, p: str) -> list[str]:
        return sorted({o.value for o in self.values(s, p) if isinstance(o, ox.NamedNode)})

    def subjects(self, p: str, o: str) -> list[str]:
        self.reads.predicates.add(p)
        return sorted({s for s, pred in self.links_to(o) if pred == p})

    # -- classes
    def superclasses(self, cls: str) -> set[str]:
        if cls not in self._supers:
            seen = {cls}
            todo = [cls]
            while todo:
                current = todo.pop()
                for sup in self.objects(current, RDFS + "subClassOf"):
                    if sup not in seen:
                        seen.add(sup)
                        todo.append(sup)
            self._supers[cls] = seen
        return self._supers[cls]

    def is_a(self, s: str, cls: str) -> bool:
        return cls in self.classes_of(s)

    def classes_of(self, s: str) -> frozenset[str]:
        """The types of ``s`` and all their superclasses (remembered per resource)."""
        found = self._classes.get(s)
        if found is None:
            found = self._classes[s] = frozenset().union(*(self.superclasses(t) for t in self.types_of(s)))
        return found

    def instances(self, cls: str) -> list[str]:
        found = set()
        for sub in self.subclasses(cls):
            found.update(x for x, _p in self.incoming(sub, (RDF_TYPE,)))
        return sorted(found)

    def subclasses(self, cls: str) -> set[str]:
        seen = {cls}
        todo = [cls]
        while todo:
            current = todo.pop()
            for sub in self.subjects(RDFS + "subClassOf", current):
                if sub not in seen:
                    seen.add(sub)
                    todo.append(sub)
        return seen

    # -- labels
    def label(self, iri: str) -> str:
        if iri in self._labels:
            return self._labels[iri]
        text = self.literal(iri, *LABEL_PROPERTIES)
        if text is None:
            text = self._derived_label(iri)
        self._labels[iri] = text
        return text

    def _derived_label(self, iri: str) -> str:
        if self.is_a(iri, ORG + "Membership"):
            member = self.objects(iri, ORG + "member")
            role = self.objects(iri, ORG + "role")
            parts = [self.label(m) for m in member] + [self.label(r) for r in role]
            if parts:
                return ", ".join(parts[:1]) + (f" ({', '.join(parts[1:])})" if parts[1:] else "")
        stated = self.literal(iri, self.E + "statedAs", SKOS + "notation")
        if stated:
            return stated
        if iri in KNOWN_LABELS:
            return KNOWN_LABELS[iri]
        curie = self.prefixes.curie(iri)
        if iri.startswith(self.base) and iri.rstrip("/") != self.base.rstrip("/"):
            return capitalise(local_name(iri).replace("-", " ").replace("_", " "))
        return curie or iri

    def term_label(self, iri: str) -> str:
        """Names of classes and properties: their rdfs:label, a known name, or the humanised local name
        (remembered per IRI)."""
        text = self._term_labels.get(iri)
        if text is None:
            text = self._term_labels[iri] = self._term_label(iri)
        return text

    def _term_label(self, iri: str) -> str:
        text = self.literal(iri, RDFS + "label", SKOS + "prefLabel")
        if text:
            return text
        if iri in KNOWN_LABELS:
            return KNOWN_LABELS[iri]
        return humanise(local_name(iri).split(":")[-1])

    def type_label(self, iri: str) -> str:
        """The most specific types of ``iri``, named (remembered per IRI)."""
        text = self._type_labels.get(iri)
        if text is None:
            text = self._type_labels[iri] = self._type_label(iri)
        return text

    def _type_label(self, iri: str) -> str:
        types = self.types_of(iri)
        local = [t for t in types if t.startswith(self.E)] or types
        if not local:
            return ""
        # the most specific: a type none of whose subclasses is also a type
        specific = [t for t in local if not any(t != o and t in self.superclasses(o) for o in local)] or local
        return ", ".join(capitalise(self.term_label(t)) for t in sorted(specific))

    def context_label(self, iri: str) -> str | None:
        """Extra words that place a resource (the update a section belongs to, ...), remembered per IRI."""
        try:
            return self._contexts[iri]
        except KeyError:
            text = self._contexts[iri] = self._context_label(iri)
            return text

    def _context_label(self, iri: str) -> str | None:
        if self.is_a(iri, self.E + "UpdateSection"):
            parents = self.objects(iri, DCTERMS + "isPartOf")
            if parents:
                return self.label(parents[0])
        if self.is_a(iri, self.E + "SourceSection"):
            docs = self.objects(iri, DCTERMS + "isPartOf")
            start = self.literal(iri, self.E + "startLine")
            end = self.literal(iri, self.E + "endLine")
            where = self.literal(docs[0], self.E + "fileName") if docs else None
            if where and start:
                return f"{where}, lines {start}–{end or start}"
        return None

    def date_of(self, iri: str) -> str:
        found = self._date_values.get(iri)
        if found is None:
            found = self._date_values[iri] = self._date_of(iri)
        return found

    def _date_of(self, iri: str) -> str:
        for p in (DCTERMS + "date", SCHEMA + "startDate", DCTERMS + "issued", SCHEMA + "foundingDate", PROV + "startedAtTime"):
            v = self.literal(iri, p)
            if v:
                return v
        return ""

    def precision(self, iri: str) -> str | None:
        prec = self.objects(iri, self.E + "datePrecision")
        if prec:
            name = local_name(prec[0]).lower()
            for word in ("month", "year", "day"):
                if name.startswith(word):
                    return word
        return None


def _pick_literal(values: Iterable) -> str | None:
    best = None
    rank = 9
    for o in values:
        if not isinstance(o, ox.Literal):
            continue
        lang = o.language or ""
        r = 0 if lang.lower() in ("en", "en-gb") else 1 if not lang else 2 if lang.lower().startswith("en") else 3
        if r < rank or (r == rank and best is not None and o.value < best):
            best, rank = o.value, r
    return best


# --- page context building ------------------------------------------------------------------------

class Pages:
    """Builds the context of every page; shared by the main process and the workers."""

    def __init__(self, model: Model) -> None:
        self.m = model
        self.E = model.E
        self.glossary = Glossary(self._glossary())
        self.here: str | None = None  # the label of the page being built (no "(context)" that repeats it)
        # remembered per IRI (the same properties, updates and types recur on many pages)
        self._props: dict[str, tuple[str, str | None, str | None, str]] = {}
        self._positions: dict[str, tuple] = {}
        self._dates: dict[str, str] = {}
        self._schema_kinds: dict[tuple[str, ...], str] = {}

    # -- links
    def link(self, iri: str, up: str, with_type: bool = False) -> dict:
        m = self.m
        target = m.file_target(iri)
        label = m.label(iri)
        item = {"kind": "link" if target else "text", "label": label, "href": up + target if target else None,
                "iri": iri}
        if with_type:
            item["type"] = m.type_label(iri)
        ctx = m.context_label(iri)
        if ctx and ctx != self.here:
            item["context"] = ctx
        return item

    def value(self, term, up: str, predicate: str | None = None, subject: str | None = None) -> dict:
        m = self.m
        if isinstance(term, ox.NamedNode):
            iri = term.value
            if m.file_target(iri) or m.has(iri):
                return self.link(iri, up)
            if iri.startswith(m.base):  # under the base but not a resource of the graph
                if iri.startswith(m.base + "shapes/"):
                    return {"kind": "link", "label": "the SHACL shapes (requirements in the ontology documentation)",
                            "href": up + "def/index.html#classes", "iri": iri}
                return {"kind": "code", "label": iri}
            if iri.startswith(("http://", "https://")):
                known = external_label(iri)
                if known:
                    return {"kind": "external", "href": iri, "label": known, "iri": iri}
                shown = m.literal(iri, *LABEL_PROPERTIES) or (m.prefixes.curie(iri) if predicate == RDF_TYPE or
                                                              predicate in (RDFS + "subClassOf", RDFS + "subPropertyOf") else None) or iri
                return {"kind": "external", "href": iri, "label": shown, "iri": iri}
            if iri.startswith("mailto:"):
                return {"kind": "external", "href": iri, "label": iri[7:], "iri": iri}
            return {"kind": "code", "label": iri}
        if isinstance(term, ox.BlankNode):
            return {"kind": "node", "rows": self.rows("_:" + term.value, up, depth=1)}
        datatype = term.datatype.value if not term.language else None
        item = {"kind": "literal", "label": term.value, "lang": term.language or None}
        if datatype and datatype not in (XSD + "string", RDF + "langString"):
            pretty = format_date(term.value, datatype, m.precision(subject) if subject else None)
            if pretty:
                item.update(kind="date", label=pretty, machine=term.value)
            elif datatype == XSD + "boolean":
                item["label"] = "yes" if term.value in ("true", "1") else "no"
            else:
                item["datatype"] = m.prefixes.curie(datatype) or datatype
        return item

    def prop(self, p: str, up: str) -> dict:
        known = self._props.get(p)
        if known is None:
            m = self.m
            known = self._props[p] = (capitalise(m.term_label(p)), m.page(p), safe_external_href(p), m.prefixes.curie(p) or p)
        label, target, external, curie = known
        return {"label": label, "href": up + target if target else external, "curie": curie}

    def rows(self, s: str, up: str, skip: Iterable[str] = (), depth: int = 0) -> list[dict]:
        m = self.m
        out = []
        pmap = m.statements(s)
        skipped = set(skip)
        for p in sorted(pmap, key=lambda x: (x != RDF_TYPE, m.term_label(x).lower(), x)):
            if p in skipped:
                continue
            objs = sorted(set(pmap[p]), key=lambda o: (not isinstance(o, ox.Literal), m.label(o.value).lower()
                                                      if isinstance(o, ox.NamedNode) else o.value))
            if p == RDF_TYPE:
                vals = [self.type_value(o.value, up) for o in objs if isinstance(o, ox.NamedNode)]
            else:
                vals = [self.value(o, up, p, s) for o in objs] if depth < 3 else []
            out.append({"prop": self.prop(p, up), "values": vals})
        return out

    def type_value(self, cls: str, up: str) -> dict:
        m = self.m
        target = m.page(cls)
        label = capitalise(m.term_label(cls))
        if target:
            return {"kind": "link", "label": label, "href": up + target, "iri": cls}
        href = safe_external_href(cls)
        return {"kind": "external" if href else "code", "label": m.prefixes.curie(cls) or cls, "href": href, "iri": cls}

    # -- glossary and rich text
    def _glossary(self) -> dict[str, str]:
        m = self.m
        out = {}
        for term in m.instances(self.E + "GlossaryTerm"):
            expansion = m.literal(term, self.E + "expansion")
            if not expansion:
                continue
            for notation in m.literals(term, SKOS + "notation"):
                out.setdefault(notation, expansion)
        return out

    def section_text(self, section: str, up: str) -> Markup | None:
        m = self.m
        text = m.literal(section, SCHEMA + "text")
        if text is None:
            return None
        links = []
        for target in m.objects(section, SCHEMA + "mentions"):
            page = m.file_target(target)
            if not page:
                continue
            labels = [*m.literals(target, SKOS + "prefLabel"), *m.literals(target, RDFS + "label"),
                      *m.literals(target, SKOS + "altLabel"), *m.literals(target, FOAF + "name"),
                      *m.literals(target, SCHEMA + "name"), *m.literals(target, DCTERMS + "title")]
            links.append((labels, up + page, m.label(target)))
        return rich_text(text, links, self.glossary)

    # -- provenance
    def provenance(self, s: str, up: str) -> list[dict]:
        m = self.m
        out = []
        for src in m.objects(s, PROV + "wasDerivedFrom"):
            entry = {"source": self.link(src, up)}
            if m.is_a(src, self.E + "SourceSection"):
                docs = m.objects(src, DCTERMS + "isPartOf")
                entry["document"] = self.link(docs[0], up) if docs else None
                entry["file"] = m.literal(docs[0], self.E + "fileName") if docs else None
                entry["start"] = m.literal(src, self.E + "startLine")
                entry["end"] = m.literal(src, self.E + "endLine")
                entry["section"] = m.literal(src, DCTERMS + "title")
            else:
                entry["document"] = self.link(src, up)
                entry["file"] = m.literal(src, self.E + "fileName")
            out.append(entry)
        return out

    def recorded_in(self, s: str) -> list[str]:
        locs = self.m.locations_of(s)
        return sorted({f"{loc.file}:{loc.line}" for loc in locs})

    # -- what points here
    def involvement(self, s: str, up: str) -> list[dict]:
        """Updates, programmes, events and publications that involve ``s`` (any link to it)."""
        m = self.m
        groups = []
        updates: dict[str, list[str]] = defaultdict(list)
        programmes: dict[str, set[str]] = defaultdict(set)
        events: dict[str, set[str]] = defaultdict(set)
        pubs: dict[str, set[str]] = defaultdict(set)
        via: dict[str, set[str]] = defaultdict(set)  # involved thing -> the related resources it reaches us by
        for related in self.related(s):
            for subj, p in m.incoming(related):
                if p in INCOMING_SKIP or p == RDF_TYPE or subj == s:
                    continue
                if related != s:
                    via[subj].add(related)
                if m.is_a(subj, self.E + "UpdateSection"):
                    for upd in m.objects(subj, DCTERMS + "isPartOf"):
                        updates[upd].append(subj)
                elif m.is_a(subj, self.E + "RegionalUpdate"):
                    updates.setdefault(subj, [])
                elif m.is_a(subj, self.E + "Programme"):
                    programmes[subj].add(p)
                elif m.is_a(subj, self.E + "Event"):
                    events[subj].add(p)
                elif m.is_a(subj, self.E + "Publication"):
                    pubs[subj].add(p)
        if updates:
            items = []
            for upd in sorted(updates, key=lambda u: (m.date_of(u), u)):
                items.append({"link": self.link(upd, up), "date": self._date_label(upd),
                              "parts": [dict(self.link(sec, up), context=None, label=m.literal(sec, DCTERMS + "title") or m.label(sec))
                                        for sec in sorted(set(updates[upd]), key=self._position)]})
            groups.append({"title": "Updates", "items": items})
        for title, found in (("Programmes", programmes), ("Events", events), ("Publications", pubs)):
            if found:
                items = [{"link": self.link(x, up), "date": self._date_label(x) if title != "Programmes" else "",
                          "how": ", ".join(sorted(m.term_label(p) for p in found[x]))
                          + ("; via " + ", ".join(sorted(m.label(r) for r in via[x])) if via.get(x) else "")}
                         for x in sorted(found, key=lambda x: m.label(x).lower())]
                groups.append({"title": title, "items": items})
        return groups

    def related(self, s: str) -> list[str]:
        """``s``, its sub-organisations (transitively), the posts in them and the posts' holders:
        what involves any of these involves ``s``."""
        m = self.m
        orgs = [s]
        seen = {s}
        for org in orgs:
            for sub in m.subjects(ORG + "subOrganizationOf", org):
                if sub not in seen:
                    seen.add(sub)
                    orgs.append(sub)
        out = list(orgs)
        for org in orgs:
            for post in m.subjects(ORG + "postIn", org):
                if post not in seen:
                    seen.add(post)
                    out.append(post)
                for holder in m.subjects(ORG + "holds", post):
                    if holder not in seen:
                        seen.add(holder)
                        out.append(holder)
        return out

    def incoming(self, s: str, up: str, exclude_involvement: bool) -> list[dict]:
        m = self.m
        grouped: dict[str, set[str]] = defaultdict(set)
        linked = {o.value for objs in m.statements(s).values() for o in objs if isinstance(o, ox.NamedNode)}
        for subj, p in m.incoming(s):
            if p in INCOMING_SKIP or subj in linked:  # already shown among its properties
                continue
            if exclude_involvement and any(m.is_a(subj, self.E + c) for c in
                                           ("UpdateSection", "RegionalUpdate", "Programme", "Event", "Publication")):
                continue
            grouped[p].add(subj)
        out = []
        for p in sorted(grouped, key=lambda x: (self.inverse_label(x).lower(), x)):
            subjects = sorted(grouped[p], key=lambda x: (m.label(x).lower(), x))
            shown = subjects[:INCOMING_LIMIT]
            out.append({"title": self.inverse_label(p), "prop": self.prop(p, up),
                        "items": [self.link(x, up, with_type=True) for x in shown],
                        "more": len(subjects) - len(shown)})
        return out

    def inverse_label(self, p: str) -> str:
        if p in INVERSE_LABELS:
            return INVERSE_LABELS[p]
        if p.startswith(self.E) and p[len(self.E):] in EMKG_INVERSE:
            return EMKG_INVERSE[p[len(self.E):]]
        return f"Linked here as “{self.m.term_label(p)}”"

    def _position(self, iri: str) -> tuple:
        found = self._positions.get(iri)
        if found is None:
            found = self._positions[iri] = self._stated_position(iri)
        return found

    def _stated_position(self, iri: str) -> tuple:
        pos = self.m.literal(iri, SCHEMA + "position")
        try:
            return (int(pos), iri) if pos is not None else (10**9, iri)
        except ValueError:
            return (10**9, iri)

    def _date_label(self, iri: str) -> str:
        found = self._dates.get(iri)
        if found is None:
            found = self._dates[iri] = self._stated_date(iri)
        return found

    def _stated_date(self, iri: str) -> str:
        m = self.m
        stated = m.literal(iri, self.E + "statedDate")
        if stated:
            return stated
        for p in (DCTERMS + "date", SCHEMA + "startDate", DCTERMS + "issued"):
            for o in m.values(iri, p):
                if isinstance(o, ox.Literal):
                    pretty = format_date(o.value, o.datatype.value, m.precision(iri))
                    return pretty or o.value
        return ""

    # -- schema.org JSON-LD for search engines
    def schema_kind(self, s: str) -> str:
        """The schema.org type of ``s`` for search engines (remembered per set of types)."""
        types = tuple(sorted(self.m.types_of(s)))
        kind = self._schema_kinds.get(types)
        if kind is None:
            kind = self._schema_kinds[types] = self._schema_kind(s)
        return kind

    def _schema_kind(self, s: str) -> str:
        m = self.m
        kind = "Thing"
        for cls in sorted(m.types_of(s)):
            for sup in sorted(m.superclasses(cls), key=lambda c: (len(m.superclasses(c)) * -1, c)):
                if sup.startswith(self.E) and sup[len(self.E):] in SCHEMA_TYPES:
                    kind = SCHEMA_TYPES[sup[len(self.E):]]
                    break
            if kind != "Thing":
                break
        if m.is_a(s, FOAF + "Person"):
            kind = "Person"
        if m.is_a(s, VOID + "Dataset") or m.is_a(s, DCAT + "Dataset"):
            kind = "Dataset"
        return kind

    def schema_jsonld(self, s: str) -> Markup:
        m = self.m
        kind = self.schema_kind(s)
        doc: dict[str, Any] = {"@context": {"@vocab": SCHEMA}, "@type": kind, "@id": s, "url": s, "name": m.label(s)}
        desc = m.literal(s, SKOS + "definition", DCTERMS + "description", self.E + "purpose")
        if desc:
            doc["description"] = desc
        alt = m.literals(s, SKOS + "altLabel")
        if alt:
            doc["alternateName"] = alt
        same = m.objects(s, self.E + "wikidataItem") + m.objects(s, FOAF + "homepage")
        if same:
            doc["sameAs"] = same
        ident = m.literals(s, self.E + "gssCode") + m.literals(s, self.E + "registerCode")
        if ident:
            doc["identifier"] = ident
        text = m.literal(s, SCHEMA + "text")
        if text:
            doc["text"] = text
        date = m.literal(s, DCTERMS + "date")
        if date:
            doc["datePublished" if kind == "Report" else "dateCreated"] = date
        start = m.literal(s, SCHEMA + "startDate")
        if start:
            doc["startDate"] = start
        mentions = m.objects(s, SCHEMA + "mentions")
        if mentions:
            doc["mentions"] = [{"@id": x, "name": m.label(x)} for x in mentions]
        parent = m.objects(s, DCTERMS + "isPartOf")
        if parent:
            doc["isPartOf"] = {"@id": parent[0], "name": m.label(parent[0])}
        if m.objects(s, DCTERMS + "license"):
            doc["license"] = m.objects(s, DCTERMS + "license")[0]
        return script_json(doc)

    # -- a resource page
    def resource(self, s: str) -> dict:
        m = self.m
        path = m.page(s)
        up = "../" * path.count("/")
        self.here = m.label(s)
        description = []
        for p in DESCRIPTION_PROPERTIES + (self.E + "purpose",):
            for text in m.literals(s, p):
                description.append(text)
        skip = {SCHEMA + "text"} | set(DESCRIPTION_PROPERTIES) | ({self.E + "purpose"} if m.literals(s, self.E + "purpose") else set())
        ctx: dict[str, Any] = {
            "template": "resource.html",
            "path": path, "up": up, "iri": s, "title": m.label(s), "type": m.type_label(s),
            "context": m.context_label(s), "curie": m.prefixes.curie(s),
            "description": description,
            "rows": self.rows(s, up, skip=skip),
            "provenance": self.provenance(s, up),
            "recorded_in": self.recorded_in(s),
            "alternates": {"ttl": "index.ttl", "jsonld": "index.jsonld"},
            "jsonld": self.schema_jsonld(s),
            "text": self.section_text(s, up),
            "sections": [],
            "requirements": None,
        }
        is_involved = any(m.is_a(s, self.E + c) for c in ("Organisation",)) or m.is_a(s, ORG + "Organization") \
            or m.is_a(s, FOAF + "Person") or m.is_a(s, self.E + "Area") or m.is_a(s, FOAF + "Agent")
        ctx["involvement"] = self.involvement(s, up) if is_involved else []
        ctx["incoming"] = self.incoming(s, up, exclude_involvement=bool(ctx["involvement"]))
        if m.is_a(s, self.E + "RegionalUpdate"):
            ctx["sections"] = [self._section_block(sec, up) for sec in
                               sorted(m.objects(s, SCHEMA + "hasPart") or m.subjects(DCTERMS + "isPartOf", s), key=self._position)]
        if OWL + "Class" in m.types_of(s) or RDFS + "Class" in m.types_of(s):
            ctx["requirements"] = self.requirements_for(s, up)
            ctx["instance_count"] = len(m.instances(s))
        if s == m.project.ontology_iri:
            ctx.update(ontology_docs(self, up), template="ontology.html", nav_current="def/index.html")
        return ctx

    def _section_block(self, sec: str, up: str) -> dict:
        m = self.m
        return {
            "link": self.link(sec, up), "title": m.literal(sec, DCTERMS + "title") or m.label(sec),
            "anchor": "s-" + re.sub(r"[^A-Za-z0-9_-]", "-", local_name(sec)),
            "text": self.section_text(sec, up),
            "reports_on": [self.link(x, up) for x in m.objects(sec, self.E + "reportsOn")],
            "mentions": [dict(self.link(x, up), context=None) for x in
                         sorted(m.objects(sec, SCHEMA + "mentions"), key=lambda x: m.label(x).lower())],
            "provenance": self.provenance(sec, up),
        }

    # -- shapes → plain-language requirements
    def prepare_requirements(self) -> None:
        """Read the shapes once, in the main process (workers then never touch the shapes store)."""
        m = self.m
        classes = {s for cls in (OWL + "Class", RDFS + "Class") for s, _p in m.incoming(cls, (RDF_TYPE,))}
        self._requirements = {cls: requirements(m, cls, "", self) for cls in sorted(classes)}

    def requirements_for(self, cls: str, up: str) -> list[dict] | None:
        cached = getattr(self, "_requirements", None)
        rows = cached[cls] if cached is not None and cls in cached else requirements(self.m, cls, "", self)
        if rows is None:
            return None
        out = []
        for row in rows:
            prop = row.get("property")
            if prop and prop.get("href") and not re.match(r"^[a-z][a-z0-9+.-]*:", prop["href"]):
                row = dict(row, property=dict(prop, href=up + prop["href"]))
            out.append(row)
        return out


# --- shapes ---------------------------------------------------------------------------------------

def _shape_values(shapes: ox.Store, node, pred: str) -> list:
    return [q.object for q in shapes.quads_for_pattern(node, ox.NamedNode(pred), None, None)]


def _rdf_list(shapes: ox.Store, node) -> list:
    out = []
    seen = set()
    while isinstance(node, (ox.BlankNode, ox.NamedNode)) and node != ox.NamedNode(RDF + "nil") and node not in seen:
        seen.add(node)
        first = _shape_values(shapes, node, RDF + "first")
        if first:
            out.append(first[0])
        rest = _shape_values(shapes, node, RDF + "rest")
        node = rest[0] if rest else None
    return out


def requirements(m: Model, cls: str, up: str, pages: Pages) -> list[dict] | None:
    """What the shapes require of instances of ``cls`` (its own shapes, then those of its
    superclasses, which apply to its instances too): one row per property constraint."""
    shapes = m.data.shapes
    if shapes is None:
        return None
    rows = []
    for target in sorted(m.superclasses(cls), key=lambda c: (c != cls, m.term_label(c).lower(), c)):
        node_shapes = {q.subject for q in shapes.quads_for_pattern(None, ox.NamedNode(SH + "targetClass"), ox.NamedNode(target), None)}
        if ox.Quad(ox.NamedNode(target), ox.NamedNode(RDF_TYPE), ox.NamedNode(SH + "NodeShape"), ox.DefaultGraph()) in shapes:
            node_shapes.add(ox.NamedNode(target))
        inherited = None if target == cls else capitalise(m.term_label(target))
        found = []
        for shape in node_shapes:
            for prop in _shape_values(shapes, shape, SH + "property"):
                found.append(_property_requirement(m, shapes, prop, up, pages))
            if not _shape_values(shapes, shape, SH + "property"):
                for msg in _shape_values(shapes, shape, SH + "message"):
                    if isinstance(msg, ox.Literal):
                        found.append({"property": None, "rule": msg.value, "severity": _severity(shapes, shape), "note": ""})
            for sparql in _shape_values(shapes, shape, SH + "sparql"):
                for msg in _shape_values(shapes, sparql, SH + "message"):
                    if isinstance(msg, ox.Literal):
                        found.append({"property": None, "rule": msg.value, "severity": _severity(shapes, shape),
                                      "note": "checked by a query"})
        for row in found:
            row["inherited"] = inherited
        found.sort(key=lambda r: (r["property"] is None, (r["property"] or {}).get("label", "").lower(), r["rule"], r["note"]))
        rows.extend(found)
    unique = []
    seen = set()
    for row in rows:
        key = (json.dumps(row["property"], sort_keys=True), row["rule"], row["note"])
        if key not in seen:
            seen.add(key)
            unique.append(row)
    return unique


def _severity(shapes: ox.Store, node) -> str:
    sev = _shape_values(shapes, node, SH + "severity")
    if sev and isinstance(sev[0], ox.NamedNode):
        return {"Warning": "should", "Info": "may"}.get(local_name(sev[0].value), "must")
    return "must"


def _path_label(m: Model, shapes: ox.Store, path) -> tuple[str, str | None]:
    if isinstance(path, ox.NamedNode):
        return capitalise(m.term_label(path.value)), path.value
    inverse = _shape_values(shapes, path, SH + "inversePath")
    if inverse and isinstance(inverse[0], ox.NamedNode):
        return f"{capitalise(pagesafe_inverse(m, inverse[0].value))}", inverse[0].value
    seq = _rdf_list(shapes, path)
    if seq:
        return " / ".join(m.term_label(x.value) if isinstance(x, ox.NamedNode) else "…" for x in seq), None
    return "(a path)", None


def pagesafe_inverse(m: Model, p: str) -> str:
    return f"is {m.term_label(p)} of"


def _property_requirement(m: Model, shapes: ox.Store, prop, up: str, pages: Pages) -> dict:
    def one(pred):
        vals = _shape_values(shapes, prop, SH + pred)
        return vals[0] if vals else None

    path = one("path")
    label, path_iri = _path_label(m, shapes, path) if path is not None else ("(no path)", None)
    name = one("name")
    if isinstance(name, ox.Literal):
        label = capitalise(name.value)
    severity = _severity(shapes, prop)
    lo = one("minCount")
    hi = one("maxCount")
    lo_n = int(lo.value) if isinstance(lo, ox.Literal) and lo.value.isdigit() else 0
    hi_n = int(hi.value) if isinstance(hi, ox.Literal) and hi.value.isdigit() else None
    if lo_n and hi_n == lo_n:
        count = f"exactly {lo_n}"
    elif lo_n and hi_n:
        count = f"{lo_n} to {hi_n}"
    elif lo_n:
        count = f"at least {lo_n}"
    elif hi_n is not None:
        count = f"at most {hi_n}" if hi_n else "none"
    else:
        count = "any number"
    kinds = []
    datatype = one("datatype")
    if isinstance(datatype, ox.NamedNode):
        kinds.append(_datatype_words(datatype.value))
    klass = one("class")
    if isinstance(klass, ox.NamedNode):
        kinds.append(f"a {m.term_label(klass.value)}")
    kind = one("nodeKind")
    if isinstance(kind, ox.NamedNode):
        kinds.append({"IRI": "a link (IRI)", "Literal": "a value (literal)", "BlankNode": "a blank node",
                      "BlankNodeOrIRI": "a resource", "IRIOrLiteral": "a link or a value"}.get(local_name(kind.value), local_name(kind.value)))
    pattern = one("pattern")
    if isinstance(pattern, ox.Literal):
        kinds.append(f"matching the pattern {pattern.value}")
    languages = one("languageIn")
    if languages is not None:
        langs = [x.value for x in _rdf_list(shapes, languages) if isinstance(x, ox.Literal)]
        if langs:
            kinds.append("in language " + ", ".join(langs))
    choices = one("in")
    if choices is not None:
        names = [m.label(x.value) if isinstance(x, ox.NamedNode) else x.value for x in _rdf_list(shapes, choices)]
        if names:
            kinds.append("one of: " + ", ".join(names))
    has = one("hasValue")
    if has is not None:
        kinds.append("the value " + (m.label(has.value) if isinstance(has, ox.NamedNode) else has.value))
    for pred, words in (("minInclusive", "at least"), ("maxInclusive", "at most"), ("minExclusive", "more than"),
                        ("maxExclusive", "less than"), ("minLength", "at least this many characters:"),
                        ("maxLength", "at most this many characters:")):
        v = one(pred)
        if isinstance(v, ox.Literal):
            kinds.append(f"{words} {v.value}")
    if one("uniqueLang") is not None:
        kinds.append("one per language")
    verb = {"must": "Must have", "should": "Should have", "may": "May have"}[severity]
    name = label[:1].lower() + label[1:] if label[1:2].islower() else label
    if lo_n:
        rule = f"{verb} {count} {name}"
    elif hi_n is not None:
        rule = f"At most {hi_n} {name}" if hi_n else f"No {name}"
    else:
        rule = f"{label} (where given)"
    if kinds:
        rule += ": " + "; ".join(kinds)
    message = one("message")
    description = one("description")
    note = " ".join(x.value for x in (message, description) if isinstance(x, ox.Literal))
    target = m.page(path_iri) if path_iri else None
    return {"property": {"label": label, "href": (up + target) if target else path_iri, "curie": m.prefixes.curie(path_iri) if path_iri else None},
            "rule": rule, "severity": severity, "note": note, "count": count}


def _datatype_words(iri: str) -> str:
    words = {
        XSD + "string": "plain text", RDF + "langString": "text with a language tag (e.g. @en)",
        XSD + "integer": "a whole number", XSD + "decimal": "a decimal number", XSD + "date": "a date (YYYY-MM-DD)",
        XSD + "dateTime": "a date and time", XSD + "gYearMonth": "a month (YYYY-MM)", XSD + "gYear": "a year (YYYY)",
        XSD + "boolean": "true or false", XSD + "anyURI": "a web address", XSD + "nonNegativeInteger": "a whole number ≥ 0",
        XSD + "positiveInteger": "a whole number ≥ 1",
    }
    return words.get(iri, f"a value of type {local_name(iri)}")


# --- HTML fragments ---------------------------------------------------------------------------------
# The building blocks every page repeats (a value, a list of values, the property table, a list of
# links, the provenance list), written here rather than as jinja macros: a resource page has dozens
# of them, and jinja's macro calls and attribute lookups cost more than the page's own logic.
# ``macros.html`` exposes them to the templates under the same names. Each writes exactly what the
# jinja macro wrote: ``{{ x }}`` with autoescape is ``escape(x)`` (``None`` → "None"), a missing key is
# jinja's Undefined (nothing, and false).

def _esc(value: Any) -> str:
    """``escape`` as a plain ``str`` (joining a ``Markup`` with a ``str`` would escape the ``str``).
    Plain strings, nearly all values, take markupsafe's replacements directly."""
    if type(value) is str:
        return (value.replace("&", "&amp;").replace(">", "&gt;").replace("<", "&lt;")
                .replace("'", "&#39;").replace('"', "&#34;"))
    return str(escape(value))


def _out(item: Mapping, key: str) -> str:
    """``{{ item.key }}``: the escaped value, or nothing for a missing key."""
    return _esc(item[key]) if key in item else ""


def _suffix(v: Mapping) -> str:
    """The `` (context)`` and type tag after a link or text."""
    out = ""
    if v.get("context"):
        out += f' <span class="context">({_esc(v["context"])})</span>'
    if v.get("type"):
        out += f' <span class="tag">{_esc(v["type"])}</span>'
    return out


def _value_text(v: Mapping) -> str:
    kind = v.get("kind")
    if kind == "link":
        return f'<a href="{_out(v, "href")}">{_out(v, "label")}</a>{_suffix(v)}'
    if kind == "external":
        return f'<a class="external" href="{_out(v, "href")}">{_out(v, "label")}</a>'
    if kind == "code":
        return f"<code>{_out(v, 'label')}</code>"
    if kind == "date":
        if v.get("machine"):
            return f'<time datetime="{_esc(v["machine"])}">{_out(v, "label")}</time>'
        return _out(v, "label")
    if kind == "node":
        rows = "".join(f"<dt>{_out(row['prop'], 'label')}</dt><dd>{_values_text(row['values'])}</dd>" for row in v.get("rows") or ())
        return f'<dl class="node">{rows}</dl>'
    if kind == "text":
        return f"{_out(v, 'label')}{_suffix(v)}"
    text = f'<span lang="{_esc(v["lang"])}">{_out(v, "label")}</span>' if v.get("lang") else _out(v, "label")
    if v.get("datatype"):
        text += f' <span class="datatype">{_esc(v["datatype"])}</span>'
    return text


def _values_text(vs: Sequence[Mapping]) -> str:
    if not vs:
        return '<span class="none">–</span>'
    if len(vs) == 1:
        return _value_text(vs[0])
    return '<ul class="values">' + "".join(f"<li>{_value_text(v)}</li>" for v in vs) + "</ul>"


def value_html(v: Mapping) -> Markup:
    """One value (a dict with a ``kind``: link, external, code, date, node, text, literal)."""
    return Markup(_value_text(v))


def values_html(vs: Sequence[Mapping]) -> Markup:
    """A cell's values: a dash for none, the value for one, a list for more."""
    return Markup(_values_text(vs))


def inline_values_html(vs: Sequence[Mapping]) -> Markup:
    """Values in running text, separated by commas."""
    return Markup(", ".join(_value_text(v) for v in vs))


def link_list_html(items: Sequence[Mapping]) -> Markup:
    return Markup('<ul class="links">' + "".join(f"<li>{_value_text(v)}</li>" for v in items) + "</ul>")


def _provenance_item(e: Mapping) -> str:
    out = f"Section “{_esc(e['section'])}” of " if e.get("section") else ""
    if e.get("document"):
        out += _value_text(e["document"])
    if e.get("file"):
        lines = f", lines {_esc(e['start'])}–{_esc(e.get('end') or e['start'])}" if e.get("start") else ""
        out += f' <span class="file">{_esc(e["file"])}{lines}</span>'
    if e.get("section"):
        out += f' · <a href="{_out(e["source"], "href")}">section record</a>'
    return f"<li>{out}</li>\n"


def provenance_html(entries: Sequence[Mapping]) -> Markup:
    """Where a resource comes from: one item per source (section, document, file and lines)."""
    return Markup('<ul class="provenance">\n' + "".join(_provenance_item(e) for e in entries) + "</ul>")


def _property_row(row: Mapping) -> str:
    prop = row["prop"]
    if prop.get("href"):
        head = f'<a href="{_esc(prop["href"])}" title="{_out(prop, "curie")}">{_out(prop, "label")}</a>'
    else:
        head = f'<span title="{_out(prop, "curie")}">{_out(prop, "label")}</span>'
    return f'<tr><th scope="row">{head}</th><td>{_values_text(row["values"])}</td></tr>\n'


def property_table_html(rows: Sequence[Mapping]) -> Markup:
    """A resource's properties and their values."""
    return Markup('<div class="table-wrap">\n<table class="properties">\n'
                  '<thead><tr><th scope="col">Property</th><th scope="col">Value</th></tr></thead>\n<tbody>\n'
                  + "".join(_property_row(row) for row in rows) + "</tbody>\n</table>\n</div>")


def _cell_text(c: Any) -> str:
    """A table cell: text (escaped), one value, or a list of values."""
    if isinstance(c, str):
        return _esc(c)
    if isinstance(c, Mapping):
        return _value_text(c)
    return _values_text(c)


def table_html(t: Mapping) -> Markup:
    """A listing's table (``_table``: columns, rows, an optional caption); each row's first cell
    heads the row."""
    caption = f"<caption>{_esc(t['caption'])}</caption>" if t.get("caption") else ""
    head = "".join(f'<th scope="col">{_esc(c)}</th>' for c in t["columns"])
    rows = []
    for row in t["rows"]:
        cells = [f'<th scope="row">{_cell_text(c)}</th>' if i == 0 else f"<td>{_cell_text(c)}</td>" for i, c in enumerate(row)]
        rows.append("<tr>" + "".join(cells) + "</tr>\n")
    return Markup(f'<div class="table-wrap">\n<table>\n{caption}<thead><tr>{head}</tr></thead>\n<tbody>\n'
                  + "".join(rows) + "</tbody>\n</table>\n</div>")


FRAGMENTS = {"value_html": value_html, "values_html": values_html, "inline_values_html": inline_values_html,
             "link_list_html": link_list_html, "provenance_html": provenance_html,
             "property_table_html": property_table_html, "table_html": table_html}


# --- rendering --------------------------------------------------------------------------------------

_ENV = None


def environment():
    global _ENV
    if _ENV is None:
        import jinja2

        _ENV = jinja2.Environment(
            loader=jinja2.PackageLoader("emkg", "templates"),
            autoescape=True, trim_blocks=True, lstrip_blocks=True,
            keep_trailing_newline=True, auto_reload=False, cache_size=-1,
        )
        _ENV.filters["thousands"] = lambda n: f"{n:,}" if isinstance(n, int) else n
        _ENV.filters["bytes"] = human_bytes
        _ENV.globals["capitalise"] = capitalise
        _ENV.globals.update(FRAGMENTS)
    return _ENV


def _use_bytecode_cache(project: Project) -> None:
    """Keep the templates compiled in the work cache (``.cache/templates/``; jinja2 checks each
    entry against its template's source), unless the cache is off."""
    from .cache import cache_root, enabled

    env = environment()
    env.bytecode_cache = None
    if enabled():
        import jinja2

        folder = cache_root(project) / "templates"
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            log.debug("no template cache: %s", exc)
            return
        env.bytecode_cache = jinja2.FileSystemBytecodeCache(os.fspath(folder))


def human_bytes(n: int) -> str:
    size = float(n)
    for unit in ("bytes", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{int(size)} bytes" if unit == "bytes" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{n} bytes"


@dataclass
class Chrome:
    """What every page shares: navigation, footer facts."""

    date: str | None
    date_label: str | None
    title: str = D.TITLE
    nav: tuple = (
        ("index.html", "Home"), ("authorities/index.html", "Authorities"), ("updates/index.html", "Updates"),
        ("programmes/index.html", "Programmes"), ("people/index.html", "People"),
        ("organisations/index.html", "Organisations"), ("events/index.html", "Events"),
        ("publications/index.html", "Publications"), ("themes/index.html", "Themes"),
        ("glossary/index.html", "Glossary"), ("views/index.html", "Views"), ("def/index.html", "Ontology"),
        ("quality/index.html", "Data quality"),
    )
    _parts: dict[tuple[str, ...], Markup] = field(default_factory=dict, repr=False, compare=False)

    def part(self, name: str, up: str, current: str = "") -> Markup:
        """A piece of every page's frame (the macro ``name`` of ``macros.html``: the header with the
        navigation, the footer), rendered once per place in the site (``up``) and current page."""
        key = (name, up, current)
        html = self._parts.get(key)
        if html is None:
            macro = getattr(environment().get_template("macros.html").module, name)
            html = self._parts[key] = macro(self, up, current)
        return html


_STATE: dict[str, Any] = {}


def _write_page(out_dir: Path, rel: str, html: str) -> None:
    target = safe_join(out_dir, rel)
    target.parent.mkdir(parents=True, exist_ok=True)
    _write_file(str(target), html)


def _write_file(path: str, text: str) -> None:
    """Write ``text`` as UTF-8 (what ``Path.write_text`` does, with fewer calls: pages are many).

    Always into a new file (a new inode): a name already there, such as a file hard-linked from
    the previous output by an incremental build, is unlinked first, never written through."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    except FileExistsError:
        os.unlink(path)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        data = text.encode("utf-8")
        while data:
            data = data[os.write(fd, data):]
    finally:
        os.close(fd)


def _write_resource_files(out_dir: Path, folder: str, files: Sequence[tuple[str, str]]) -> None:
    """Write a resource's files (name, text) into its folder, made once."""
    target = str(safe_join(out_dir, folder))
    os.makedirs(target, exist_ok=True)
    for name, text in files:
        _write_file(f"{target}/{name}", text)


def render_template(name: str, ctx: dict, chrome: Chrome) -> str:
    env = environment()
    values = dict(ctx)
    values.setdefault("nav_current", "")
    return env.get_template(name).render(chrome=chrome, **values)


def _render_resources(iris: Sequence[str]) -> int:
    """Render a batch of resource pages (in a worker, or inline). Uses the module state."""
    pages: Pages = _STATE["pages"]
    chrome: Chrome = _STATE["chrome"]
    out_dir: Path = _STATE["out_dir"]
    m = pages.m
    prefixes = m.prefixes
    writer = D.TurtleWriter(prefixes)  # shared by the batch: it remembers each term's Turtle text
    for iri in iris:
        ctx = pages.resource(iri)
        html = render_template(ctx["template"], ctx, chrome)
        folder, name = m.paths[iri].rsplit("/", 1)
        grouped = _own_graph(m, iri)
        used = D.used_prefixes(grouped, prefixes)
        _write_resource_files(out_dir, folder, ((name, html), ("index.ttl", D.turtle_text(grouped, writer, used=used)),
                                                ("index.jsonld", D.jsonld_text(grouped, prefixes, used))))
    return len(iris)


def _worker_init() -> None:
    """Workers leave signals to the parent: it cleans up and terminates the pool. (They inherit
    the parent's collector: paused under the ``emkg`` command, see ``heap.py``.)"""
    import signal

    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _own_graph(m: Model, iri: str) -> D.SubjectMap:
    """The resource's own triples, with any blank nodes it refers to (recursively), grouped by
    subject as the writers take them (the model holds them grouped already)."""
    out: D.SubjectMap = {}
    todo = [iri]
    seen = set()
    while todo:
        key = todo.pop()
        if key in seen:
            continue
        seen.add(key)
        pmap = m.statements(key) or None
        if not pmap:
            continue
        out[ox.NamedNode(key) if not key.startswith("_:") else ox.BlankNode(key[2:])] = pmap
        todo.extend("_:" + o.value for objs in pmap.values() for o in objs if isinstance(o, ox.BlankNode))
    return out


@dataclass
class PageKeys:
    """What the pages other than resource pages (listings, views, the search index...) were made
    from, for an incremental build to reuse those it would render the same: the key of each
    file's path in the last build (``old``) and in this one (``new``, filled by ``render_site``).

    Pages made from the graph alone are in *groups* (``PAGE_GROUPS``), so that an edit that
    cannot change them spares making them at all, not only writing them: ``groups`` records per
    group its files, a key of its other inputs and what building it read (``Reads.plain``), in
    the last build (``old_groups``) and this one (``new_groups``); the incremental planner names
    in ``unaffected`` the groups none of whose reads the edit changed (and ``views`` only when
    every view's rows are the last build's)."""

    old: Mapping[str, str] = field(default_factory=dict)
    new: dict[str, str] = field(default_factory=dict)
    old_groups: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    new_groups: dict[str, dict[str, Any]] = field(default_factory=dict)
    unaffected: set[str] = field(default_factory=set)


class _KeyPickler(pickle.Pickler):
    """Pickles plain data only (dicts, lists, tuples, strings, Markup, numbers...): anything else
    could render differently with the same pickle, so it makes the page key-less (rendered)."""

    def reducer_override(self, obj: Any) -> Any:
        if type(obj) is Markup:
            return NotImplemented
        raise TypeError(f"not plain data: {type(obj).__name__}")


def content_key(*parts: Any) -> str | None:
    """A key of what a file is made from (templates, code and every page's frame are in the
    incremental build's global fingerprint); None when it cannot be told (not plain data)."""
    import io

    buffer = io.BytesIO()
    try:
        _KeyPickler(buffer, protocol=5).dump(parts)
    except (TypeError, pickle.PicklingError, RecursionError) as exc:
        log.debug("no page key: %s", exc)
        return None
    return hashlib.sha256(buffer.getbuffer()).hexdigest()


@dataclass
class SiteStats:
    pages: int = 0
    resource_pages: int = 0
    files: int = 0
    reused: int = 0  # resource pages left unchanged in the previous output (incremental builds)
    reused_files: int = 0  # other pages and files left unchanged in the previous output
    special_files: int = 0  # the other pages and files (made or reused)


def _site_input(project: Project, graph, *, store: ox.Store | None, shapes, locations, date: str | None,
                endpoint: str | None) -> SiteInput:
    return SiteInput(
        project=project, store=store if store is not None else graph.store, prefixes=dict(graph.prefixes),
        locations=(locations if locations is not None
                   else graph.index.subjects if getattr(graph, "index", None) is not None else {}),
        shapes=shapes.store if shapes is not None and hasattr(shapes, "store") else shapes,
        date=date, endpoint=endpoint,
    )


@dataclass
class EarlyPages:
    """The resource pages of a build that renders every page, started by ``start_resource_pages``
    before the dumps and views are written, so that the workers render while this process writes
    those (on two cores, neither waits for the other). ``render_site(early=...)`` takes them over:
    it writes the other pages and collects the workers' counts. ``close`` ends the workers (a build
    that failed before it finished); it is a no-op once ``render_site`` has collected them."""

    data: SiteInput
    model: Model
    pages: Pages
    chrome: Chrome
    out_dir: Path
    workers: _Workers

    def close(self) -> None:
        self.workers.close()


def start_resource_pages(project: Project, graph, out_dir: Path, *, shapes=None, date: str | None = None,
                         endpoint: str | None = None, jobs: int = 0, store: ox.Store | None = None,
                         locations: Mapping[str, Sequence[Any]] | None = None) -> EarlyPages | None:
    """Start rendering every resource page into ``out_dir`` in worker processes, from ``store``
    as it is now (the workers are forked: what the caller changes in it afterwards, they do not
    see). None, and nothing started, where the pages would be rendered in this process anyway
    (one core or job, too few pages, no ``fork``)."""
    processes = _processes(jobs)
    if processes < 2:
        return None
    data = _site_input(project, graph, store=store, shapes=shapes, locations=locations, date=date, endpoint=endpoint)
    _use_bytecode_cache(project)
    model = Model(data, read_all=True)  # (every statement is read anyway, and the subjects with them)
    if len(model.paths) < PARALLEL_THRESHOLD:
        return None
    pages = Pages(model)
    pages.prepare_requirements()
    chrome = _chrome(date)
    out_dir.mkdir(parents=True, exist_ok=True)
    workers = _Workers(pages, chrome, out_dir, sorted(model.paths), processes)
    log.info("site: %d resource pages started in %d worker processes, before the dumps and views", workers.total,
             workers.processes)
    return EarlyPages(data, model, pages, chrome, out_dir, workers)


def _chrome(date: str | None) -> Chrome:
    return Chrome(date=date, date_label=format_date(date[:10], XSD + "date") if date else None)


def _processes(jobs: int) -> int:
    """How many processes may render pages: ``jobs``, or one per CPU (0); one without ``fork``."""
    if "fork" not in multiprocessing.get_all_start_methods():
        return 1
    return jobs if jobs and jobs > 0 else (os.cpu_count() or 1)


class _Workers:
    """A pool of forked processes rendering resource pages in batches (``_render_resources``,
    from the module state they inherit); they start at once. ``collect`` waits for them;
    ``close`` ends them (if still running) and releases what they were given."""

    def __init__(self, pages: Pages, chrome: Chrome, out_dir: Path, iris: Sequence[str], processes: int) -> None:
        batches = [iris[i:i + BATCH_SIZE] for i in range(0, len(iris), BATCH_SIZE)]
        self.total = len(iris)
        self.processes = min(processes, len(batches))
        _STATE.update(pages=pages, chrome=chrome, out_dir=out_dir)
        gc.freeze()  # the workers only read the model: their collections need not walk (and so copy) it
        self._pool = None
        try:
            self._pool = multiprocessing.get_context("fork").Pool(processes=self.processes, initializer=_worker_init)
        except BaseException:
            self.close()
            raise
        self._counts = self._pool.imap_unordered(_render_resources, batches)

    @property
    def running(self) -> bool:
        """Started and not yet ended (``close``)."""
        return self._pool is not None

    def collect(self, tick: Callable[[str, int, int], None]) -> int:
        """Wait for every page (ticking as batches are done); how many."""
        done = 0
        for count in self._counts:
            done += count
            tick("resource pages", done, self.total)
        return self.total

    def close(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            pool.terminate()
            pool.join()
        gc.unfreeze()
        _STATE.clear()


def render_site(project: Project, graph, report, views, out_dir: Path, *, shapes=None, dumps: Sequence[Any] = (),
                description: Any = None, date: str | None = None, endpoint: str | None = None, jobs: int = 0,
                progress: Callable[[str, int, int], None] | None = None, store: ox.Store | None = None,
                select: Callable[[Model, Pages], tuple[Collection[str] | None, Path | None]] | None = None,
                page_keys: PageKeys | None = None, locations: Mapping[str, Sequence[Any]] | None = None,
                early: EarlyPages | None = None) -> SiteStats:
    """Write the HTML site into ``out_dir``.

    ``graph``: the LoadedGraph (its store holds ontology + data; pass ``store`` to render another
    store, e.g. with the dataset description added). ``report``: the validation Report, or a
    function that gives it (called once, by the last pages made: those that show it).
    ``views``: (View, Result | None, error | None) triples. ``dumps``: the written Dump records.
    ``select`` (incremental builds, see ``incremental.py``): given the model, the resource IRIs to
    render and the previous output; every other resource page is left there (and not written:
    the build updates that output in place), unless one of its files is missing from it (then it
    is rendered after all). None renders every page.
    ``page_keys`` (incremental builds): the other pages and files are keyed by what they are made
    from (``content_key``); one whose key is the last build's, and which is in the previous
    output (when ``select`` names it), is left there rather than rendered. The new keys are left
    in ``page_keys.new``.
    ``locations``: where each subject is written (default: the graph's line index).
    ``early``: the resource pages, already being rendered into ``out_dir`` (``start_resource_pages``;
    ``store``, ``shapes``, ``locations``, ``date`` and ``endpoint`` are then the ones given there);
    ``select`` must then render every page.
    """
    tick = progress or (lambda _step, _done, _total: None)
    if early is not None:
        data, model, pages, chrome = early.data, early.model, early.pages, early.chrome
        if early.out_dir != out_dir:
            raise ValueError(f"the resource pages are being rendered into {early.out_dir}, not {out_dir}")
    else:
        data = _site_input(project, graph, store=store, shapes=shapes, locations=locations, date=date, endpoint=endpoint)
        _use_bytecode_cache(project)
        model = Model(data)
        pages = Pages(model)
        pages.prepare_requirements()
        chrome = _chrome(date)
    data.report, data.views, data.dumps, data.description = report, list(views), list(dumps), description
    out_dir.mkdir(parents=True, exist_ok=True)
    stats = SiteStats()

    # static files
    static_out = out_dir / "static"
    static_out.mkdir(exist_ok=True)
    for item in sorted(STATIC_DIR.iterdir()):
        if item.is_file():
            shutil.copyfile(item, static_out / item.name)
            stats.files += 1

    # resource pages (an incremental build renders only ``only``: the others stay in ``reuse``)
    iris = sorted(model.paths)
    only, reuse = select(model, pages) if select is not None else (None, None)
    if early is not None:
        if only is not None:
            early.close()
            raise RuntimeError("an incremental build was planned after every resource page was started")
        total = _render_pages(pages, data, chrome, out_dir, stats, tick, page_keys, None, iris, jobs, early.workers)
    else:
        if only is None:
            model.read_all()  # every page: read every statement at once
        _STATE.update(pages=pages, chrome=chrome, out_dir=out_dir)
        try:
            if only is not None and reuse is not None:
                kept = [iri for iri in iris if iri not in only]
                missing = set(_missing_pages(model, kept, reuse))
                if missing:
                    log.info("site: %d resource pages missing from the previous output: rendered", len(missing))
                stats.reused = len(kept) - len(missing)
                iris = [iri for iri in iris if iri in only or iri in missing]
            total = _render_pages(pages, data, chrome, out_dir, stats, tick, page_keys, reuse, iris, jobs)
        finally:
            _STATE.clear()
    stats.resource_pages = total + stats.reused
    stats.pages += total + stats.reused
    stats.files += stats.pages + 2 * (total + stats.reused)
    return stats


def _render_pages(pages: Pages, data: SiteInput, chrome: Chrome, out_dir: Path, stats: SiteStats,
                  tick: Callable[[str, int, int], None], page_keys: PageKeys | None, reuse: Path | None,
                  iris: Sequence[str], jobs: int, workers: _Workers | None = None) -> int:
    """The resource pages ``iris`` (by a pool of processes when they are many, or by ``workers``
    already rendering them) and the special pages (meanwhile, in this process); how many resource
    pages."""
    total = len(iris)
    if workers is None and total >= PARALLEL_THRESHOLD and _processes(jobs) > 1:
        workers = _Workers(pages, chrome, out_dir, iris, _processes(jobs))
    if workers is not None:
        try:
            _write_special_pages(pages, data, chrome, out_dir, stats, tick, page_keys, reuse)  # while the workers render
            return workers.collect(tick)
        finally:
            workers.close()
    done = 0
    _write_special_pages(pages, data, chrome, out_dir, stats, tick, page_keys, reuse, GRAPH_GROUPS)
    for batch in (iris[i:i + BATCH_SIZE] for i in range(0, total, BATCH_SIZE)):
        done += _render_resources(batch)
        tick("resource pages", done, total)
    # last, the pages that show the validation report (which may still be on its way)
    _write_special_pages(pages, data, chrome, out_dir, stats, tick, page_keys, reuse, REPORT_GROUPS)
    return total


GRAPH_GROUPS = ("listings", "views")  # the page groups made from the graph (``page_groups``)
REPORT_GROUPS = ("home", "quality")  # the page groups that show the validation report


def _write_special_pages(pages: Pages, data: SiteInput, chrome: Chrome, out_dir: Path, stats: SiteStats,
                         tick: Callable[[str, int, int], None], keys: PageKeys | None = None,
                         previous: Path | None = None, names: Sequence[str] = GRAPH_GROUPS + REPORT_GROUPS) -> None:
    """The listing and special pages, and the search index (always in the main process), of the
    groups ``names`` (``page_groups``). With ``keys``, each file is keyed by what it is made from;
    with ``previous`` too, a file whose key is the last build's, and which is there, is left
    there (not written), and a group of pages the edit cannot change (``PageKeys``) is not even
    made."""

    def kept(rel: str, key: str | None) -> bool:
        if keys is None or key is None:
            return False
        keys.new[rel] = key
        if previous is None or keys.old.get(rel) != key or not safe_join(previous, rel).is_file():
            return False
        stats.reused_files += 1
        return True

    made = 0
    built: dict[str, dict[str, Any]] = {}
    groups = page_groups(pages, data)
    for name in names:
        group_key, make = groups[name]
        if keys is not None and previous is not None and _group_kept(keys, name, group_key, previous):
            log.info("site: the %s pages are the last build's (the edit changed nothing they read)", name)
            for rel in keys.old_groups[name]["files"]:
                keys.new[rel] = keys.old[rel]
            keys.new_groups[name] = dict(keys.old_groups[name])
            stats.reused_files += len(keys.old_groups[name]["files"])
            stats.pages += keys.old_groups[name]["pages"]
            made += len(keys.old_groups[name]["files"])
            continue
        files: list[str] = []
        special = make()
        for ctx in special:
            rel = ctx["path"]
            files.append(rel)
            if not kept(rel, content_key(ctx["template"], ctx) if keys is not None else None):
                _write_page(out_dir, rel, render_template(ctx["template"], ctx, chrome))
            made += 1
            tick("pages", made, made)
        stats.pages += len(special)
        if name == "listings":
            entries = search_entries(pages)
            key = content_key("search", entries) if keys is not None else None
            for rel, write in extra_files(pages, data, entries).items():
                files.append(rel)
                if not kept(rel, content_key(rel, key) if key is not None else None):
                    _write_page(out_dir, rel, write())
                stats.files += 1
                made += 1
        if group_key is not None and keys is not None and all(rel in keys.new for rel in files):
            built[name] = {"files": files, "pages": len(special), "key": group_key}
    if keys is not None and built:
        reads = pages.m.reads.plain()  # everything read so far (remembered labels included)
        for name, entry in built.items():
            keys.new_groups[name] = dict(entry, reads=reads)
    stats.special_files += made
    if keys is not None and previous is not None and names[-1] == REPORT_GROUPS[-1]:
        log.info("site: %d of %d listing, view and other pages reused (made from the same data)",
                 stats.reused_files, stats.special_files)


def _group_kept(keys: PageKeys, name: str, group_key: str | None, previous: Path) -> bool:
    """Whether the group ``name`` is the last build's: no edit it reads, the same other inputs,
    and all its files in the previous output."""
    old = keys.old_groups.get(name)
    if old is None or group_key is None or old.get("key") != group_key or name not in keys.unaffected:
        return False
    if any(rel not in keys.old for rel in old["files"]):
        return False
    return all(safe_join(previous, rel).is_file() for rel in old["files"])


def _missing_pages(m: Model, iris: Sequence[str], previous: Path) -> list[str]:
    """The IRIs among ``iris`` one of whose files is not in the previous output (page paths are
    safe by construction, ``resource_dir``; files are only ever written through ``safe_join``)."""
    missing = []
    root = os.fspath(previous)
    for iri in iris:
        folder = m.paths[iri].rpartition("/")[0]
        for name in RESOURCE_FILES:
            if not os.path.isfile(f"{root}/{folder}/{name}"):
                missing.append(iri)
                break
    return missing


# --- listing and special pages ---------------------------------------------------------------------

def _ctx(template: str, path: str, title: str, nav: str, **extra) -> dict:
    return {"template": template, "path": path, "up": "../" * path.count("/"), "title": title,
            "nav_current": nav, **extra}


def _text(label: str) -> dict:
    return {"kind": "literal", "label": label, "lang": None}


def _table(columns: Sequence[str], rows: list[list], caption: str | None = None) -> dict:
    return {"columns": list(columns), "rows": rows, "caption": caption}


def page_groups(pages: Pages, data: SiteInput) -> dict[str, tuple[str | None, Callable[[], list[dict]]]]:
    """The pages that are not resource pages, by group: name -> (a key of what the group is made
    from besides the graph, or None when it is made from more than that; what makes its pages).
    ``listings`` (and the search index, ``extra_files``) are made from the graph and its prefixes;
    ``views`` from the graph and the views' definitions and rows; ``home`` (the dataset's counts,
    dumps and validation summary) and ``quality`` (the validation report) are always made, last
    (``report``)."""
    m = pages.m

    def listings() -> list[dict]:
        out = [authorities_page(pages), updates_page(pages), programmes_page(pages), people_page(pages),
               organisations_page(pages), events_page(pages), publications_page(pages), themes_page(pages),
               glossary_page(pages), search_page(pages)]
        if m.page(m.project.ontology_iri) is None:
            out.append(ontology_page(pages, "def/index.html"))
        return out

    views_key = None
    if getattr(data, "views", None) is not None:
        views_key = content_key("views", sorted(m.prefixes.mapping.items()), [
            (v.name, v.title, v.description, v.text, [(p.name, p.type, p.required, p.description) for p in getattr(v, "params", ())],
             result is not None, error) for v, result, error in _view_items(data)])
    return {
        "listings": (content_key("listings", sorted(m.prefixes.mapping.items())), listings),
        "views": (views_key, lambda: views_pages(pages, data)),
        "home": (None, lambda: [home_page(pages, data)]),
        "quality": (None, lambda: [quality_page(pages, data)]),
    }


def extra_files(pages: Pages, data: SiteInput, entries: list[dict]) -> dict[str, Callable[[], str]]:
    """The site's other files (path: a function that makes its text); ``entries``: the search entries."""

    def index_json() -> str:
        return index_json_text(entries)

    def script() -> str:
        return ("/* The search index of the emkg site: label, type, url (relative to the site root). */\n"
                "window.EMKG_SEARCH = " + str(script_json(entries)) + ";\n")

    # .nojekyll: GitHub Pages would otherwise hide folders starting with "_" (such as _r/)
    return {"search-index.json": index_json, "search/index.js": script, ".nojekyll": lambda: ""}


def counts(pages: Pages, data: SiteInput) -> list[tuple[str, int, str | None]]:
    m, E = pages.m, pages.E
    desc = data.description
    rows = [
        ("Triples", desc.total_triples if desc else len(data.store), None),
        ("Entities (resources under /id/)", desc.entities if desc else sum(1 for k in m.subject_keys() if k.startswith(m.project.id_base)), None),
        ("Classes in use", desc.classes if desc else len({t for _s, ts in m.typed() for t in ts}), "def/index.html"),
        ("Local authorities", len(m.instances(E + "LocalAuthority")), "authorities/index.html"),
        ("Regional updates", len(m.instances(E + "RegionalUpdate")), "updates/index.html"),
        ("Update sections", len(m.instances(E + "UpdateSection")), "updates/index.html"),
        ("Programmes and workstreams", len(m.instances(E + "Programme")), "programmes/index.html"),
        ("People", len(m.instances(FOAF + "Person")), "people/index.html"),
        ("Other organisations and groups", len(_other_organisations(pages)), "organisations/index.html"),
        ("Events", len(m.instances(E + "Event")), "events/index.html"),
        ("Publications", len(m.instances(E + "Publication")), "publications/index.html"),
        ("Glossary terms", len(m.instances(E + "GlossaryTerm")), "glossary/index.html"),
    ]
    return rows


def _updates_by_date(pages: Pages) -> list[str]:
    m = pages.m
    return sorted(m.instances(pages.E + "RegionalUpdate"), key=lambda u: (m.date_of(u), u))


def home_page(pages: Pages, data: SiteInput) -> dict:
    m = pages.m
    up = ""
    updates = _updates_by_date(pages)
    latest = None
    if updates:
        u = updates[-1]
        latest = {"link": pages.link(u, up), "date": pages._date_label(u),
                  "sections": [dict(pages.link(x, up), context=None, label=m.literal(x, DCTERMS + "title") or m.label(x))
                               for x in sorted(m.objects(u, SCHEMA + "hasPart"), key=pages._position)]}
    dumps = [{"name": d.name, "title": d.title, "size": d.size, "sha256": d.sha256, "media_type": d.media_type}
             for d in data.dumps]
    views = [{"name": v.name, "title": v.title, "href": f"views/{v.name}.html"} for v, _r, _e in _view_items(data)]
    report = _report(data)
    quality = report.summary() if report is not None and hasattr(report, "summary") else None
    sources = [pages.link(x, up) for x in m.instances(pages.E + "SourceDocument")]
    example_view = views[0]["name"] if views else "authorities"
    return _ctx("home.html", "index.html", D.TITLE, "index.html",
                intro=D.DESCRIPTION, counts=[{"label": a, "n": b, "href": c} for a, b, c in counts(pages, data)],
                latest=latest, dumps=dumps, views=views, endpoint=data.endpoint, quality=quality,
                sources=sources, example_view=example_view, base=m.base, date_label=None,
                dataset=pages.link(D.dataset_iri(m.project), up) if m.page(D.dataset_iri(m.project)) else None,
                ontology=pages.link(m.project.ontology_iri, up) if m.has(m.project.ontology_iri) else None)


def authorities_page(pages: Pages) -> dict:
    m, E = pages.m, pages.E
    path = "authorities/index.html"
    up = "../"
    authorities = m.instances(E + "LocalAuthority")
    counties = sorted(m.instances(E + "County"), key=lambda c: m.label(c).lower())
    placed: set[str] = set()
    sections = []

    def row(a: str) -> list:
        status = []
        for p, words in ((SCHEMA + "dissolutionDate", "dissolved"), (SCHEMA + "foundingDate", "founded")):
            for o in m.values(a, p):
                if isinstance(o, ox.Literal):
                    status.append(_text(f"{words} {format_date(o.value, o.datatype.value) or o.value}"))
        for r in m.objects(a, DCTERMS + "isReplacedBy"):
            status.append(pages.link(r, up))
        return [pages.link(a, up), _text(m.type_label(a)), [_text(x) for x in m.literals(a, E + "gssCode")],
                [_text(x) for x in m.literals(a, E + "registerCode")],
                [pages.value(ox.NamedNode(w), up) for w in m.objects(a, FOAF + "homepage")], status]

    columns = ("Authority", "Kind", "GSS code", "Register code", "Website", "Status")
    for county in counties:
        members = [a for a in authorities if county in m.objects(a, E + "inCounty") or county in m.objects(a, E + "ceremonialCounty")]
        if not members:
            continue
        members.sort(key=lambda a: (not m.is_a(a, E + "CountyCouncil"), bool(m.values(a, SCHEMA + "dissolutionDate")), m.label(a).lower()))
        placed.update(members)
        sections.append({"heading": m.label(county), "id": "county-" + local_name(county), "link": pages.link(county, up),
                         "table": _table(columns, [row(a) for a in members])})
    rest = sorted((a for a in authorities if a not in placed), key=lambda a: m.label(a).lower())
    if rest:
        sections.append({"heading": "Other authorities", "id": "other", "link": None,
                         "intro": "Authorities not placed in one of the region's counties (for example outside the region, or a national park authority).",
                         "table": _table(columns, [row(a) for a in rest])})
    return _ctx("listing.html", path, "Local authorities", path,
                intro=[f"{len(authorities)} authorities, grouped by the county they lie in (districts by their two-tier county, "
                       "county and unitary councils by their ceremonial county). Each authority's page lists every update, "
                       "programme and event that involves it."],
                sections=sections, toc=[{"id": x["id"], "label": x["heading"]} for x in sections])


def updates_page(pages: Pages) -> dict:
    m, E = pages.m, pages.E
    path = "updates/index.html"
    up = "../"
    years: dict[str, list] = defaultdict(list)
    for u in _updates_by_date(pages):
        date = m.date_of(u)
        sections = []
        for sec in sorted(m.objects(u, SCHEMA + "hasPart") or m.subjects(DCTERMS + "isPartOf", u), key=pages._position):
            sections.append({"link": dict(pages.link(sec, up), label=m.literal(sec, DCTERMS + "title") or m.label(sec)),
                             "programmes": [pages.link(x, up) for x in m.objects(sec, E + "reportsOn")]})
        years[date[:4] or "Undated"].append({
            "link": pages.link(u, up), "date": pages._date_label(u), "machine": date,
            "period": m.literal(u, E + "coversPeriod"), "sections": sections,
        })
    timeline = [{"year": y, "updates": years[y]} for y in sorted(years)]
    return _ctx("timeline.html", path, "Regional updates", path, timeline=timeline,
                intro=["The regional updates in date order, each with its sections and the programmes they report on."])


def _appearances(pages: Pages, target: str, up: str) -> list[dict]:
    """Updates (by date) whose sections report on or mention ``target``."""
    m, E = pages.m, pages.E
    found: dict[str, set[str]] = defaultdict(set)
    for subj, _p in m.incoming(target, (E + "reportsOn", SCHEMA + "mentions")):
        if m.is_a(subj, E + "UpdateSection"):
            for u in m.objects(subj, DCTERMS + "isPartOf"):
                found[u].add(subj)
    out = []
    for u in sorted(found, key=lambda x: (m.date_of(x), x)):
        link = pages.link(u, up)
        link = dict(link, label=pages._date_label(u) or link["label"])
        out.append(link)
    return out


def programmes_page(pages: Pages) -> dict:
    m, E = pages.m, pages.E
    path = "programmes/index.html"
    up = "../"
    rows = []
    for p in sorted(m.instances(E + "Programme"), key=lambda x: m.label(x).lower()):
        rows.append([pages.link(p, up), _text(m.type_label(p)), [_text(x) for x in m.literals(p, SKOS + "altLabel")],
                     [pages.link(x, up) for x in m.objects(p, E + "ledBy")], _appearances(pages, p, up)])
    table = _table(("Programme", "Kind", "Also known as", "Led by", "Appears in updates"), rows)
    return _ctx("listing.html", path, "Programmes and workstreams", path,
                intro=["Each programme is one resource across the years: the last column lists every update that reports on it or mentions it."],
                sections=[{"heading": None, "id": "programmes", "link": None, "table": table}], toc=[])


def people_page(pages: Pages) -> dict:
    m, E = pages.m, pages.E
    path = "people/index.html"
    up = "../"
    sections = []
    rows = []
    for person in sorted(m.instances(FOAF + "Person"), key=lambda x: m.label(x).lower()):
        posts = [pages.link(x, up) for x in m.objects(person, ORG + "holds")]
        memberships = [pages.link(x, up) for x in m.subjects(ORG + "member", person)]
        rows.append([pages.link(person, up), posts, memberships, _appearances(pages, person, up)])
    sections.append({"heading": "People", "id": "people", "link": None,
                     "table": _table(("Person", "Posts held", "Memberships", "Mentioned in updates"), rows)})
    trustees = m.instances(E + "TrusteeMembership")
    if trustees:
        trows = []
        for t in sorted(trustees, key=lambda x: m.label(x).lower()):
            trows.append([pages.link(t, up), [pages.link(x, up) for x in m.objects(t, ORG + "member")],
                          [pages.link(x, up) for x in m.objects(t, ORG + "role")],
                          [pages.link(x, up) for x in m.objects(t, E + "region")]])
        sections.append({"heading": "Trustees", "id": "trustees", "link": None,
                         "table": _table(("Membership", "Member", "Role", "Region"), trows)})
    posts = m.instances(ORG + "Post")
    if posts:
        prow = []
        for post in sorted(posts, key=lambda x: m.label(x).lower()):
            holders = [pages.link(x, up) for x in m.subjects(ORG + "holds", post)] or [_text("not named in the sources")]
            prow.append([pages.link(post, up), [pages.link(x, up) for x in m.objects(post, ORG + "postIn")],
                         [pages.link(x, up) for x in m.objects(post, ORG + "role")], holders])
        sections.append({"heading": "Posts", "id": "posts", "link": None,
                         "table": _table(("Post", "In", "Role", "Holder"), prow)})
    return _ctx("listing.html", path, "People, trustees and posts", path, intro=[], sections=sections,
                toc=[{"id": x["id"], "label": x["heading"]} for x in sections])


def _other_organisations(pages: Pages) -> list[str]:
    m, E = pages.m, pages.E
    found = set(m.instances(E + "Organisation")) | set(m.instances(ORG + "Organization"))
    return sorted(x for x in found if not m.is_a(x, E + "LocalAuthority") and not x.startswith(m.base + "dataset"))


def organisations_page(pages: Pages) -> dict:
    m = pages.m
    path = "organisations/index.html"
    up = "../"
    groups: dict[str, list[str]] = defaultdict(list)
    for org in _other_organisations(pages):
        groups[m.type_label(org) or "Organisation"].append(org)
    sections = []
    for kind in sorted(groups):
        rows = [[pages.link(o, up), [_text(x) for x in m.literals(o, SKOS + "altLabel")],
                 [pages.value(ox.NamedNode(w), up) for w in m.objects(o, FOAF + "homepage")],
                 [pages.link(x, up) for x in m.objects(o, ORG + "subOrganizationOf")],
                 _appearances(pages, o, up)]
                for o in sorted(groups[kind], key=lambda x: m.label(x).lower())]
        sections.append({"heading": kind, "id": "kind-" + re.sub(r"[^a-z0-9]+", "-", kind.lower()), "link": None,
                         "table": _table(("Name", "Also known as", "Website", "Part of", "Mentioned in updates"), rows)})
    return _ctx("listing.html", path, "Organisations, groups and networks", path,
                intro=["Partner organisations, government bodies, groups, networks and boards (local authorities have their own list)."],
                sections=sections, toc=[{"id": x["id"], "label": x["heading"]} for x in sections])


def events_page(pages: Pages) -> dict:
    m, E = pages.m, pages.E
    path = "events/index.html"
    up = "../"
    rows = []
    for ev in sorted(m.instances(E + "Event"), key=lambda x: (m.date_of(x), m.label(x).lower())):
        rows.append([pages.link(ev, up), _text(pages._date_label(ev)), _text(m.type_label(ev)),
                     [pages.link(x, up) for x in m.objects(ev, SCHEMA + "organizer") + m.objects(ev, E + "hostedBy")],
                     _appearances(pages, ev, up)])
    return _ctx("listing.html", path, "Events", path, intro=["Events and meetings in date order."],
                sections=[{"heading": None, "id": "events", "link": None,
                           "table": _table(("Event", "Date", "Kind", "Organised or hosted by", "Mentioned in updates"), rows)}], toc=[])


def publications_page(pages: Pages) -> dict:
    m, E = pages.m, pages.E
    path = "publications/index.html"
    up = "../"
    rows = []
    for pub in sorted(m.instances(E + "Publication"), key=lambda x: m.label(x).lower()):
        rows.append([pages.link(pub, up), _text(m.type_label(pub)),
                     [pages.link(x, up) for x in m.objects(pub, DCTERMS + "creator") + m.objects(pub, E + "commissionedBy")],
                     [pages.value(ox.NamedNode(x), up) for x in m.objects(pub, SCHEMA + "url")],
                     _appearances(pages, pub, up)])
    return _ctx("listing.html", path, "Publications", path, intro=["Reports, studies, anthologies, blog posts and standards the updates name."],
                sections=[{"heading": None, "id": "publications", "link": None,
                           "table": _table(("Publication", "Kind", "By or for", "Web address", "Mentioned in updates"), rows)}], toc=[])


def _notation_key(m: Model, c: str) -> tuple:
    n = m.literal(c, SKOS + "notation") or ""
    return (0, int(n), "") if n.isdigit() else (1, 0, (n or m.label(c)).lower())


def themes_page(pages: Pages) -> dict:
    m, E = pages.m, pages.E
    path = "themes/index.html"
    up = "../"
    sections = []
    glossary_terms = set(m.instances(E + "GlossaryTerm"))
    for scheme in sorted(m.instances(SKOS + "ConceptScheme"), key=lambda x: m.label(x).lower()):
        concepts = sorted(set(m.subjects(SKOS + "inScheme", scheme)) | set(m.subjects(SKOS + "topConceptOf", scheme)),
                          key=lambda c: _notation_key(m, c))
        if not concepts or all(c in glossary_terms for c in concepts):
            continue
        rows = [[pages.link(c, up), [_text(x) for x in m.literals(c, SKOS + "notation")],
                 [_text(x) for x in m.literals(c, SKOS + "definition")],
                 [pages.link(x, up) for x in m.subjects(E + "addresses", c)], _appearances(pages, c, up)]
                for c in concepts]
        sections.append({"heading": m.label(scheme), "id": "scheme-" + local_name(scheme), "link": pages.link(scheme, up),
                         "intro": m.literal(scheme, SKOS + "definition", DCTERMS + "description"),
                         "table": _table(("Concept", "No.", "Definition", "Addressed by", "Mentioned in updates"), rows)})
    return _ctx("listing.html", path, "Themes and priorities", path,
                intro=["The priorities, themes and steps the updates set out, by concept scheme (the glossary has its own page)."],
                sections=sections, toc=[{"id": x["id"], "label": x["heading"]} for x in sections])


def glossary_page(pages: Pages) -> dict:
    m, E = pages.m, pages.E
    path = "glossary/index.html"
    up = "../"
    items = []
    for term in sorted(m.instances(E + "GlossaryTerm"), key=lambda c: ((m.literal(c, SKOS + "notation") or m.label(c)).lower(), c)):
        basis = m.objects(term, E + "expansionBasis")
        used = sorted(m.objects(term, E + "usedIn"), key=lambda x: (m.date_of((m.objects(x, DCTERMS + "isPartOf") or [x])[0]), x))
        items.append({
            "term": pages.link(term, up), "notation": m.literal(term, SKOS + "notation") or m.label(term),
            "expansion": m.literal(term, E + "expansion"), "basis": m.term_label(basis[0]) if basis else None,
            "note": m.literal(term, SKOS + "editorialNote"), "used": [pages.link(x, up) for x in used],
        })
    return _ctx("glossary.html", path, "Glossary", path, items=items,
                intro=["Acronyms and abbreviations used in the updates, with their expansions: stated in the source, "
                       "or the standard national usage where the source does not spell them out. In update texts they are "
                       "marked up, so hovering over them shows the expansion."])


def quality_page(pages: Pages, data: SiteInput) -> dict:
    m = pages.m
    path = "quality/index.html"
    up = "../"
    report = _report(data)
    groups = []
    summary = None
    if report is not None:
        summary = report.summary()
        for severity, title in (("violation", "Violations"), ("warning", "Warnings"), ("info", "Notes")):
            rows = []
            for r in getattr(report, "results", ()):
                if r.severity != severity:
                    continue
                focus = r.focus
                if isinstance(focus, ox.NamedNode) and (m.file_target(focus.value) or m.has(focus.value)):
                    focus_cell = pages.link(focus.value, up)
                else:
                    focus_cell = _text(r.focus_text or (str(focus) if focus is not None else ""))
                where = f"{r.location.file}:{r.location.line}" if r.location else ""
                rows.append([_text(where), focus_cell, _text(r.message), _text(r.path_text or ""),
                             _text(r.value_text or ""), _text(r.source)])
            groups.append({"heading": f"{title} ({len(rows)})", "id": severity, "link": None,
                           "table": _table(("Where", "Resource", "Message", "Property", "Value", "Check"), rows) if rows else None,
                           "intro": None if rows else f"No {title.lower()}."})
    return _ctx("listing.html", path, "Data quality", path,
                intro=[f"The validation report of this build: {summary}." if summary else "No validation report.",
                       "A build refuses to publish data with violations; warnings and notes are listed here so that "
                       "data officers can follow them up. Locations are FILE:LINE in the project's Turtle sources."],
                sections=groups, toc=[])


def _report(data: SiteInput) -> Any:
    """The validation report: ``data.report``, or what it gives when it is a function (the report
    of a validation still running, waited for by the pages that show it)."""
    if callable(data.report):
        data.report = data.report()
    return data.report


def search_entries(pages: Pages) -> list[dict]:
    """Every resource's label (and other names) for the search page and index (made once per ``pages``)."""
    kept = getattr(pages, "_search_entries", None)
    if kept is not None:
        return kept
    m = pages.m
    entries = []
    for iri, path in m.page_items():
        entries.append({"label": m.label(iri), "type": m.type_label(iri), "url": path})
        for alt in m.literals(iri, SKOS + "altLabel") + m.literals(iri, SKOS + "notation"):
            if alt != m.label(iri):
                entries.append({"label": alt, "type": m.type_label(iri), "url": path, "see": m.label(iri)})
    for nav_path, label in Chrome(None, None).nav:
        entries.append({"label": label, "type": "Page", "url": nav_path})
    entries.sort(key=lambda e: (e["label"].lower(), e["url"]))
    pages._search_entries = entries
    return entries


def search_page(pages: Pages) -> dict:
    entries = [e for e in search_entries(pages) if "see" not in e]
    letters: dict[str, list] = defaultdict(list)
    for e in entries[:SEARCH_LIST_LIMIT]:
        first = e["label"][:1].upper()
        letters[first if first.isalpha() else "#"].append(e)
    groups = [{"letter": k, "id": "letter-" + (k if k.isalpha() else "other"), "entries": letters[k]} for k in sorted(letters)]
    return _ctx("search.html", "search/index.html", "Search", "", groups=groups, total=len(entries),
                truncated=max(0, len(entries) - SEARCH_LIST_LIMIT))


def _view_items(data: SiteInput) -> list[tuple]:
    items = []
    for item in data.views:
        if isinstance(item, tuple):
            view, result, error = (list(item) + [None, None])[:3]
        else:
            view, result, error = item, None, None
        items.append((view, result, error))
    return items


VIEW_ROW_LIMIT = 1000


def views_pages(pages: Pages, data: SiteInput) -> list[dict]:
    m = pages.m
    out = []
    index_rows = []
    for view, result, error in _view_items(data):
        path = f"views/{view.name}.html"
        up = "../"
        rows = []
        if result is not None:
            for row in result.rows[:VIEW_ROW_LIMIT]:
                cells = []
                for term in row:
                    cells.append(pages.value(term, up) if term is not None else _text(""))
                rows.append(cells)
        params = [{"name": p.name, "type": p.type, "required": p.required, "description": p.description}
                  for p in getattr(view, "params", ())]
        out.append(_ctx("view.html", path, view.title or view.name, "views/index.html", view_name=view.name,
                        description=view.description, query=view.text, params=params,
                        variables=list(result.variables) if result is not None else [], rows=rows,
                        total=len(result.rows) if result is not None else 0, error=error,
                        csv=f"{view.name}.csv" if result is not None else None,
                        json=f"{view.name}.json" if result is not None else None))
        index_rows.append([{"kind": "link", "label": view.title or view.name, "href": f"{view.name}.html"},
                           _text(view.description or ""),
                           _text(f"{len(result.rows)} rows" if result is not None else (error or "not run"))])
    del m
    out.append(_ctx("listing.html", "views/index.html", "Stored views", "views/index.html",
                    intro=["Stored SPARQL queries over the graph. Each page shows the query, its result on this build and the "
                           "result as CSV and SPARQL 1.1 JSON. Run them yourself with `emkg query NAME`."],
                    sections=[{"heading": None, "id": "views", "link": None,
                               "table": _table(("View", "What it lists", "Result"), index_rows)}], toc=[]))
    return out


def ontology_docs(pages: Pages, up: str) -> dict:
    m, E = pages.m, pages.E
    classes, properties, individuals = [], [], []
    for iri in sorted((k for k in m.subject_keys() if k.startswith(E) and k != E), key=lambda x: m.term_label(x).lower()):
        types = set(m.types_of(iri))
        entry = {
            "link": {"kind": "link" if m.page(iri) else "text", "label": capitalise(m.term_label(iri)),
                     "href": up + m.page(iri) if m.page(iri) else None, "iri": iri},
            "curie": m.prefixes.curie(iri) or iri, "anchor": local_name(iri),
            "definition": m.literal(iri, SKOS + "definition", RDFS + "comment"),
            "example": m.literal(iri, SKOS + "example"),
        }
        if types & {OWL + "Class", RDFS + "Class"}:
            entry["supers"] = [pages.type_value(x, up) for x in m.objects(iri, RDFS + "subClassOf")]
            entry["equivalents"] = [pages.type_value(x, up) for x in m.objects(iri, OWL + "equivalentClass")]
            entry["requirements"] = pages.requirements_for(iri, up) or []
            entry["instances"] = len(m.instances(iri))
            classes.append(entry)
        elif types & {OWL + "ObjectProperty", OWL + "DatatypeProperty", OWL + "AnnotationProperty", RDF + "Property"}:
            entry["kind"] = ", ".join(sorted(humanise(local_name(t)) for t in types if t.startswith(OWL) or t == RDF + "Property"))
            entry["supers"] = [pages.type_value(x, up) for x in m.objects(iri, RDFS + "subPropertyOf")]
            entry["domain"] = [pages.type_value(x, up) for x in m.objects(iri, SCHEMA + "domainIncludes") + m.objects(iri, RDFS + "domain")]
            entry["range"] = [pages.type_value(x, up) for x in m.objects(iri, SCHEMA + "rangeIncludes") + m.objects(iri, RDFS + "range")]
            properties.append(entry)
        else:
            entry["types"] = [pages.type_value(x, up) for x in sorted(types)]
            individuals.append(entry)
    return {"classes": classes, "properties": properties, "individuals": individuals}


def ontology_page(pages: Pages, path: str) -> dict:
    up = "../" * path.count("/")
    return _ctx("ontology.html", path, "Ontology", "def/index.html", iri=pages.m.project.ontology_iri,
                rows=[], description=[], **ontology_docs(pages, up))


__all__ = ["Glossary", "Model", "PageKeys", "Pages", "Reads", "SiteInput", "SiteStats", "content_key", "EarlyPages", "render_site", "start_resource_pages", "resource_dir", "rich_text", "safe_join", "script_json"]
