"""Synthetic national-scale project trees for benchmarks and equivalence tests.

``generate_tree(project, out, triples=N, faults=K, seed=S)`` writes a complete project at ``out``:
``pyproject.toml`` with ``[tool.emkg]``, the project's own ``ontology/``, ``shapes/`` and
``queries/`` (copied byte for byte), and synthetic data in our vocabulary shaped like the real
``data/``: 9 regions, their counties, about 320 local authorities (county, district, unitary and
national park) with GSS-like codes, a reorganisation per region, organisations and groups, roles,
people, posts and trustee memberships, programmes and workstreams, events, publications, concept
schemes, a glossary, and dated quarterly updates (one file each, ``data/updates/YYYY-MM.ttl``) with
their sections, mentions, quantities and source documents/sections for provenance.

Names are plainly synthetic ("Synthetic Authority 0042"); the tree never touches the real data.
Turtle is written as text directly (no RDF library), so a million triples take seconds. The
output is a pure function of (project files, triples, faults, seed): files are written in a fixed
order from one seeded ``random.Random``, so two runs give byte-identical trees.

With ``faults=K`` the tree carries K deliberate problems, spread round-robin over ``FAULT_KINDS``
(one kind per SHACL feature the shapes check: a missing required property, a wrong datatype, a
website written as a string, a duplicate GSS code, a dangling reference, a bad pattern, ...). Each
goes to a different resource; ``bench-manifest.json`` at the tree's root lists them (kind, focus,
path, the constraint component expected and the file) so tests can check every kind is reported.
"""

from __future__ import annotations

import json
import math
import random
import shutil
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from .project import DEFAULT_BASE_IRI, Project

BASE = DEFAULT_BASE_IRI
MANIFEST = "bench-manifest.json"

PREFIXES = {
    "emkg": BASE + "def/",
    "source": BASE + "source/",
    "area": BASE + "id/area/",
    "authority": BASE + "id/authority/",
    "organisation": BASE + "id/organisation/",
    "group": BASE + "id/group/",
    "programme": BASE + "id/programme/",
    "update": BASE + "id/update/",
    "section": BASE + "id/section/",
    "person": BASE + "id/person/",
    "post": BASE + "id/post/",
    "membership": BASE + "id/membership/",
    "role": BASE + "id/role/",
    "event": BASE + "id/event/",
    "publication": BASE + "id/publication/",
    "scheme": BASE + "id/scheme/",
    "concept": BASE + "id/concept/",
    "quantity": BASE + "id/quantity/",
    "change": BASE + "id/change/",
    "rdf": "http://www.w3.org/1999/02/22-rdf-syntax-ns#",
    "rdfs": "http://www.w3.org/2000/01/rdf-schema#",
    "xsd": "http://www.w3.org/2001/XMLSchema#",
    "skos": "http://www.w3.org/2004/02/skos/core#",
    "dcterms": "http://purl.org/dc/terms/",
    "foaf": "http://xmlns.com/foaf/0.1/",
    "org": "http://www.w3.org/ns/org#",
    "schema": "https://schema.org/",
    "prov": "http://www.w3.org/ns/prov#",
}

MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August", "September",
          "October", "November", "December")

WORDS = (
    "synthetic regional partners agreed to share practice on placement sufficiency and reviewed the "
    "quarterly indicators for early help while the workforce leads group planned a further round of "
    "peer challenge visits across the authorities with a focus on care leavers and the front door "
    "the improvement alliance noted progress on commissioning and asked the data leads to report back "
    "next quarter on demand for local services and on the pilot of the new assessment approach"
).split()

# Fault kinds: name -> (what is wrong, expected SHACL constraint component local name).
FAULT_KINDS: dict[str, tuple[str, str]] = {
    "missing-required": ("a group without its required skos:prefLabel", "MinCountConstraintComponent"),
    "wrong-datatype": ("a section's schema:position written as a string", "DatatypeConstraintComponent"),
    "website-as-string": ("an authority's foaf:homepage written as a string, not an IRI", "NodeKindConstraintComponent"),
    "duplicate-gss": ("two authorities with the same GSS code", "SPARQLConstraintComponent"),
    "dangling-reference": ("a section reporting on a programme that is not described", "ClassConstraintComponent"),
    "bad-pattern": ("an authority's register code not three capital letters", "PatternConstraintComponent"),
    "missing-provenance": ("a person without prov:wasDerivedFrom", "SPARQLConstraintComponent"),
    "untagged-label": ("a programme's rdfs:label without a language tag", "DatatypeConstraintComponent"),
    "too-many-values": ("an event with two schema:name values", "MaxCountConstraintComponent"),
    "value-not-in-list": ("a quantity whose emkg:comparator is not one of the allowed values", "InConstraintComponent"),
    "date-not-first-of-month": ("an update dated to a month whose dcterms:date is not the 1st", "SPARQLConstraintComponent"),
    "lines-reversed": ("a source section whose emkg:startLine is after its emkg:endLine", "LessThanOrEqualsConstraintComponent"),
    # the SHACL-SPARQL constraints (and their SPARQL targets)
    "duplicate-position": ("two sections of one source document with the same schema:position", "SPARQLConstraintComponent"),
    "part-not-listed": ("an update whose schema:hasPart leaves out one of its sections", "SPARQLConstraintComponent"),
    "untraced-section": ("a section derived from a whole document, not a source section", "SPARQLConstraintComponent"),
    "stated-but-untraced": ("a glossary expansion 'stated in source' with no source section", "SPARQLConstraintComponent"),
}


# --- Turtle text -------------------------------------------------------------------------------------

def lit(text: str, lang: str | None = "en") -> str:
    escaped = text.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"@{lang}' if lang else f'"{escaped}"'


def typed(value: str, datatype: str) -> str:
    return f'"{value}"^^xsd:{datatype}'


class Block:
    """One subject's description: predicate -> objects (Turtle text), rendered sorted like the real data."""

    __slots__ = ("subject", "types", "props")

    def __init__(self, subject: str, *types: str) -> None:
        self.subject = subject
        self.types = list(types)
        self.props: dict[str, list[str]] = {}

    def add(self, predicate: str, *objects: str) -> Block:
        if objects:
            self.props.setdefault(predicate, []).extend(objects)
        return self

    def set(self, predicate: str, *objects: str) -> Block:
        if objects:
            self.props[predicate] = list(objects)
        else:
            self.props.pop(predicate, None)
        return self

    def triples(self) -> int:
        return len(self.types) + sum(len(v) for v in self.props.values())

    def render(self) -> str:
        lines = [self.subject]
        parts = []
        if self.types:
            parts.append("    a " + ", ".join(self.types))
        for predicate in sorted(self.props):
            objects = self.props[predicate]
            if len(objects) == 1:
                parts.append(f"    {predicate} {objects[0]}")
            else:
                parts.append(f"    {predicate}\n        " + " ,\n        ".join(objects))
        return lines[0] + "\n" + " ;\n".join(parts) + " .\n"


@dataclass
class TurtleFile:
    path: str  # relative to the tree root
    comment: str
    blocks: list[Block] = field(default_factory=list)

    def triples(self) -> int:
        return sum(b.triples() for b in self.blocks)

    def render(self) -> str:
        used = {"rdf"} if any(b.types for b in self.blocks) else set()
        head = [f"# {self.comment}", ""]
        body = "\n".join(b.render() for b in sorted(self.blocks, key=lambda b: b.subject))
        for name, ns in PREFIXES.items():
            if f"{name}:" in body or name in used:
                head.append(f"@prefix {name}: <{ns}> .")
        return "\n".join(head) + "\n\n" + body


# --- the plan ------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Plan:
    """How many of each kind of resource a tree of ``triples`` gets (calibrated against ``Block.triples``)."""

    triples: int
    regions: int
    counties_per_region: int
    districts_per_county: int
    unitaries_per_region: int
    park_authorities: int
    organisations: int
    groups: int
    roles: int
    people: int
    programmes: int
    events: int
    publications: int
    schemes: int
    concepts_per_scheme: int
    glossary_terms: int
    updates: int
    sections_per_update: int

    @staticmethod
    def for_size(triples: int, fixed: int = 0) -> Plan:
        """The plan for a graph of about ``triples`` triples, ``fixed`` of which (the ontology) are not ours."""
        n = max(int(triples), 500)
        f = min(1.0, n / 100_000)  # the fixed geography reaches full national size at 100k triples

        def scaled(full: int, minimum: int = 1) -> int:
            return max(minimum, round(full * f))

        counties, districts, unitaries = scaled(5), scaled(5), scaled(5)
        parks = 3 if f >= 0.5 else 1
        schemes, per_scheme = max(2, min(60, n // 4000)), max(3, min(12, n // 20000 + 3))
        authorities = 9 * (counties * (1 + districts) + unitaries) + parks
        geography = authorities * 14 + 9 * (1 + counties) * 5.5 + 9 * 8 + 100
        concepts = schemes * (6 + per_scheme * 11)
        rest = max(0.0, n - fixed - geography - concepts)

        def share(fraction: float, per_item: float, minimum: int) -> int:
            return max(minimum, int(rest * fraction / per_item))

        # per-item costs (triples) measured on generated trees; a section's includes its source section,
        # its mentions, half a quantity and the glossary's and programmes' links back to it
        sections = share(0.768, 30.6, 8)
        updates = max(4, min(400, round(n / 6250)))
        return Plan(
            triples=n,
            regions=9,
            counties_per_region=counties,
            districts_per_county=districts,
            unitaries_per_region=unitaries,
            park_authorities=parks,
            organisations=share(0.010, 7.4, 6),
            groups=share(0.012, 8.0, 6),
            roles=max(4, min(40, n // 2500)),
            people=share(0.080, 11.8, 6),
            programmes=share(0.050, 17.8, 6),
            events=share(0.040, 18.5, 4),
            publications=share(0.025, 7.4, 4),
            schemes=schemes,
            concepts_per_scheme=per_scheme,
            glossary_terms=share(0.015, 10.0, 6),
            updates=updates,
            sections_per_update=max(18, math.ceil(sections / updates)),  # two per regional document at least
        )


# --- the generator ------------------------------------------------------------------------------------

class Generator:
    def __init__(self, plan: Plan, seed: int, faults: int) -> None:
        self.plan = plan
        self.rng = random.Random(seed)
        self.seed = seed
        self.faults_wanted = faults
        self.files: list[TurtleFile] = []
        self.manifest_faults: list[dict] = []
        # pools of IRIs (prefixed names) filled as resources are made
        self.regions: list[str] = []
        self.counties: dict[str, list[str]] = {}
        self.authorities: list[str] = []
        self.authority_blocks: list[Block] = []
        self.organisations: list[str] = []
        self.groups: list[str] = []
        self.people: list[str] = []
        self.posts: list[str] = []
        self.roles: list[str] = []
        self.programmes: list[str] = []
        self.events: list[str] = []
        self.publications: list[str] = []
        self.concepts: list[str] = []
        self.glossary: list[str] = []
        self.directory_sections: list[str] = []
        self.update_slugs: list[tuple[int, int]] = []
        self.section_sources: dict[str, str] = {}  # section -> its source section
        self.glossary_used: dict[str, list[str]] = {}
        self.programme_quantities: dict[str, list[str]] = {}
        self.programme_source: dict[str, str] = {}
        self._fault_targets: dict[str, list[tuple[Block, str]]] = {k: [] for k in FAULT_KINDS}

    # -- helpers
    def pick(self, pool: list[str], k: int) -> list[str]:
        k = min(k, len(pool))
        return sorted(self.rng.sample(pool, k)) if k else []

    def text(self, words: int) -> str:
        rng = self.rng
        start = rng.randrange(len(WORDS))
        out = [WORDS[(start + i) % len(WORDS)] for i in range(words)]
        out[0] = out[0].capitalize()
        return " ".join(out) + "."

    def candidate(self, kind: str, block: Block, file: str) -> None:
        self._fault_targets[kind].append((block, file))

    def add_file(self, path: str, comment: str, blocks: list[Block]) -> None:
        self.files.append(TurtleFile(path, comment, blocks))

    # -- provenance anchors: the reference list and a directory document with a section per region
    def make_sources(self) -> None:
        blocks = []
        ref = Block("source:synthetic-reference", "emkg:SourceDocument")
        ref.add("dcterms:identifier", lit("synthetic-reference", None))
        ref.add("dcterms:title", lit("Synthetic reference list of authorities"))
        ref.add("emkg:fileName", lit("synthetic-reference.csv", None))
        ref.add("rdfs:label", lit("Synthetic reference list of authorities"))
        blocks.append(ref)
        doc = Block("source:synthetic-directory", "emkg:SourceDocument")
        doc.add("dcterms:identifier", lit("synthetic-directory", None))
        doc.add("dcterms:title", lit("Synthetic directory of regional contacts"))
        doc.add("emkg:fileName", lit("synthetic-directory.txt", None))
        doc.add("rdfs:label", lit("Synthetic directory of regional contacts"))
        blocks.append(doc)
        parts = ["overview"] + [f"region-{r:02d}" for r in range(1, self.plan.regions + 1)] + ["people", "programmes", "glossary"]
        for i, slug in enumerate(parts, 1):
            sec = Block(f"source:synthetic-directory-{slug}", "emkg:SourceSection")
            sec.add("dcterms:isPartOf", "source:synthetic-directory")
            sec.add("dcterms:title", lit(f"Synthetic directory: {slug.replace('-', ' ')}"))
            sec.add("emkg:startLine", str(i * 10 - 9))
            sec.add("emkg:endLine", str(i * 10))
            sec.add("prov:wasDerivedFrom", "source:synthetic-directory")
            sec.add("schema:position", str(i))
            blocks.append(sec)
            self.directory_sections.append(sec.subject)
            if slug in ("people", "programmes", "overview"):
                self.candidate("lines-reversed", sec, "data/sources.ttl")
        self.add_file("data/sources.ttl", "Synthetic provenance anchors: the reference list and the directory document with its sections.", blocks)

    # -- geography and authorities
    def make_areas_and_authorities(self) -> None:
        plan = self.plan
        areas, auths, changes = [], [], []
        n = 0
        letters = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"

        def register(i: int) -> str:
            return letters[i // 676 % 26] + letters[i // 26 % 26] + letters[i % 26]

        def authority(kind: str, code_prefix: str, region: str, county: str | None, region_no: int) -> Block:
            nonlocal n
            n += 1
            slug = f"synthetic-authority-{n:04d}"
            gss = f"{code_prefix}9{n:05d}"
            b = Block(f"authority:{slug}", kind)
            b.add("emkg:gssCode", lit(gss, None))
            b.add("emkg:statisticalGeography", f"<http://statistics.data.gov.uk/id/statistical-geography/{gss}>")
            b.add("emkg:registerCode", lit(register(n), None))
            b.add("emkg:listedInSource", "true")
            b.add("emkg:operatesIn", region)
            if kind == "emkg:DistrictCouncil":
                b.add("emkg:inCounty", county)
            if county is not None:
                b.add("emkg:ceremonialCounty", county)
            b.add("foaf:homepage", f"<https://www.synthetic-authority-{n:04d}.gov.uk/>")
            b.add("prov:wasDerivedFrom", "source:synthetic-reference", f"source:synthetic-directory-region-{region_no:02d}")
            b.add("rdfs:label", lit(f"Synthetic Authority {n:04d}"))
            b.add("skos:prefLabel", lit(f"Synthetic Authority {n:04d}"))
            b.add("skos:editorialNote", lit("Synthetic benchmark data: no Wikidata item."))
            auths.append(b)
            self.authorities.append(b.subject)
            self.authority_blocks.append(b)
            return b

        for r in range(1, plan.regions + 1):
            region = f"area:synthetic-region-{r:02d}"
            self.regions.append(region)
            gss = f"E129000{r:02d}"
            a = Block(region, "emkg:Region")
            a.add("emkg:gssCode", lit(gss, None))
            a.add("emkg:statisticalGeography", f"<http://statistics.data.gov.uk/id/statistical-geography/{gss}>")
            a.add("prov:wasDerivedFrom", f"source:synthetic-directory-region-{r:02d}", "source:synthetic-reference")
            a.add("rdfs:label", lit(f"Synthetic Region {r}"))
            a.add("skos:prefLabel", lit(f"Synthetic Region {r}"))
            areas.append(a)
            self.counties[region] = []
            districts_of_region = []
            for c in range(1, plan.counties_per_region + 1):
                county = f"area:synthetic-county-{r:02d}-{c:02d}"
                self.counties[region].append(county)
                cb = Block(county, "emkg:County")
                cb.add("emkg:within", region)
                cb.add("prov:wasDerivedFrom", f"source:synthetic-directory-region-{r:02d}")
                cb.add("rdfs:label", lit(f"Synthetic County {r}.{c}"))
                cb.add("skos:prefLabel", lit(f"Synthetic County {r}.{c}"))
                areas.append(cb)
                authority("emkg:CountyCouncil", "E10", region, county, r)
                for _d in range(plan.districts_per_county):
                    districts_of_region.append(authority("emkg:DistrictCouncil", "E07", region, county, r))
            unitaries = [authority("emkg:UnitaryAuthority", "E06", region, self.counties[region][u % plan.counties_per_region], r)
                         for u in range(plan.unitaries_per_region)]
            if r <= plan.park_authorities:
                park = authority("emkg:NationalParkAuthority", "E26", region, None, r)
                park.add("dcterms:description", lit("A synthetic national park authority."))
            # one reorganisation per region: the first district is abolished and replaced by the first unitary
            if districts_of_region and unitaries:
                old, new = districts_of_region[0], unitaries[0]
                date = typed(f"{2009 + r}-04-01", "date")
                old.add("schema:dissolutionDate", date)
                old.add("dcterms:isReplacedBy", new.subject)
                old.set("emkg:listedInSource", "false")
                new.add("schema:foundingDate", date)
                new.add("dcterms:replaces", old.subject)
                ch = Block(f"change:synthetic-reorganisation-{r:02d}", "org:ChangeEvent")
                ch.add("dcterms:date", date)
                ch.add("dcterms:source", lit(f"The Synthetic Region {r} (Structural Changes) Order {2008 + r}"))
                ch.add("org:originalOrganization", old.subject)
                ch.add("org:resultingOrganization", new.subject)
                ch.add("prov:wasDerivedFrom", f"source:synthetic-directory-region-{r:02d}")
                ch.add("rdfs:label", lit(f"Synthetic Region {r} reorganisation {2009 + r}"))
                changes.append(ch)
        for b in auths:
            if not any(p in b.props for p in ("schema:dissolutionDate", "schema:foundingDate")):
                for kind in ("website-as-string", "bad-pattern", "duplicate-gss"):
                    self.candidate(kind, b, "data/authorities.ttl")
        self.add_file("data/areas.ttl", "Synthetic regions and their counties.", areas)
        self.add_file("data/authorities.ttl", "Synthetic local authorities (county, district, unitary, national park) and reorganisations.", auths + changes)

    def make_organisations_and_groups(self) -> None:
        plan = self.plan
        kinds = ("emkg:GovernmentBody", "emkg:University", "emkg:ResearchCentre", "emkg:School", "emkg:Organisation")
        orgs = []
        universities = []
        for i in range(1, plan.organisations + 1):
            kind = kinds[i % len(kinds)]
            if kind == "emkg:ResearchCentre" and not universities:
                kind = "emkg:Organisation"
            b = Block(f"organisation:synthetic-organisation-{i:04d}", kind)
            name = f"Synthetic Organisation {i:04d}"
            b.add("rdfs:label", lit(name)).add("skos:prefLabel", lit(name))
            b.add("skos:altLabel", lit(f"SO{i}"))
            b.add("dcterms:description", lit(self.text(14)))
            b.add("foaf:homepage", f"<https://synthetic-organisation-{i:04d}.example.org/>")
            b.add("prov:wasDerivedFrom", "source:synthetic-directory-overview")
            if kind == "emkg:ResearchCentre":
                b.add("org:subOrganizationOf", self.rng.choice(universities))
            if kind == "emkg:University":
                universities.append(b.subject)
            if kind == "emkg:School":
                b.add("emkg:operatesIn", self.rng.choice(self.regions))
            orgs.append(b)
            self.organisations.append(b.subject)
        self.add_file("data/organisations.ttl", "Synthetic organisations: government bodies, universities, research centres, schools.", orgs)
        groups = []
        for i in range(1, plan.groups + 1):
            kind, word = (("emkg:Network", "Network"), ("emkg:Board", "Board"), ("emkg:Group", "Group"))[i % 3]
            b = Block(f"group:synthetic-group-{i:04d}", kind)
            name = f"Synthetic {word} {i:04d}"
            b.add("rdfs:label", lit(name)).add("skos:prefLabel", lit(name))
            region = self.regions[i % len(self.regions)]
            b.add("emkg:operatesIn", region)
            b.add("emkg:purpose", lit(self.text(12)))
            b.add("dcterms:description", lit(self.text(16)))
            b.add("prov:wasDerivedFrom", f"source:synthetic-directory-region-{self.regions.index(region) + 1:02d}")
            if i > 3:
                b.add("org:subOrganizationOf", self.groups[(i * 7) % len(self.groups)])
            groups.append(b)
            self.groups.append(b.subject)
            self.candidate("missing-required", b, "data/groups.ttl")
        self.add_file("data/groups.ttl", "Synthetic groups, networks and boards.", groups)

    def make_people(self) -> None:
        plan = self.plan
        scheme = Block("scheme:roles", "skos:ConceptScheme")
        scheme.add("rdfs:label", lit("Synthetic roles")).add("skos:prefLabel", lit("Synthetic roles"))
        scheme.add("prov:wasDerivedFrom", "source:synthetic-directory-people")
        blocks = [scheme]
        for i in range(1, plan.roles + 1):
            b = Block(f"role:synthetic-role-{i:02d}", "org:Role", "skos:Concept")
            b.add("rdfs:label", lit(f"synthetic role {i}")).add("skos:prefLabel", lit(f"synthetic role {i}"))
            b.add("skos:inScheme", scheme.subject).add("skos:topConceptOf", scheme.subject)
            b.add("prov:wasDerivedFrom", "source:synthetic-directory-people")
            scheme.add("skos:hasTopConcept", b.subject)
            blocks.append(b)
            self.roles.append(b.subject)
        employers = self.authorities + self.organisations + self.groups
        for i in range(1, plan.people + 1):
            name = f"Synthetic Person {i:05d}"
            p = Block(f"person:synthetic-person-{i:05d}", "foaf:Person")
            p.add("foaf:name", lit(name, None)).add("rdfs:label", lit(name))
            p.add("prov:wasDerivedFrom", "source:synthetic-directory-people")
            post = Block(f"post:synthetic-post-{i:05d}", "org:Post")
            employer = employers[(i * 31) % len(employers)]
            role = self.roles[i % len(self.roles)]
            post.add("rdfs:label", lit(f"Synthetic post {i:05d}"))
            post.add("org:postIn", employer).add("org:role", role)
            post.add("prov:wasDerivedFrom", "source:synthetic-directory-people")
            p.add("org:holds", post.subject)
            blocks += [p, post]
            self.people.append(p.subject)
            self.posts.append(post.subject)
            self.candidate("missing-provenance", p, "data/people.ttl")
            if i % 4 == 0:  # trustees
                m = Block(f"membership:synthetic-person-{i:05d}-trustee", "emkg:TrusteeMembership", "org:Membership")
                m.add("rdfs:label", lit(f"{name}, local area trustee"))
                m.add("emkg:region", self.regions[i % len(self.regions)])
                m.add("org:member", p.subject).add("org:role", self.roles[0])
                m.add("prov:wasDerivedFrom", "source:synthetic-directory-people")
                blocks.append(m)
        self.add_file("data/people.ttl", "Synthetic people, their posts, roles and trustee memberships.", blocks)

    def make_concepts(self) -> None:
        plan = self.plan
        blocks = []
        for s in range(1, plan.schemes + 1):
            scheme = Block(f"scheme:synthetic-scheme-{s:02d}", "skos:ConceptScheme")
            scheme.add("rdfs:label", lit(f"Synthetic priorities {s}")).add("skos:prefLabel", lit(f"Synthetic priorities {s}"))
            scheme.add("prov:wasDerivedFrom", "source:synthetic-directory-programmes")
            for c in range(1, plan.concepts_per_scheme + 1):
                concept = Block(f"concept:synthetic-{s:02d}-{c:02d}", "skos:Concept")
                label = f"Synthetic priority {s}.{c}"
                concept.add("rdfs:label", lit(label)).add("skos:prefLabel", lit(label))
                concept.add("skos:definition", lit(self.text(10)))
                concept.add("skos:inScheme", scheme.subject).add("skos:topConceptOf", scheme.subject)
                concept.add("skos:notation", lit(str(c), None))
                concept.add("prov:wasDerivedFrom", "source:synthetic-directory-programmes")
                scheme.add("skos:hasTopConcept", concept.subject)
                blocks.append(concept)
                self.concepts.append(concept.subject)
            blocks.append(scheme)
        self.add_file("data/concepts.ttl", "Synthetic concept schemes (priorities and themes) and their concepts.", blocks)

    def make_plan_updates(self) -> None:
        """Name every update and section up front: other files refer to them."""
        plan = self.plan
        for u in range(plan.updates):
            year, month = 1990 + u // 4, 3 + 3 * (u % 4)
            self.update_slugs.append((year, month))
        self.glossary = [f"concept:glossary-syn{i:04d}" for i in range(1, plan.glossary_terms + 1)]
        self.programmes = [f"programme:synthetic-programme-{i:04d}" for i in range(1, plan.programmes + 1)]
        self._reported = 0

    def make_programmes_file(self) -> None:
        blocks = []
        for i, subject in enumerate(self.programmes, 1):
            workstream = i % 5 == 0 and i > 5
            b = Block(subject, "emkg:Workstream" if workstream else "emkg:Programme")
            label = f"Synthetic programme {i:04d}"
            b.add("rdfs:label", lit(label)).add("skos:prefLabel", lit(label))
            b.add("skos:altLabel", lit(f"SP{i}"))
            b.add("emkg:purpose", lit(self.text(18)))
            b.add("emkg:status", lit(f"Synthetic status {i % 7}"))
            leads = self.groups + self.posts
            b.add("emkg:ledBy", leads[(i * 13) % len(leads)])
            b.add("emkg:partner", *self.pick(self.organisations + self.authorities, 2))
            b.add("emkg:involves", *self.pick(self.authorities, 3), self.regions[i % len(self.regions)])
            b.add("emkg:addresses", *self.pick(self.concepts, 2))
            if self.publications:
                b.add("emkg:produced", self.publications[i % len(self.publications)])
            if workstream:
                b.add("dcterms:isPartOf", self.programmes[(i * 3) % (i - 1)])
            if i % 3 == 0:
                b.add("prov:startedAtTime", typed(f"{1990 + i % 30}-01-01T09:00:00", "dateTime"))
                b.add("prov:endedAtTime", typed(f"{1995 + i % 30}-12-31T17:00:00", "dateTime"))
            b.add("emkg:hasQuantity", *self.programme_quantities.get(subject, []))
            b.add("prov:wasDerivedFrom", self.programme_source.get(subject, "source:synthetic-directory-programmes"))
            blocks.append(b)
            self.candidate("untagged-label", b, "data/programmes.ttl")
        self.add_file("data/programmes.ttl", "Synthetic programmes and workstreams.", blocks)

    def make_events_and_publications(self) -> None:
        plan = self.plan
        pubs = []
        kinds = ("emkg:Publication", "emkg:Study", "emkg:Anthology", "emkg:BlogPost", "emkg:Standard")
        for i in range(1, plan.publications + 1):
            kind = kinds[i % len(kinds)]
            b = Block(f"publication:synthetic-publication-{i:04d}", kind)
            title = f"Synthetic publication {i:04d}"
            b.add("rdfs:label", lit(title)).add("dcterms:title", lit(title))
            b.add("dcterms:description", lit(self.text(12)))
            b.add("dcterms:creator", (self.organisations + self.people)[(i * 17) % (len(self.organisations) + len(self.people))])
            b.add("dcterms:issued", typed(str(1990 + i % 35), "gYear"))
            if kind == "emkg:BlogPost" or i % 4 == 0:
                b.add("schema:url", f"<https://synthetic.example.org/publication/{i:04d}>")
            b.add("prov:wasDerivedFrom", "source:synthetic-directory-programmes")
            pubs.append(b)
            self.publications.append(b.subject)
        self.add_file("data/publications.ttl", "Synthetic reports, studies, anthologies, blog posts and standards.", pubs)
        events = []
        for i in range(1, plan.events + 1):
            kind, word = (("emkg:Event", "event"), ("emkg:Meeting", "meeting"), ("emkg:Conference", "conference"))[i % 3]
            b = Block(f"event:synthetic-{word}-{i:04d}", kind)
            name = f"Synthetic {word} {i:04d}"
            year, month, day = 1990 + i % 35, 1 + i % 12, 1 + i % 28
            b.add("rdfs:label", lit(name)).add("schema:name", lit(name))
            b.add("schema:startDate", typed(f"{year}-{month:02d}-{day:02d}", "date"))
            b.add("emkg:datePrecision", "emkg:DayPrecision")
            b.add("emkg:statedDate", lit(f"{day} {MONTHS[month - 1]} {year}", None))
            b.add("schema:organizer", self.groups[i % len(self.groups)])
            b.add("schema:attendee", *self.pick(self.people, 3), *self.pick(self.authorities, 2))
            b.add("schema:about", self.programmes[i % len(self.programmes)])
            b.add("prov:wasDerivedFrom", "source:synthetic-directory-programmes")
            events.append(b)
            self.events.append(b.subject)
            self.candidate("too-many-values", b, "data/events.ttl")
            if i % 2 == 0:
                q = Block(f"quantity:synthetic-{word}-{i:04d}-participants", "emkg:Quantity")
                count = 20 + i % 180
                q.add("emkg:comparator", "emkg:MoreThan")
                q.add("emkg:quantifies", b.subject)
                q.add("emkg:statedAs", lit(f"more than {count} people"))
                q.add("rdfs:label", lit(f"more than {count} people"))
                q.add("schema:unitText", lit("people"))
                q.add("schema:value", str(count))
                q.add("prov:wasDerivedFrom", "source:synthetic-directory-programmes")
                b.add("emkg:participantCount", q.subject)
                events.append(q)
        self.add_file("data/events.ttl", "Synthetic events, meetings and conferences, and their participant counts.", events)

    def make_updates(self) -> None:
        plan = self.plan
        rng = self.rng
        mentionable = (self.authorities + self.organisations + self.groups + self.people + self.events
                       + self.publications + self.concepts)
        for u, (year, month) in enumerate(self.update_slugs):
            slug = f"{year}-{month:02d}"
            blocks = []
            title = f"Synthetic National Update {MONTHS[month - 1]} {year}"
            # one seed document per region (a national update compiled from nine regional reports)
            docs = []
            for r in range(1, len(self.regions) + 1):
                doc_id = f"synthetic-update-{slug}-r{r:02d}"
                doc_title = f"Synthetic Region {r} report for the {MONTHS[month - 1]} {year} update"
                doc = Block(f"source:{doc_id}", "emkg:SourceDocument")
                doc.add("dcterms:identifier", lit(doc_id, None)).add("dcterms:title", lit(doc_title))
                doc.add("emkg:fileName", lit(doc_id + ".txt", None)).add("rdfs:label", lit(f"Seed {doc_id}: {doc_title}"))
                blocks.append(doc)
                docs.append([doc, doc_id, 3, 0])  # block, id, next line, sections so far
            upd = Block(f"update:{slug}", "emkg:RegionalUpdate")
            upd.add("rdfs:label", lit(title)).add("dcterms:title", lit(title))
            upd.add("dcterms:date", typed(f"{slug}-01", "date"))
            upd.add("emkg:datePrecision", "emkg:MonthPrecision")
            upd.add("emkg:statedDate", lit(f"{MONTHS[month - 1]} {year}", None))
            upd.add("emkg:coversPeriod", lit(f"{MONTHS[month - 3]} – {MONTHS[month - 1]} {year}"))
            upd.add("dcterms:spatial", *self.regions)
            upd.add("prov:wasDerivedFrom", *(d[0].subject for d in docs))
            blocks.append(upd)
            self.candidate("date-not-first-of-month", upd, f"data/updates/{slug}.ttl")
            self.candidate("part-not-listed", upd, f"data/updates/{slug}.ttl")
            for s in range(1, plan.sections_per_update + 1):
                region_no = 1 + (s - 1) % len(self.regions)
                doc_entry = docs[region_no - 1]
                doc, doc_id, line = doc_entry[0], doc_entry[1], doc_entry[2]
                doc_entry[3] += 1
                # every programme is reported at least once (the first sections take them in turn),
                # so a clean tree has no 'programme no section reports on' warning
                topic = self._reported if self._reported < len(self.programmes) else rng.randrange(len(self.programmes))
                self._reported += 1
                programme = self.programmes[topic]
                heading = f"Synthetic topic {topic + 1:04d} in Synthetic Region {region_no}"
                words = 30 + rng.randrange(40)
                src = Block(f"source:{doc_id}-s{s:03d}", "emkg:SourceSection")
                src.add("dcterms:isPartOf", doc.subject).add("dcterms:title", lit(heading))
                start, end = line, line + 1 + words // 12
                doc_entry[2] = end + 2
                src.add("emkg:startLine", str(start)).add("emkg:endLine", str(end))
                src.add("prov:wasDerivedFrom", doc.subject).add("schema:position", str(doc_entry[3]))
                sec = Block(f"section:{slug}-s{s:03d}", "emkg:UpdateSection")
                sec.add("dcterms:isPartOf", upd.subject).add("dcterms:title", lit(heading))
                sec.add("rdfs:label", lit(f"{MONTHS[month - 1]} {year}: {heading}"))
                sec.add("emkg:reportsOn", programme)
                sec.add("prov:wasDerivedFrom", src.subject)
                sec.add("schema:position", str(s))
                sec.add("schema:text", lit(self.text(words)))
                terms = self.pick(self.glossary, 1 + rng.randrange(2))
                sec.add("schema:mentions", *sorted(self.pick(mentionable, 3 + rng.randrange(6)) + terms + [self.regions[region_no - 1]]))
                for term in terms:
                    self.glossary_used.setdefault(term, []).append(sec.subject)
                upd.add("schema:hasPart", sec.subject)
                self.programme_source.setdefault(programme, src.subject)
                blocks += [src, sec]
                self.candidate("wrong-datatype", sec, f"data/updates/{slug}.ttl")
                self.candidate("dangling-reference", sec, f"data/updates/{slug}.ttl")
                self.candidate("lines-reversed", src, f"data/updates/{slug}.ttl")
                self.candidate("untraced-section", sec, f"data/updates/{slug}.ttl")
                if doc_entry[3] > 1:  # a sibling before it in the same document
                    self.candidate("duplicate-position", src, f"data/updates/{slug}.ttl")
                if s % 2 == 0:
                    q = Block(f"quantity:{slug}-s{s:03d}", "emkg:Quantity")
                    whole = 5 + rng.randrange(40)
                    part = rng.randrange(1, whole + 1)
                    q.add("emkg:comparator", rng.choice(("emkg:Exactly", "emkg:AtLeast", "emkg:Approximately")))
                    q.add("emkg:quantifies", programme)
                    q.add("emkg:statedAs", lit(f"{part} out of {whole} authorities"))
                    q.add("rdfs:label", lit(f"{part} out of {whole} authorities"))
                    q.add("schema:unitText", lit("local authorities"))
                    q.add("schema:value", str(part)).add("emkg:outOf", str(whole))
                    q.add("prov:wasDerivedFrom", src.subject)
                    self.programme_quantities.setdefault(programme, []).append(q.subject)
                    blocks.append(q)
                    self.candidate("value-not-in-list", q, f"data/updates/{slug}.ttl")
            self.add_file(f"data/updates/{slug}.ttl", f"Synthetic national update {slug}: the update, its sections, quantities and source.", blocks)

    def make_glossary_file(self) -> None:
        blocks = []
        scheme = Block("scheme:glossary", "skos:ConceptScheme")
        scheme.add("rdfs:label", lit("Glossary")).add("skos:prefLabel", lit("Glossary"))
        scheme.add("prov:wasDerivedFrom", "source:synthetic-directory-glossary")
        blocks.append(scheme)
        for i, subject in enumerate(self.glossary, 1):
            used = self.glossary_used.get(subject, [])
            b = Block(subject, "emkg:GlossaryTerm")
            notation = f"SYN{i}"
            b.add("rdfs:label", lit(notation)).add("skos:prefLabel", lit(notation))
            b.add("skos:notation", lit(notation, None))
            b.add("skos:inScheme", "scheme:glossary").add("skos:topConceptOf", "scheme:glossary")
            scheme.add("skos:hasTopConcept", subject)
            if i % 3:
                b.add("emkg:expansion", lit(f"synthetic term number {i}"))
                b.add("emkg:expansionBasis", "emkg:StandardUsage")
                self.candidate("stated-but-untraced", b, "data/glossary.ttl")
            else:
                b.add("skos:editorialNote", lit("Not expanded: the synthetic sources do not spell it out."))
            if not used:  # every term is used somewhere: give the unused ones the first section
                first = f"section:{self.update_slugs[0][0]}-{self.update_slugs[0][1]:02d}-s001"
                used = [first]
            b.add("emkg:usedIn", *used)
            b.add("prov:wasDerivedFrom", "source:synthetic-directory-glossary")
            blocks.append(b)
        self.add_file("data/glossary.ttl", "Synthetic glossary: abbreviations, their expansions and the sections using them.", blocks)

    # -- faults
    def inject_faults(self) -> None:
        kinds = list(FAULT_KINDS)
        used: set[str] = set()
        cursor = {k: 0 for k in kinds}
        for i in range(self.faults_wanted):
            kind = kinds[i % len(kinds)]
            targets = self._fault_targets[kind]
            block = file = None
            while cursor[kind] < len(targets):
                j = (cursor[kind] * 7919 + self.seed) % len(targets) if len(targets) > 1 else 0
                cursor[kind] += 1
                candidate, cfile = targets[j]
                if candidate.subject not in used:
                    block, file = candidate, cfile
                    break
            if block is None:
                continue
            used.add(block.subject)
            applied = self._apply(kind, block, used)
            if applied is None:  # nothing left to pair it with (a small tree asked for many faults)
                used.discard(block.subject)
                continue
            path, detail = applied
            self.manifest_faults.append({
                "kind": kind, "focus": _expand(block.subject), "path": _expand(path) if path else None,
                "component": FAULT_KINDS[kind][1], "file": file, "what": FAULT_KINDS[kind][0], **detail,
            })

    def _apply(self, kind: str, b: Block, used: set[str]) -> tuple[str | None, dict] | None:
        if kind == "missing-required":
            b.set("skos:prefLabel")
            return "skos:prefLabel", {}
        if kind == "wrong-datatype":
            b.set("schema:position", lit(b.props["schema:position"][0], None))
            return "schema:position", {}
        if kind == "website-as-string":
            b.set("foaf:homepage", lit(b.props["foaf:homepage"][0].strip("<>"), None))
            return "foaf:homepage", {}
        if kind == "duplicate-gss":
            other = next((a for a in self.authority_blocks if a.subject != b.subject and a.subject not in used
                          and a.types == b.types and "schema:dissolutionDate" not in a.props), None)
            if other is None:
                return None
            used.add(other.subject)
            b.set("emkg:gssCode", *other.props["emkg:gssCode"])
            b.set("emkg:statisticalGeography", *other.props["emkg:statisticalGeography"])
            return "emkg:gssCode", {"other": _expand(other.subject)}
        if kind == "dangling-reference":
            b.set("emkg:reportsOn", "programme:synthetic-undescribed-programme")
            return "emkg:reportsOn", {}
        if kind == "bad-pattern":
            b.set("emkg:registerCode", lit("X1", None))
            return "emkg:registerCode", {}
        if kind == "missing-provenance":
            b.set("prov:wasDerivedFrom")
            return None, {}
        if kind == "untagged-label":
            b.set("rdfs:label", lit(b.props["rdfs:label"][0].split('"')[1], None))
            return "rdfs:label", {}
        if kind == "too-many-values":
            b.add("schema:name", lit("A second synthetic name"))
            return "schema:name", {}
        if kind == "value-not-in-list":
            b.set("emkg:comparator", "emkg:Roughly")
            return "emkg:comparator", {}
        if kind == "date-not-first-of-month":
            date = b.props["dcterms:date"][0]
            b.set("dcterms:date", date.replace('-01"^^', '-15"^^'))
            return "dcterms:date", {}
        if kind == "duplicate-position":
            position = int(b.props["schema:position"][0])
            b.set("schema:position", str(position - 1))  # the sibling before it in the same document
            sibling = b.subject.rsplit("-s", 1)[0]
            return "schema:position", {"document": _expand(b.props["dcterms:isPartOf"][0]), "sibling_prefix": _expand(sibling)}
        if kind == "part-not-listed":
            parts = b.props["schema:hasPart"]
            dropped = parts[-1]
            b.set("schema:hasPart", *parts[:-1])
            return "schema:hasPart", {"value": _expand(dropped)}
        if kind == "untraced-section":
            source = b.props["prov:wasDerivedFrom"][0]
            b.set("prov:wasDerivedFrom", source.rsplit("-s", 1)[0])  # the document, not its section
            return "prov:wasDerivedFrom", {}
        if kind == "stated-but-untraced":
            b.set("emkg:expansionBasis", "emkg:StatedInSource")
            b.set("prov:wasDerivedFrom", "source:synthetic-directory")  # a document, not a section
            return "emkg:expansionBasis", {}
        if kind == "lines-reversed":
            start, end = b.props["emkg:startLine"][0], b.props["emkg:endLine"][0]
            b.set("emkg:startLine", str(int(end) + 1))
            return "emkg:startLine", {"was": start}
        raise AssertionError(kind)

    def run(self) -> None:
        self.make_sources()
        self.make_areas_and_authorities()
        self.make_organisations_and_groups()
        self.make_people()
        self.make_concepts()
        self.make_plan_updates()
        self.make_events_and_publications()
        self.make_updates()
        self.make_programmes_file()
        self.make_glossary_file()
        self.inject_faults()


def _expand(name: str) -> str:
    prefix, local = name.split(":", 1)
    return PREFIXES[prefix] + local


# --- writing a tree -------------------------------------------------------------------------------------

PYPROJECT = """\
# A synthetic emkg project written by `emkg bench generate` (benchmarks and equivalence tests).
[project]
name = "emkg-synthetic"
version = "0"

[tool.emkg]
base-iri = "https://w3id.org/emkg/"
out = "public"
"""


def _copy_tree(src: Path, dst: Path, patterns: Iterable[str]) -> list[str]:
    copied = []
    if not src.is_dir():
        return copied
    files = sorted({p for pattern in patterns for p in src.rglob(pattern)
                    if p.is_file() and not any(part.startswith(".") for part in p.relative_to(src).parts)})
    for path in files:
        target = dst / path.relative_to(src)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, target)
        copied.append(target.as_posix())
    return copied


def _count_triples(folder: Path) -> int:
    """Triples in the Turtle files of a folder (the ontology, copied into every tree)."""
    import pyoxigraph as ox

    total = 0
    for path in sorted(folder.rglob("*.ttl")) if folder.is_dir() else []:
        try:
            total += sum(1 for _ in ox.parse(path=str(path), format=ox.RdfFormat.TURTLE))
        except (SyntaxError, OSError, ValueError):
            continue
    return total


def generate_tree(project: Project, out: Path, triples: int, faults: int = 0, seed: int = 1) -> dict:
    """Write a synthetic project tree at ``out`` (replacing its data/); return the manifest."""
    out = Path(out)
    plan = Plan.for_size(triples, fixed=_count_triples(project.ontology_dir))
    gen = Generator(plan, seed=seed, faults=faults)
    gen.run()
    out.mkdir(parents=True, exist_ok=True)
    for folder in ("data", "ontology", "shapes", "queries"):
        if (out / folder).exists():
            shutil.rmtree(out / folder)
    (out / "pyproject.toml").write_text(PYPROJECT, encoding="utf-8")
    _copy_tree(project.ontology_dir, out / "ontology", ["*.ttl"])
    _copy_tree(project.shapes_dir, out / "shapes", ["*.ttl"])
    _copy_tree(project.queries_dir, out / "queries", ["*.rq"])
    data_triples = 0
    files = {}
    for tf in sorted(gen.files, key=lambda f: f.path):
        path = out / tf.path
        path.parent.mkdir(parents=True, exist_ok=True)
        text = tf.render()
        path.write_text(text, encoding="utf-8")
        count = tf.triples()
        data_triples += count
        files[tf.path] = count
    manifest = {
        "generator": "emkg bench generate",
        "requested_triples": triples,
        "seed": seed,
        "data_triples": data_triples,
        "data_files": len(files),
        "plan": plan.__dict__,
        "faults": gen.manifest_faults,
        "files": files,
    }
    (out / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return manifest
