"""Parse the project's Turtle into one graph, keeping where every subject and triple is written.

pyoxigraph parses (fast, and its syntax errors carry line and column); a light scanner over the
same text records the line of every subject block and of every predicate inside it, so that a
validation result about a focus node can point at ``FILE:LINE``.
"""

from __future__ import annotations

import hashlib
import logging
import multiprocessing
import os
import re
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple
from urllib.parse import urljoin

import pyoxigraph as ox

from .cache import cache_root, code_fingerprint, entry_name, read_entry, write_entry
from .project import DEFAULT_BASE_IRI, Project

log = logging.getLogger(__name__)

MAX_FILE_BYTES = 64 * 1024 * 1024


class Location(NamedTuple):
    """A place in a source file: path relative to the project root, 1-based line and column.

    (A named tuple: millions are made, compared and cached at national scale.)"""

    file: str
    line: int
    col: int = 1

    def __str__(self) -> str:
        return f"{self.file}:{self.line}"


@dataclass(frozen=True)
class SyntaxProblem:
    """A file that could not be parsed."""

    location: Location
    message: str

    def __str__(self) -> str:
        loc = self.location
        return f"{loc.file}:{loc.line}:{loc.col}: error: {self.message}"


@dataclass
class SourceIndex:
    """Where subjects and (subject, predicate) pairs are written. IRIs are plain strings."""

    subjects: dict[str, list[Location]] = field(default_factory=dict)
    statements: dict[tuple[str, str], list[Location]] = field(default_factory=dict)
    objects: dict[tuple[str, str, str], Location] = field(default_factory=dict)

    def locate(self, subject: str, predicate: str | None = None, obj: str | None = None) -> Location | None:
        """The best known place for a triple, a subject's statement, or a subject."""
        if predicate is not None and obj is not None and (subject, predicate, obj) in self.objects:
            return self.objects[(subject, predicate, obj)]
        if predicate is not None and (subject, predicate) in self.statements:
            return self.statements[(subject, predicate)][0]
        places = self.subjects.get(subject)
        return places[0] if places else None

    def files_of(self, subject: str) -> list[str]:
        return sorted({loc.file for loc in self.subjects.get(subject, [])})

    def merge(self, other: SourceIndex) -> None:
        for key, locs in other.subjects.items():
            self.subjects.setdefault(key, []).extend(locs)
        for skey, locs in other.statements.items():
            self.statements.setdefault(skey, []).extend(locs)
        for okey, loc in other.objects.items():
            self.objects.setdefault(okey, loc)


@dataclass
class ParsedFile:
    """One file's triples, prefixes and index (or its syntax problem)."""

    path: Path
    name: str
    triples: list[ox.Triple] = field(default_factory=list)
    prefixes: dict[str, str] = field(default_factory=dict)
    index: SourceIndex = field(default_factory=SourceIndex)
    problem: SyntaxProblem | None = None
    digest: str = ""  # sha256 of the file's bytes (empty when it could not be read)
    pending: IndexJob | None = field(default=None, repr=False, compare=False)  # a deferred line scan
    rebase_to: str | None = field(default=None, repr=False, compare=False)  # the project's base IRI, if not the default
    # the parser's quads (default graph), kept so the store takes them as they are
    quads: list[ox.Quad] = field(default_factory=list, repr=False, compare=False)
    loaded: bool = field(default=False, repr=False, compare=False)  # already in the store (``into``)

    def ensure_index(self) -> SourceIndex:
        """The file's line index, scanned (or read from the cache) now if it was deferred."""
        if self.pending is not None:
            self._take(self.pending.run())
        return self.index

    def cached_subject_lines(self) -> dict[str, tuple[int, ...]] | None:
        """Each subject's lines in this file when they are known without making its whole index:
        from the index if it is made, else from the cache; None when neither has them."""
        if self.pending is None:
            return subject_lines(self.index)
        kept = self.pending.kept_subject_lines()
        return None if kept is None else self.rebased_lines(kept)

    def rebased_lines(self, lines: dict[str, tuple[int, ...]]) -> dict[str, tuple[int, ...]]:
        """Subjects' lines as scanned (IRIs on the default base) with the project's base IRI."""
        if not self.rebase_to:
            return lines
        return {rebase_iri(s, self.rebase_to): n for s, n in lines.items()}

    def _take(self, index: SourceIndex) -> None:
        self.index = _rebase_index(index, self.rebase_to) if self.rebase_to else index
        self.pending = None


@dataclass
class LoadedGraph:
    """The parsed sources: a pyoxigraph store (default graph) plus the source index.

    The index is made when it is first asked for (``index``): a graph that validates without a
    result never needs to know where anything is written, and at national scale the scan is the
    slowest part of loading."""

    store: ox.Store
    prefixes: dict[str, str]
    files: list[ParsedFile]
    _index: SourceIndex | None = field(default=None, repr=False)

    @property
    def index(self) -> SourceIndex:
        if self._index is None:
            self._index = self.build_index()
        return self._index

    @property
    def has_index(self) -> bool:
        return self._index is not None

    def build_index(self, parallel: bool = True) -> SourceIndex:
        """Every file's index (the deferred scans run together, on every core when ``parallel``), merged."""
        if self._index is not None:
            return self._index
        waiting = [f for f in self.files if f.pending is not None]
        jobs = [f.pending for f in waiting]
        scanned = run_index_jobs(jobs) if parallel else [job.run() for job in jobs]
        for parsed, index in zip(waiting, scanned):
            parsed._take(index)
        merged = SourceIndex()
        for parsed in self.files:
            if parsed.problem is None:
                merged.merge(parsed.index)
        self._index = merged
        return merged

    @property
    def problems(self) -> list[SyntaxProblem]:
        return [f.problem for f in self.files if f.problem is not None]

    def __len__(self) -> int:
        return len(self.store)

    def to_rdflib(self):
        """The same triples as an rdflib Graph (for pySHACL and rdflib-based tools)."""
        from .terms import store_to_rdflib

        return store_to_rdflib(self.store, self.prefixes)


def read_text(path: Path, name: str) -> tuple[str | None, SyntaxProblem | None]:
    """A source file's text, or the reason it cannot be read (never an exception)."""
    try:
        if path.is_dir():
            return None, SyntaxProblem(Location(name, 1), "is a directory, not a Turtle file")
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            return None, SyntaxProblem(Location(name, 1), f"file is {size} bytes; the limit is {MAX_FILE_BYTES}")
        raw = path.read_bytes()
    except PermissionError:
        return None, SyntaxProblem(Location(name, 1), "cannot read the file: permission denied")
    except OSError as exc:
        return None, SyntaxProblem(Location(name, 1), f"cannot read the file: {exc.strerror or exc}")
    if raw.startswith(b"\xef\xbb\xbf"):
        return None, SyntaxProblem(Location(name, 1), "file starts with a byte-order mark (BOM); save it as UTF-8 without BOM")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        col = exc.start - (raw.rfind(b"\n", 0, exc.start) + 1) + 1
        return None, SyntaxProblem(Location(name, line, col), f"not UTF-8: byte 0x{raw[exc.start]:02x} cannot be decoded; save the file as UTF-8")
    if "\x00" in text:
        line = text[: text.index("\x00")].count("\n") + 1
        return None, SyntaxProblem(Location(name, line), "file contains a NUL byte; it is not a text file")
    return text, None


def parse_file(path: Path, name: str, base_iri: str = DEFAULT_BASE_IRI, cache: Path | None = None,
               defer: bool = False, into: ox.Store | None = None) -> ParsedFile:
    """Parse one Turtle file with pyoxigraph and index it; syntax problems are returned, not raised.

    ``cache``: a folder where the line index of each file is kept, keyed by the file's bytes (the
    scanner is the slow part of loading; an unchanged file is not scanned again). ``defer``: leave
    the scan to the caller (``parsed.pending``; see ``load_files``, which runs them in parallel).
    ``into``: load the triples straight into this store (natively, about twice as fast; then
    ``parsed.loaded`` is True and ``parsed.triples`` empty) when the file's prefixes can all be
    read from its header; otherwise, and for a file with a syntax error, they are parsed as usual."""
    parsed = ParsedFile(path=path, name=name)
    text, problem = read_text(path, name)
    if problem is not None:
        parsed.problem = problem
        return parsed
    assert text is not None
    if not text.strip():
        parsed.problem = SyntaxProblem(Location(name, 1), "file is empty; a Turtle file needs at least its @prefix lines")
        return parsed
    data = text.encode("utf-8")
    parsed.digest = hashlib.sha256(data).hexdigest()
    if into is not None:
        parsed.loaded = _load_into(into, text, data, path.resolve().as_uri(), parsed)
    try:
        if not parsed.loaded:
            reader = ox.parse(data, format=ox.RdfFormat.TURTLE, base_iri=path.resolve().as_uri())
            parsed.quads = list(reader)
            parsed.triples = [q.triple for q in parsed.quads]
            parsed.prefixes = dict(reader.prefixes)
    except SyntaxError as exc:
        parsed.problem = SyntaxProblem(Location(name, exc.lineno or 1, exc.offset or 1), _clean_message(str(exc.msg)))
        parsed.triples = []
        return parsed
    except MemoryError:
        parsed.problem = SyntaxProblem(
            Location(name, _line_of_huge_token(text)),
            f"a literal or IRI here is longer than the parser's limit of {TOKEN_LIMIT // (1024 * 1024)} MiB; "
            "keep large text outside the graph (link to it) or split it",
        )
        parsed.triples = []
        return parsed
    base = path.resolve().as_uri()
    job = IndexJob(name, text, parsed.prefixes, base)
    if cache is not None:
        entry = cache / entry_name(name, base)
        key = hashlib.sha256(code_fingerprint("load", "cache").encode("utf-8") + b"\0" + data).hexdigest()
        job = IndexJob(name, text, parsed.prefixes, base, entry, key)
    if defer:
        parsed.pending = job
    else:
        parsed.index = job.run()
    return parsed


_HEADER_LINE = re.compile(r"\s*(?:$|#|@prefix\s|@base\s|(?i:prefix)\s|(?i:base)\s)")
_PREFIX_WORD = re.compile(r"(?i)prefix")


def _header_prefixes(text: str, base: str) -> dict[str, str] | None:
    """The prefixes a Turtle text declares, read from its header (the lines of declarations,
    comments and blanks it starts with); None when the rest may declare more (it says "prefix")."""
    end = 0
    for line in text.splitlines(keepends=True):
        if not _HEADER_LINE.match(line):
            break
        end += len(line)
    if _PREFIX_WORD.search(text, end):
        return None
    try:
        reader = ox.parse(text[:end].encode("utf-8"), format=ox.RdfFormat.TURTLE, base_iri=base)
        if list(reader):
            return None
        return dict(reader.prefixes)
    except (SyntaxError, ValueError):
        return None


def _load_into(store: ox.Store, text: str, data: bytes, base: str, parsed: ParsedFile) -> bool:
    """Load ``data`` into ``store`` natively (a transaction: all or nothing); False when the
    prefixes cannot be told from the header or the file does not parse (the caller parses it)."""
    prefixes = _header_prefixes(text, base)
    if prefixes is None:
        return False
    try:
        store.load(data, format=ox.RdfFormat.TURTLE, base_iri=base)
    except (SyntaxError, ValueError, OSError, MemoryError):
        return False
    parsed.prefixes = prefixes
    return True


@dataclass(frozen=True)
class IndexJob:
    """One file's line scan still to do (and where to keep its result)."""

    name: str
    text: str
    prefixes: dict[str, str]
    base: str
    entry: Path | None = None
    key: str | None = None

    def kept(self) -> SourceIndex | None:
        """The index the cache holds for this very text, if any."""
        if self.entry is None or self.key is None:
            return None
        index = read_entry(self.entry, self.key)
        return index if isinstance(index, SourceIndex) else None

    def kept_subject_lines(self) -> dict[str, tuple[int, ...]] | None:
        """Each subject's lines, as the cache holds them beside this very text's index (a site
        needs no more, and they read in a fraction of the time), if it does."""
        entry = self._subjects_entry()
        if entry is None or self.key is None:
            return None
        lines = read_entry(entry, self.key)
        return lines if isinstance(lines, dict) else None

    def _subjects_entry(self) -> Path | None:
        """Where the subjects' lines are kept: beside the index (None when it is not kept)."""
        return None if self.entry is None else self.entry.with_name(f"{self.entry.stem}.subjects{self.entry.suffix}")

    def scan(self) -> SourceIndex:
        """Scan the text (and keep the index, and its subjects' lines, in the cache)."""
        index = index_turtle(self.text, self.name, self.prefixes, self.base)
        if self.entry is not None and self.key is not None:
            write_entry(self.entry, self.key, index)
            write_entry(self._subjects_entry(), self.key, subject_lines(index))
        return index

    def run(self) -> SourceIndex:
        """The cached index, else a scan."""
        kept = self.kept()
        return kept if kept is not None else self.scan()

    def scan_subject_lines(self) -> dict[str, tuple[int, ...]]:
        """Each subject's lines, from a scan for the subjects alone (about half the time of the
        whole index, and a fraction of its memory); kept in the cache as ``scan`` keeps them."""
        lines = subject_lines(index_turtle(self.text, self.name, self.prefixes, self.base, subjects_only=True))
        if self.entry is not None and self.key is not None:
            write_entry(self._subjects_entry(), self.key, lines)
        return lines


PARALLEL_INDEX_CHARS = 4_000_000  # below this much text to scan, a second process costs more than it saves
_JOBS: list[IndexJob] = []


def _scan_job(number: int) -> SourceIndex:
    return _JOBS[number].scan()


def _subjects_job(number: int) -> dict[str, tuple[int, ...]]:
    return _JOBS[number].scan_subject_lines()


def files_subject_lines(files: Sequence[ParsedFile]) -> dict[str, dict[str, tuple[int, ...]]]:
    """File name -> each subject's lines, for files without syntax problems: from the file's index
    if made, else from the cache, else from scans for the subjects alone (on every core when
    there is enough text). The files' whole indexes are not made."""
    found: dict[str, dict[str, tuple[int, ...]]] = {}
    todo: list[ParsedFile] = []
    for parsed in files:
        if parsed.problem is not None:
            continue
        lines = parsed.cached_subject_lines()
        if lines is None:
            todo.append(parsed)
        else:
            found[parsed.name] = lines
    jobs = [parsed.pending for parsed in todo]
    for parsed, lines in zip(todo, _in_workers(jobs, _subjects_job, IndexJob.scan_subject_lines)):  # type: ignore[arg-type]
        found[parsed.name] = parsed.rebased_lines(lines)
    return found


def run_index_jobs(jobs: list[IndexJob]) -> list[SourceIndex]:
    """Scan the files, on every core when there is enough text (forked workers; same indexes).
    Indexes the cache holds are read here; only the others are scanned."""
    found = {n: job.kept() for n, job in enumerate(jobs)}
    todo = [n for n, index in found.items() if index is None]
    for n, index in zip(todo, _scan_all([jobs[n] for n in todo])):
        found[n] = index
    return [found[n] for n in range(len(jobs))]  # type: ignore[misc]


def _scan_all(jobs: list[IndexJob]) -> list[SourceIndex]:
    """Scan (the cache is already known not to hold these)."""
    return _in_workers(jobs, _scan_job, IndexJob.scan)


def _in_workers(jobs: list[IndexJob], by_number: Callable[[int], Any], here: Callable[[IndexJob], Any]) -> list:
    """``here(job)`` for each job, in that order: in forked workers (``by_number``, the job's
    number in ``_JOBS``, which they inherit) when there are two cores and enough text, else here."""
    workers = min(os.cpu_count() or 1, len(jobs))
    if workers < 2 or sum(len(j.text) for j in jobs) < PARALLEL_INDEX_CHARS or "fork" not in multiprocessing.get_all_start_methods():
        return [here(job) for job in jobs]
    _JOBS[:] = jobs  # inherited by the forked workers: only job numbers and results cross over
    order = sorted(range(len(jobs)), key=lambda n: -len(jobs[n].text))  # the largest first
    try:
        with ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("fork")) as pool:
            found = dict(zip(order, pool.map(by_number, order)))
        return [found[n] for n in range(len(jobs))]
    except (OSError, BrokenProcessPool) as exc:
        log.debug("line index: no worker processes (%s); scanning here", exc)
        return [here(job) for job in jobs]
    finally:
        _JOBS.clear()


TOKEN_LIMIT = 16 * 1024 * 1024  # pyoxigraph's largest token


def _line_of_huge_token(text: str) -> int:
    """The line where the first over-long string or IRI token starts (1 when none is found)."""
    for match in re.finditer(r'"""|\'\'\'|"|\'|<', text):
        quote = match.group()
        close = ">" if quote == "<" else quote
        end = text.find(close, match.end())
        if end - match.end() > TOKEN_LIMIT or end < 0:
            return text.count("\n", 0, match.start()) + 1
    return 1


def _clean_message(message: str) -> str:
    """pyoxigraph says 'Parser error at line 3 between columns 1 and 5: X'; keep X (the position is shown apart)."""
    return re.sub(r"^Parser error (at|between) [^:]*: ", "", message).strip()


def load_files(paths: Iterable[Path], project: Project, *, use_cache: bool = True) -> LoadedGraph:
    """Parse every file into one store; files with syntax problems add nothing to it.

    ``use_cache``: keep and reuse each file's line index in ``.cache/load/`` (see ``cache.py``).
    The line index is made when first asked for (``LoadedGraph.index``)."""
    cache = cache_root(project) / "load" if use_cache else None
    store = ox.Store()
    prefixes: dict[str, str] = {}
    files: list[ParsedFile] = []
    rebase = project.base_iri != DEFAULT_BASE_IRI
    for path in paths:
        parsed = parse_file(path, project.relative(path), project.base_iri, cache, defer=True,
                            into=None if rebase else store)
        files.append(parsed)
        if parsed.problem is not None:
            log.debug("skipping %s: %s", parsed.name, parsed.problem)
            continue
        if not parsed.loaded:
            triples = parsed.triples
            if rebase:
                triples = [_rebase_triple(t, project.base_iri) for t in triples]
            if triples is parsed.triples and len(parsed.quads) == len(triples):
                store.bulk_extend(parsed.quads)  # as parsed: no new Quad objects
            else:
                store.bulk_extend(ox.Quad(t.subject, t.predicate, t.object, ox.DefaultGraph()) for t in triples)
            parsed.quads = []
        if rebase:
            parsed.rebase_to = project.base_iri
            parsed.prefixes = {k: rebase_iri(v, project.base_iri) for k, v in parsed.prefixes.items()}
        for key, value in parsed.prefixes.items():
            prefixes.setdefault(key, value)
    log.debug("loaded %d triples from %d files", len(store), len(files))
    return LoadedGraph(store=store, prefixes=prefixes, files=files)


def load_graph(project: Project, extra: Iterable[Path] = ()) -> LoadedGraph:
    """The ontology and data of a project (plus any extra files)."""
    return load_files([*project.graph_files(), *extra], project)


def load_shapes(project: Project) -> LoadedGraph:
    return load_files(project.shape_files(), project)


# --- base IRI ----------------------------------------------------------------------------------

def rebase_iri(iri: str, base: str) -> str:
    return base + iri[len(DEFAULT_BASE_IRI):] if iri.startswith(DEFAULT_BASE_IRI) else iri


def _rebase_term(term, base: str):
    if isinstance(term, ox.NamedNode):
        return ox.NamedNode(rebase_iri(term.value, base))
    if isinstance(term, ox.Literal) and term.datatype.value == "http://www.w3.org/2001/XMLSchema#anyURI":
        return ox.Literal(rebase_iri(term.value, base), datatype=term.datatype)
    return term


def _rebase_triple(triple: ox.Triple, base: str) -> ox.Triple:
    return ox.Triple(_rebase_term(triple.subject, base), _rebase_term(triple.predicate, base), _rebase_term(triple.object, base))


def subject_lines(index: SourceIndex) -> dict[str, tuple[int, ...]]:
    """Each subject's lines (one file's index: the file is known)."""
    return {s: tuple(loc.line for loc in locs) for s, locs in index.subjects.items()}


def _rebase_index(index: SourceIndex, base: str) -> SourceIndex:
    out = SourceIndex()
    for s, locs in index.subjects.items():
        out.subjects[rebase_iri(s, base)] = locs
    for (s, p), locs in index.statements.items():
        out.statements[(rebase_iri(s, base), rebase_iri(p, base))] = locs
    for (s, p, o), loc in index.objects.items():
        out.objects[(rebase_iri(s, base), rebase_iri(p, base), rebase_iri(o, base))] = loc
    return out


# --- the line scanner -----------------------------------------------------------------------------

_TOKEN = re.compile(
    r"""
    (?P<ws>[ \t\r]+)
  | (?P<nl>\n)
  | (?P<comment>\#[^\n]*)
  | (?P<iri><[^>\s]*>)
  | (?P<long>\"\"\"(?:[^"\\]|\\.|"(?!""))*\"\"\"|'''(?:[^'\\]|\\.|'(?!''))*''')
  | (?P<str>"(?:[^"\\\n]|\\.)*"|'(?:[^'\\\n]|\\.)*')
  | (?P<punct>\^\^|[.;,\[\]()])
  | (?P<word>[^\s.;,\[\]()"'<>#]+(?:\.[^\s.;,\[\]()"'<>#]+)*)
  | (?P<other>.)
    """,
    re.VERBOSE | re.DOTALL,
)

_LOCAL_ESCAPE = re.compile(r"\\([_~.\-!$&'()*+,;=/?#@%])")
RDF_TYPE = "http://www.w3.org/1999/02/22-rdf-syntax-ns#type"


def _expand(kind: str, value: str, prefixes: dict[str, str], base: str) -> str | None:
    """The IRI a subject/predicate/object token names, or None for literals and blank nodes."""
    if kind == "iri":
        return urljoin(base, value[1:-1])
    if kind == "word":
        if value == "a":
            return RDF_TYPE
        if value.startswith("_:") or ":" not in value:
            return None
        prefix, local = value.split(":", 1)
        if prefix not in prefixes:
            return None
        return prefixes[prefix] + _LOCAL_ESCAPE.sub(r"\1", local)
    return None


LITERAL_KEY = "\x00literal:"
_STRING_ESCAPE = re.compile(r"\\(?:u([0-9A-Fa-f]{4})|U([0-9A-Fa-f]{8})|(.))", re.DOTALL)
_ECHAR = {"t": "\t", "b": "\b", "n": "\n", "r": "\r", "f": "\f", '"': '"', "'": "'", "\\": "\\"}


def literal_key(lexical: str) -> str:
    """The index key of a literal object (its lexical form), apart from IRIs."""
    return LITERAL_KEY + lexical


def literal_key_of_token(kind: str, token: str) -> str | None:
    """The index key of a literal token as written (strings unescaped; numbers and booleans as is)."""
    if kind in ("str", "long"):
        quote = 3 if kind == "long" else 1
        body = token[quote:-quote]
        return literal_key(_STRING_ESCAPE.sub(_unescape, body))
    if kind == "word" and ":" not in token and not token.startswith("@"):
        return literal_key(token)
    return None


def _unescape(match: re.Match) -> str:
    code = match.group(1) or match.group(2)
    if code:
        return chr(int(code, 16))
    return _ECHAR.get(match.group(3), match.group(3))


def index_turtle(text: str, name: str, prefixes: dict[str, str], base: str, subjects_only: bool = False) -> SourceIndex:
    """Record the line of every top-level subject, of each of its predicates, and of IRI objects
    (``subjects_only``: of the subjects alone, what a site needs, in less time and memory).

    The text is known to parse; the scanner follows Turtle's statement structure just enough to
    tell subjects, predicates and objects apart at the top nesting level.

    (One flat token loop, token meanings remembered per text: this runs over every token of every
    file, a few million at national scale.)
    """
    index = SourceIndex()
    subjects, statements, objects = index.subjects, index.statements, index.objects
    subject: str | None = None
    predicate: str | None = None
    expect = "subject"  # subject | predicate | object | directive
    depth = 0
    directive_sparql = False
    after_caret = False
    expanded: dict[tuple[str, str], str | None] = {}
    line, line_start = 1, 0
    for match in _TOKEN.finditer(text):
        kind = match.lastgroup or "other"
        if kind == "nl":
            line += 1
            line_start = match.end()
            continue
        value = match.group()
        if kind == "ws" or kind == "comment":
            continue
        col = match.start() - line_start + 1
        tok_line = line
        if kind == "long" or kind == "other":  # the only tokens that can span lines
            newlines = value.count("\n")
            if newlines:
                line += newlines
                line_start = match.start() + value.rfind("\n") + 1
        if expect == "directive":
            if value == "." or (kind == "iri" and directive_sparql):
                expect = "subject"
            continue
        if kind == "word" and depth == 0 and expect == "subject" and value.lower() in ("@prefix", "@base", "prefix", "base"):
            expect = "directive"
            directive_sparql = not value.startswith("@")
            continue
        if kind == "punct" and value != "^^":
            if value in "[(":
                depth += 1
                if depth == 1 and expect == "subject":
                    subject = None
                    expect = "predicate"
                continue
            if value in "])":
                depth = max(0, depth - 1)
                continue
            if depth:
                continue
            if value == ".":
                subject, predicate, expect = None, None, "subject"
            elif value == ";":
                expect = "predicate"
            elif value == ",":
                expect = "object"
            continue
        if depth:
            continue
        if value == "^^":
            after_caret = True
            continue
        if after_caret:
            after_caret = False
            continue
        if subjects_only and expect != "subject":
            if expect == "predicate":
                expect = "object"
            continue
        key = (kind, value)
        if key in expanded:
            iri = expanded[key]
        else:
            iri = expanded[key] = _expand(kind, value, prefixes, base)
        loc = Location(name, tok_line, col)
        if expect == "subject":
            subject = iri
            if iri is not None:
                subjects.setdefault(iri, []).append(loc)
            expect = "predicate"
        elif expect == "predicate":
            predicate = iri
            if subject is not None and iri is not None:
                statements.setdefault((subject, iri), []).append(loc)
            expect = "object"
        elif expect == "object":
            if subject is not None and predicate is not None:
                obj = iri if iri is not None else literal_key_of_token(kind, value)
                if obj is not None:
                    objects.setdefault((subject, predicate, obj), loc)
            # a datatype after ^^ or a language tag is part of the same object: stay in object state
    return index
