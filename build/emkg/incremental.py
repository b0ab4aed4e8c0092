"""Incremental site builds: re-render only the pages a change can touch.

``emkg build`` always loads, validates, and writes the dumps and views from the whole graph (they
are whole-graph products, and validation must see every triple). The site is different: a resource
page is a function of a small part of the graph, so after a build the cache in
``.cache/build/<output>/`` remembers what the pages were made from:

* ``state.pickle`` (plain data only, so that it loads fast): the *global* fingerprint (below), the
  page path and the recorded ``file:line`` of every resource; per source file, a key of its bytes
  and the lines of its subjects (``locations``: an unchanged file's ``file:line`` are taken from
  here, so the line index of every statement is never merged for the site); the key of every
  listing, view and other page (``site.PageKeys``); every file of the output that is not a
  resource page (``others``); what each view was run from, its variables and the file of its
  rows (for ``publish.run_views``); and which folder (device, inode) the output it describes is;
* ``views/NAME-ID.pickle``: a view's rows as plain data (``encode_result``), written once and
  read only when a kept view's rows are needed (an edit that changes no view needs none);
* ``triples.nt``: every triple the site was rendered from (ontology, data, dataset description).

The next build reads the record and removes it (it is written again once the new output is in
place, so an interrupted build leaves none), then compares. If the global fingerprint differs, the
record is missing or unreadable, a resource changed its page path, the output folder is gone or is
not the one recorded, the build has ``--no-site``, or ``--full`` is given, every page is rendered
into a new folder that then replaces the output. Otherwise only the resource pages in the
*affected set* are rendered, and the listing, view, quality, search and other pages and the
search index whose key changed (``site.content_key``: a hash of the page's context, plain data;
the templates and the frame are in the global fingerprint); a page missing from the previous
output is rendered too. They are written into a new folder, with the dumps, views and static
files, and once the whole build has succeeded the output is updated in place
(``update_in_place``): each new file replaces its namesake by a rename, and the files of
resources and pages that are gone are removed. Every other file stays as it was: a national site
is never copied or linked file by file, and nothing is ever written through an existing file. An
update cut short leaves no record, so the next build is a full one.

Global fingerprint (a change re-renders everything): the emkg version and the source of
``site.py``, ``dumps.py``, ``incremental.py`` and the templates; the base IRI; the build date and
the announced endpoint (every page's footer); the ontology and shapes files (class labels show on
every page; the requirements on class pages come from the shapes); the glossary (notation →
expansion, used to mark up the text of every section); the prefixes the sources declare (every
resource's Turtle and JSON-LD, and the names shown for terms, use them: a prefix declared or
changed changes no triple).

The affected set, from the triples added or removed (Δ) and the recorded places that moved. What a
resource page shows (``site.Pages.resource``), and so what it depends on:

1. its own triples, its incoming links and where it is recorded → every subject and IRI object of
   Δ, and every resource whose ``file:line`` changed;
2. the label, type, dates, position and context of each resource it links to or is linked from →
   the neighbours (in and out) of every *subject* of Δ (whose displayed attributes may have
   changed); an update's date and title show beside its sections, and a document's file name
   beside its sections, so the sections of a changed update or document count as changed too;
3. an update page shows its sections in full (text, mentions, programmes, provenance) → the
   ``dcterms:isPartOf`` targets of everything in 2;
4. an organisation, person or area page lists what involves it, through its sub-organisations,
   posts and post holders (``Pages.related``) → every organisation reached from the endpoints of
   Δ by following ``org:subOrganizationOf``, ``org:postIn`` and ``org:holds`` (to any depth).

``tests/test_incremental.py`` builds a tree, edits it in each of these ways, and checks the
incremental output is byte for byte the full build's, that listing pages are both reused and
re-rendered, and that no build writes into the previous output.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import pickle
import shutil
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import pyoxigraph as ox

from .cache import code_fingerprint
from .errors import UsageError
from .load import Location, files_subject_lines, subject_lines
from .project import Project
from .site import RESOURCE_FILES, PageKeys
from .views import Result

log = logging.getLogger(__name__)

CACHE_FORMAT = 4
RDF_TYPE = "http://www.w3.org/1999/02/22-rdf-syntax-ns#type"
DCTERMS_PART_OF = "http://purl.org/dc/terms/isPartOf"
SCHEMA_HAS_PART = "https://schema.org/hasPart"
ORG = "http://www.w3.org/ns/org#"
UP_LINKS = (ORG + "subOrganizationOf", ORG + "postIn", ORG + "holds")


def cache_dir(project: Project, out: Path) -> Path:
    key = hashlib.sha256(str(Path(os.path.abspath(out))).encode("utf-8")).hexdigest()[:16]
    return project.root / ".cache" / "build" / key


def _hash_files(digest, paths: Iterable[Path], root: Path | None = None) -> None:
    for path in sorted(paths):
        name = path.relative_to(root).as_posix() if root is not None else path.name
        digest.update(name.encode("utf-8") + b"\0")
        digest.update(path.read_bytes() + b"\0")


def global_fingerprint(project: Project, date: str | None, endpoint: str | None, glossary: dict[str, str],
                       prefixes: Mapping[str, str] | None = None) -> str:
    from . import __version__

    here = Path(__file__).resolve().parent
    digest = hashlib.sha256(f"{CACHE_FORMAT}\0{__version__}\0{project.base_iri}\0{date}\0{endpoint}\0".encode("utf-8"))
    _hash_files(digest, [here / "site.py", here / "dumps.py", here / "incremental.py"])
    templates = here / "templates"
    _hash_files(digest, [p for p in templates.rglob("*") if p.is_file()], templates)
    _hash_files(digest, project.ontology_dir.rglob("*.ttl") if project.ontology_dir.is_dir() else [], project.root)
    _hash_files(digest, project.shape_files(), project.root)
    digest.update(json.dumps(sorted(glossary.items())).encode("utf-8"))
    digest.update(json.dumps(sorted((prefixes or {}).items())).encode("utf-8"))
    return digest.hexdigest()


def _lines(store: ox.Store) -> set[bytes]:
    text = store.dump(format=ox.RdfFormat.N_TRIPLES, from_graph=ox.DefaultGraph())
    return set(text.splitlines()) if text else set()


def _locations(model) -> dict[str, tuple[str, ...]]:
    locations = model.data.locations
    return {iri: tuple(sorted({f"{loc.file}:{loc.line}" for loc in locations.get(iri, ())})) for iri in model.paths}


class IncrementalSite:
    """Plans which resource pages to render (``select``, for ``site.render_site``) and remembers the
    build once its output is in place (``save``).

    The previous build's record is read when the object is made and then removed from disk, so an
    interrupted build leaves no record describing an output that is not there (the next build is
    then a full one)."""

    def __init__(self, project: Project, out: Path, *, full: bool = False, date: str | None = None,
                 endpoint: str | None = None) -> None:
        self.project = project
        self.out = Path(os.path.abspath(out))
        self.full = full
        self.date = date
        self.endpoint = endpoint
        self.cache = cache_dir(project, self.out)
        self.reason = "first build"
        self.rendered: int | None = None
        self._pending: tuple[dict, set[bytes]] | None = None
        self._old: dict | None = None
        self._old_lines: set[bytes] | None = None
        self._lines: tuple[ox.Store, set[bytes]] | None = None
        self._delta_of: tuple[set[bytes], set[bytes]] | None = None
        self._views: dict[str, tuple[str, object]] = {}  # view name -> (what it was run from, result)
        self._recorded_views: dict[str, tuple[str, str, list[str]]] | None = None  # ``record_views``
        self.page_keys = PageKeys()  # the listing, view and other pages: what they were made from
        self._files: dict[str, tuple[str, dict[str, tuple[int, ...]]]] = {}  # file -> (bytes key, subject -> lines)
        self._others: set[str] = set()  # the output's files that are not resource pages
        self._kept_files: set[str] = set()  # other files left as they are in the output (``keep_files``)
        self.in_place = False  # the site was planned incrementally: the output is updated in place
        try:
            self._read()
        except Exception:  # noqa: BLE001 - an unreadable record means a full build, never a wrong one
            log.debug("build cache unreadable", exc_info=True)
            self.reason = "the build cache could not be read"
            self._old = None
        self.forget()

    def _read(self) -> None:
        state_file, triples_file = self.cache / "state.pickle", self.cache / "triples.nt"
        if not state_file.is_file() or not triples_file.is_file():
            self.reason = "no build cache yet"
            return
        with state_file.open("rb") as f:
            old = pickle.load(f)
        if old.get("format") != CACHE_FORMAT:
            self.reason = "the build cache is from another version"
            return
        try:
            stat = os.stat(self.out / "index.html"), os.stat(self.out)
        except OSError:
            self.reason = "no previous output"
            return
        if old.get("output") != [stat[1].st_dev, stat[1].st_ino]:
            self.reason = "the output folder is not the one the cache describes"
            return
        self._old = old
        self.page_keys.old = old.get("pages", {})
        self.page_keys.old_groups = old.get("groups", {})
        self._old_lines = set(triples_file.read_bytes().splitlines())

    # -- planning -------------------------------------------------------------------------------------

    @property
    def renders_every_page(self) -> bool:
        """Whether ``select`` will render every page whatever the graph holds (``--full``, or no
        usable last build): known before the graph is looked at."""
        return self.full or self._old is None or self._old_lines is None

    def locations(self, graph) -> Mapping[str, list[Location]]:
        """Where each subject is written (``file:line``, shown on its page), for ``render_site``.

        The graph's line index if it is made already (validation located a result). Otherwise per
        file: the last build's record when the file has the same bytes, else the subjects' lines
        the load cache keeps beside the file's index, else a scan for the subjects alone (in
        parallel when there is much to scan: a first build after a validation that located
        nothing). No index of every statement is made."""
        if not hasattr(graph, "files"):
            return graph.index.subjects
        old = self._old.get("files", {}) if self._old is not None and not self.full else {}
        files = [f for f in graph.files if f.problem is None]
        code = code_fingerprint("load", "incremental")
        keys = {f.name: f"{code}\0{f.digest}\0{f.rebase_to}\0{os.path.abspath(f.path)}" for f in files}  # (relative IRIs)
        if graph.has_index:  # made already: its subjects
            index = graph.index
            self._files = {f.name: (keys[f.name], subject_lines(f.index)) for f in files}
            return index.subjects
        known: dict[str, dict[str, tuple[int, ...]]] = {}  # file -> subject -> lines, without a scan
        for parsed in files:
            kept = old.get(parsed.name)
            if kept is not None and kept[0] == keys[parsed.name]:
                known[parsed.name] = kept[1]
        from_record = len(known)
        known.update(files_subject_lines([f for f in files if f.name not in known]))  # the cache's, else scans
        record: dict[str, tuple[str, dict[str, tuple[int, ...]]]] = {}
        merged: dict[str, list[Location]] = {}
        for parsed in files:
            lines = known[parsed.name]
            record[parsed.name] = (keys[parsed.name], lines)
            name = parsed.name
            for subject, numbers in lines.items():
                places = merged.get(subject)
                if places is None:
                    places = merged[subject] = []
                places.extend(Location(name, n) for n in numbers)
        log.debug("site: lines of %d of %d files from the last build's record", from_record, len(files))
        self._files = record
        return merged

    def changed_predicates(self, store: ox.Store, extra: Sequence[ox.Quad] = ()) -> set[str] | None:
        """The predicates of the triples that differ between ``store`` plus ``extra`` (what the
        site will be rendered from, once ``extra`` is added to ``store``) and the last build's;
        None when there is no usable last build (first build, ``--full``, another output
        folder...). For ``publish.run_views``."""
        lines = self._lines_of(store, extra)
        if self.full or self._old is None or self._old_lines is None:
            return None
        from .querydeps import predicates_of

        return predicates_of(self._delta(lines))

    def _delta(self, lines: set[bytes]) -> set[bytes]:
        """The lines that differ from the last build's (made once for the same ``lines``)."""
        if self._delta_of is None or self._delta_of[0] is not lines:
            assert self._old_lines is not None
            self._delta_of = (lines, self._old_lines ^ lines)
        return self._delta_of[1]

    def kept_view(self, name: str, key: str):
        """The last build's result of the view ``name`` if it was run from the same ``key``."""
        if self._old is None:
            return None
        kept = self._old.get("views", {}).get(name)
        if kept is None or kept[0] != key:
            return None
        _key, file, variables = kept
        path = self.cache / "views" / file
        if not path.is_file():
            return None
        return KeptResult(list(variables), path)

    def remember_view(self, name: str, key: str, result) -> None:
        self._views[name] = (key, result)

    def record_views(self) -> None:
        """Write the views' rows into the cache now (``_views_record``), rather than when the build
        is saved (``save`` does it if this was not called): a full build calls this while its page
        workers still run, so that the work is not left to the end, on one core. Call it once
        every view is known."""
        self._recorded_views = self._views_record()

    def _views_record(self) -> dict[str, tuple[str, str, list[str]]]:
        """Each view's (what it was run from, the file of its rows, its variables). A new result's
        rows are written as plain data (``encode_result``) into a new file of ``views/``; a kept
        result's file is the last build's. (The files no view names any more are removed when
        the build is saved, ``_drop_unrecorded_views``.)"""
        folder = self.cache / "views"
        record = {}
        for name, (key, result) in self._views.items():
            if isinstance(result, KeptResult):
                record[name] = (key, result.path.name, list(result.variables))
                continue
            encoded = encode_result(result)
            if encoded is None:
                continue
            folder.mkdir(parents=True, exist_ok=True)
            file = f"{name}-{os.urandom(8).hex()}.pickle"
            tmp = folder / f".{file}.tmp-{os.getpid()}"
            tmp.write_bytes(pickle.dumps(encoded[1], protocol=5))
            tmp.replace(folder / file)
            record[name] = (key, file, encoded[0])
        return record

    def _drop_unrecorded_views(self, record: Mapping[str, tuple[str, str, list[str]]]) -> None:
        """Remove the files of ``views/`` that ``record`` does not name (earlier builds')."""
        folder = self.cache / "views"
        named = {file for _key, file, _vars in record.values()}
        for path in (folder.iterdir() if folder.is_dir() else ()):
            if path.name not in named and path.suffix == ".pickle":
                path.unlink(missing_ok=True)

    def known_lines(self, store: ox.Store, lines: Iterable[bytes]) -> None:
        """The N-Triples lines of ``store`` plus the quads the site will add to it (as the dumps
        made them), so that they are not made again (``_lines_of``)."""
        self._lines = (store, set(lines))

    def _lines_of(self, store: ox.Store, extra: Sequence[ox.Quad] = ()) -> set[bytes]:
        """The N-Triples lines of ``store`` (plus ``extra``), remembered for that store object:
        ``select`` asks again once ``extra`` has been added to it."""
        if self._lines is None or self._lines[0] is not store:
            lines = _lines(store)
            if extra:
                text = ox.serialize((q.triple for q in extra), format=ox.RdfFormat.N_TRIPLES)
                lines |= set(text.splitlines())
            self._lines = (store, lines)
        return self._lines[1]

    def select(self, model, pages) -> tuple[set[str] | None, Path | None]:
        """For ``render_site``: (IRIs to render, previous output), or (None, None): render every page."""
        glossary = dict(pages.glossary) if hasattr(pages, "glossary") else {}
        fingerprint = global_fingerprint(self.project, self.date, self.endpoint, glossary, model.prefixes.mapping)
        lines = self._lines_of(model.data.store)
        state = {"format": CACHE_FORMAT, "fingerprint": fingerprint, "paths": dict(model.paths),
                 "locations": _locations(model)}
        self._pending = (state, lines)
        try:
            only = self._plan(model, state, lines)
        except Exception:  # noqa: BLE001 - a cache we cannot use means a full build, never a wrong one
            log.debug("incremental build cache unusable", exc_info=True)
            self.reason = "the build cache could not be used"
            only = None
        if only is None:
            log.info("site: every page (%s)", self.reason)
            return None, None
        self.rendered = len(only & set(model.paths))
        self.in_place = True
        log.info("site: incremental: %d of %d resource pages to render", self.rendered, len(model.paths))
        return only, self.out

    def _plan(self, model, state: dict, lines: set[bytes]) -> set[str] | None:
        if self.full:
            self.reason = "--full"
            return None
        old = self._old
        if old is None or self._old_lines is None:
            return None
        if old.get("fingerprint") != state["fingerprint"]:
            self.reason = "the code, ontology, shapes, glossary, prefixes, date, endpoint or base IRI changed"
            return None
        old_paths, new_paths = old["paths"], state["paths"]
        if any(old_paths.get(iri, path) != path for iri, path in new_paths.items()):
            self.reason = "a resource moved to another page path"
            return None
        affected = {iri for iri in new_paths if iri not in old_paths}
        old_loc, new_loc = old["locations"], state["locations"]
        moved = {iri for iri, loc in new_loc.items() if old_loc.get(iri) != loc}
        affected |= moved
        delta = self._delta(lines)
        added = _parse_lines(line for line in delta if line in lines)
        removed = _parse_lines(line for line in delta if line not in lines)
        affected |= affected_by(model, added + removed)
        self.page_keys.unaffected = self._unaffected_groups(model, added, removed, bool(moved) or old_loc.keys() != new_loc.keys())
        return affected

    def _unaffected_groups(self, model, added: list[ox.Triple], removed: list[ox.Triple], moved: bool) -> set[str]:
        """The groups of pages (``site.PageKeys``) that nothing of the edit can change: none of
        the predicates, subjects (every statement) or objects (every incoming link) they read
        changed; nor which resources exist, when they read that; nor where a subject is written,
        when they read that; and, for the views' pages, every view's rows are the last build's."""
        predicates: set[str] = set()
        objects: set[str] = set()
        count: dict[str, int] = {}  # subject -> statements removed minus added
        for part, sign in ((added, -1), (removed, 1)):
            for triple in part:
                if not isinstance(triple.subject, ox.NamedNode) or isinstance(triple.object, (ox.BlankNode, ox.Triple)):
                    return set()  # blank nodes are labelled anew by every dump: nothing is sure
                predicates.add(triple.predicate.value)
                if isinstance(triple.object, ox.NamedNode):
                    objects.add(triple.object.value)
                count[triple.subject.value] = count.get(triple.subject.value, 0) + sign
        subjects = set(count)
        now = {s: sum(map(len, model.statements_of(s).values())) for s in subjects}
        appeared_or_went = any((now[s] == 0) != (now[s] + count[s] == 0) for s in subjects)
        views_kept = self._old is not None and set(self._views) == set(self._old.get("views", {})) and all(
            isinstance(result, KeptResult) for _key, result in self._views.values())
        unaffected = set()
        for name, group in self.page_keys.old_groups.items():
            read_predicates, read_subjects, read_objects, flags = group["reads"]
            if (predicates.isdisjoint(read_predicates) and subjects.isdisjoint(read_subjects)
                    and objects.isdisjoint(read_objects) and not ("subjects" in flags and appeared_or_went)
                    and not ("locations" in flags and moved) and (name != "views" or views_kept)):
                unaffected.add(name)
        log.debug("site: page groups the edit cannot change: %s", sorted(unaffected))
        return unaffected

    # -- the output -------------------------------------------------------------------------------------

    def note_output(self, folder: Path) -> None:
        """Remember the files of a complete new output ``folder`` that are not resource pages
        (before it replaces the output: for the next incremental build to tell which are gone)."""
        if self._pending is not None:
            self._others = self._other_files(_files_in(folder))

    def keep_files(self, files: Iterable[str]) -> None:
        """Files of the output that an update in place leaves as they are (written by no step of
        this build, yet part of its output)."""
        self._kept_files.update(files)

    def update_in_place(self, tmp: Path, out: Path) -> None:
        """Update the previous output ``out`` (an incremental build, ``in_place``) with the files
        written into ``tmp``, each replacing its namesake by a rename; remove the files of the
        resources and pages that are gone; then remove ``tmp``."""
        assert self.in_place and self._pending is not None and self._old is not None
        info = os.stat(out)
        if [info.st_dev, info.st_ino] != self._old.get("output"):
            raise UsageError(f"{out}: the output folder was replaced while this build ran (another build?); "
                             "nothing was updated: run the build again")
        written = _files_in(tmp)
        others = self._other_files(written) | set(self.page_keys.new) | self._kept_files
        folders = _folders(self._pending[0]["paths"])
        gone = {f"{folder}/{name}" for folder in _folders(self._old["paths"]) - folders for name in RESOURCE_FILES}
        gone |= set(self._old.get("others", ())) - others
        made: set[str] = set()
        for rel in written:
            parent = rel.rpartition("/")[0]
            if parent and parent not in made:
                os.makedirs(out / parent, exist_ok=True)
                made.add(parent)
            os.replace(tmp / rel, out / rel)
        emptied: set[Path] = set()
        for rel in sorted(gone - set(written)):
            try:
                (out / rel).unlink()
            except FileNotFoundError:
                pass
            emptied.update(p for p in (out / rel).parents if p != out and out in p.parents)
        for folder in sorted(emptied, key=lambda p: len(p.parts), reverse=True):
            try:
                folder.rmdir()  # only if empty
            except OSError:
                pass
        shutil.rmtree(tmp, ignore_errors=True)
        self._others = others
        log.info("site: the output updated in place: %d files written, %d removed", len(written), len(gone - set(written)))

    def _other_files(self, files: Iterable[str]) -> set[str]:
        """Those of ``files`` (relative paths in an output) that are not this build's resource pages."""
        assert self._pending is not None
        folders = _folders(self._pending[0]["paths"])
        return {rel for rel in files if not _resource_file(rel, folders)}

    # -- remembering ------------------------------------------------------------------------------------

    def save(self, out: Path) -> None:
        """Remember this build, now that its output is in place at ``out``."""
        if self._pending is None:
            return
        state, lines = self._pending
        info = os.stat(out)
        self.cache.mkdir(parents=True, exist_ok=True)
        # the views' rows and the triples first: the record (state.pickle) only ever describes a complete cache
        views = self._recorded_views if self._recorded_views is not None else self._views_record()
        state = dict(state, output=[info.st_dev, info.st_ino], pages=self.page_keys.new, files=self._files,
                     groups=self.page_keys.new_groups, others=sorted(self._others), views=views)
        for name, data in (("triples.nt", b"\n".join(lines) + b"\n"), ("state.pickle", pickle.dumps(state, protocol=5))):
            tmp = self.cache / f".{name}.tmp-{os.getpid()}"
            tmp.write_bytes(data)
            tmp.replace(self.cache / name)
        self._drop_unrecorded_views(views)

    def forget(self) -> None:
        for name in ("state.pickle", "triples.nt"):
            try:
                (self.cache / name).unlink()
            except FileNotFoundError:
                pass


def _folders(paths: Mapping[str, str]) -> set[str]:
    """The folders of the resource pages ``paths`` (IRI -> ``folder/index.html``)."""
    return {path.rpartition("/")[0] for path in paths.values()}


def _resource_file(rel: str, folders: set[str]) -> bool:
    folder, _, name = rel.rpartition("/")
    return name in RESOURCE_FILES and folder in folders


def _files_in(root: Path) -> list[str]:
    """Every file under ``root``, as a relative POSIX path, sorted."""
    found = []
    base = os.fspath(root)
    for here, _dirs, files in os.walk(base):
        rel = os.path.relpath(here, base).replace(os.sep, "/")
        prefix = "" if rel == "." else rel + "/"
        found.extend(prefix + name for name in files)
    return sorted(found)


def encode_result(result) -> tuple | None:
    """A view's ``Result`` as plain data: (variables, rows), a term as its IRI (a str) or a tuple
    (``"@"``, text, language), (``"^"``, text, datatype), (``"_"``, blank node id). Pickled,
    it is written and read several times faster than pyoxigraph terms. None for any other term."""
    NamedNode, Literal, BlankNode = ox.NamedNode, ox.Literal, ox.BlankNode

    def term(t):
        kind = type(t)
        if kind is NamedNode:
            return t.value
        if t is None:
            return None
        if kind is Literal:
            if t.direction is not None:
                raise TypeError("a literal with a base direction")
            if t.language is not None:
                return ("@", t.value, t.language)
            return ("^", t.value, t.datatype.value)
        if kind is BlankNode:
            return ("_", t.value)
        raise TypeError(f"a {kind.__name__} in a view's rows")

    try:
        return list(result.variables), [tuple(map(term, row)) for row in result.rows]
    except TypeError as exc:
        log.debug("view rows not kept: %s", exc)
        return None


class KeptResult(Result):
    """A view's result kept from the last build: its rows are read from ``path`` (the encoded
    rows, ``_views_record``) and decoded when first asked for. An edit that changes no view needs
    none of them: the views' files and pages stay as they are."""

    def __init__(self, variables: list[str], path: Path) -> None:  # noqa: D107 - not the dataclass's
        self.variables = variables
        self.path = path
        self._decoded: list | None = None

    @property  # type: ignore[override]
    def rows(self) -> list:
        if self._decoded is None:
            with self.path.open("rb") as f:
                rows = pickle.load(f)
            if not isinstance(rows, list):
                raise ValueError(f"{self.path}: not the rows of a view")
            self._decoded = _decode_rows(rows)
        return self._decoded


def _decode_rows(rows: list) -> list[tuple]:
    """The rows of an encoded result as pyoxigraph terms (equal terms are made once)."""
    NamedNode, Literal, BlankNode = ox.NamedNode, ox.Literal, ox.BlankNode
    nodes: dict[str, ox.NamedNode] = {}
    others: dict[tuple, object] = {}

    def node(iri: str) -> ox.NamedNode:
        made = nodes.get(iri)
        if made is None:
            made = nodes[iri] = NamedNode(iri)
        return made

    def term(c):
        if c is None:
            return None
        if type(c) is str:
            made = nodes.get(c)
            return made if made is not None else node(c)
        made = others.get(c)
        if made is None:
            kind = c[0]
            if kind == "@":
                made = Literal(c[1], language=c[2])
            elif kind == "^":
                made = Literal(c[1], datatype=node(c[2]))
            elif kind == "_":
                made = BlankNode(c[1])
            else:
                raise ValueError(f"unknown term kind {kind!r}")
            others[c] = made
        return made

    return [tuple(map(term, row)) for row in rows]


def _parse_lines(lines: Iterable[bytes]) -> list[ox.Triple]:
    """N-Triples lines as triples."""
    data = b"\n".join(lines)
    return list(ox.parse(data, format=ox.RdfFormat.N_TRIPLES)) if data else []


def affected_by(model, delta: Iterable[ox.Triple]) -> set[str]:
    """The resources whose pages can show something that the changed triples changed."""
    subjects: set[str] = set()
    objects: set[str] = set()
    for triple in delta:
        if isinstance(triple.subject, ox.NamedNode):
            subjects.add(triple.subject.value)
        if isinstance(triple.object, ox.NamedNode):
            objects.add(triple.object.value)
    out_of, in_of = model.statements_of, model.links_to  # not recorded: planning, not page building

    def out_iris(x: str) -> set[str]:
        return {o.value for objs in out_of(x).values() for o in objs if isinstance(o, ox.NamedNode)}

    def in_iris(x: str, predicate: str | None = None) -> set[str]:
        return {s for s, p in in_of(x) if predicate is None or p == predicate}

    affected = subjects | objects
    # 2. resources whose displayed attributes may have changed; an update's or a document's show
    #    beside their sections
    shown = set(subjects)
    for y in list(subjects):
        shown |= in_iris(y, DCTERMS_PART_OF)
    neighbours: set[str] = set()
    for y in shown:
        neighbours |= out_iris(y) | in_iris(y)
    affected |= shown | neighbours
    # 3. update pages show their sections in full
    for x in shown | neighbours:
        affected |= {o.value for o in out_of(x).get(DCTERMS_PART_OF, []) if isinstance(o, ox.NamedNode)}
        affected |= in_iris(x, SCHEMA_HAS_PART)
    # 4. involvement through sub-organisations, posts and post holders, to any depth
    todo = list(subjects | objects | neighbours)
    seen = set(todo)
    while todo:
        x = todo.pop()
        for p in UP_LINKS:
            for o in out_of(x).get(p, []):
                if isinstance(o, ox.NamedNode) and o.value not in seen:
                    seen.add(o.value)
                    todo.append(o.value)
    affected |= seen
    return affected
