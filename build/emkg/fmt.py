"""``emkg fmt``: the one canonical Turtle layout (Turtle is canonical; CI fails on drift).

``format_turtle(text, name)`` is deterministic (same input, same bytes), lossless (the output parses
to a graph isomorphic to the input) and idempotent (formatting its own output changes nothing).
``run_fmt`` applies it to files, checks losslessness before writing, and writes atomically.

The layout
----------
1. **File header**: the comment lines at the very top of the file (before the first statement) stay
   at the top, blank-line gaps inside them kept. Comments written between directives join the header.
   When the first statement is a subject, the comment block *directly* above it (no blank line)
   belongs to that subject instead.
2. **Prefixes**: ``@prefix p: <iri> .`` for every prefix the file declares (its own names, unused ones
   kept), sorted by prefix name, one blank line after. SPARQL-style ``PREFIX`` becomes ``@prefix``.
   ``@base`` is not written: every IRI is written absolute or prefixed, except IRIs the file wrote
   *relative* without a ``@base``, which are written relative again (so their meaning still depends
   on where the file lives, exactly as before).
3. **Subjects**: one block per subject, blocks separated by one blank line. IRI subjects first,
   sorted by their text as written (prefixed name, or ``<iri>``; plain code-point order); then
   blank-node subjects that are not inlined, sorted by their rendered text.
4. **Block**: the subject alone on its first line; then one predicate per line indented 4 spaces,
   each ending `` ;`` and the last `` .``. Predicate order: ``a`` (rdf:type), ``rdfs:label``,
   ``skos:prefLabel``, then every other predicate by its text as written (code-point order).
   One object: on the predicate's line. Several: the predicate alone, then each object on its own
   line indented 4 more, separated by `` ,``. Objects sort IRIs first, then literals, collections,
   inlined blank nodes and labelled blank nodes, each group by its text as written.
5. **Terms**: an IRI is a prefixed name when a declared prefix leaves a local part that is a valid
   ``PN_LOCAL`` *without* backslash escapes (``%XX`` is allowed); otherwise ``<iri>`` (the longest
   matching namespace is tried first; names sharing a namespace: the alphabetically first).
   Literals: ``"..."`` with ``\\\\ \\" \\n \\r \\t`` escaped, and control, line-separator and
   invisible format characters as ``\\uXXXX``; text containing a newline becomes a long string
   ``\"\"\"...\"\"\"`` (newlines kept; a quote is escaped only where it would end the string).
   Language tags in BCP 47 case (``en-GB``; pyoxigraph reads them lower-case, and RDF compares
   them case-insensitively). ``xsd:integer``, ``xsd:decimal``, ``xsd:double`` and ``xsd:boolean``
   use the bare short form only when the lexical form is canonical (``1``, ``1.5``, ``1.0E3``,
   ``true``); anything else (``"01"^^xsd:integer``, ``"1.50"^^xsd:decimal``) stays quoted.
6. **Blank nodes**: a blank node that is the object of exactly one triple is inlined there as
   ``[ ... ]`` (its predicates at the next indent; ``[]`` when it has none); a well-formed RDF
   collection as ``( ... )`` (one line when it fits in 100 characters and no item spans lines;
   ``rdf:nil`` as an object is ``()``). A blank node that is never an object is written as a
   ``[]`` subject block. Every other blank node gets a label derived from its content: ``_:b`` +
   8 hex digits of a hash of its neighbourhood (colour refinement over the blank-node graph plus a
   hash of everything inlined below it; never the parser's ids), with ``_1``, ``_2``, ... appended
   when two nodes cannot be told apart. Cycles of single-use blank nodes are cut at their
   smallest-hash node; inlining stops 32 levels deep (deeper nodes get labels).
7. **Comments**: a comment block above a subject's statement (after the previous statement ended)
   is written directly above that subject's block; comments inside a statement (end-of-line notes)
   join that block too (a note after the final `` .`` on the same line as well), so no comment is
   lost. A comment above a blank node that ends up inlined goes above the block it is written in.
   Comments that cannot be tied to a subject (inside ``[ ... ] .`` statements, after the last
   statement) go to the end of the file.
8. UTF-8, ``\\n`` line endings, one trailing newline.

Parsing is pyoxigraph's; the formatter works on its N-Triples output (fast for 1M-triple files).
"""

from __future__ import annotations

import functools
import hashlib
import logging
import os
import re
import stat
import sys
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urljoin

import pyoxigraph as ox

from .errors import EXIT_DATA, EXIT_OK, EXIT_USAGE, DataError, EmkgError, UsageError
from .heap import bulk
from .load import Location, SyntaxProblem, read_text
from .project import Project

log = logging.getLogger(__name__)

RDF = "http://www.w3.org/1999/02/22-rdf-syntax-ns#"
XSD = "http://www.w3.org/2001/XMLSchema#"
RDF_TYPE = f"<{RDF}type>"
RDF_FIRST = f"<{RDF}first>"
RDF_REST = f"<{RDF}rest>"
RDF_NIL = f"<{RDF}nil>"
RDFS_LABEL = "<http://www.w3.org/2000/01/rdf-schema#label>"
SKOS_PREF_LABEL = "<http://www.w3.org/2004/02/skos/core#prefLabel>"

# Relative IRIs are resolved against this made-up base and written relative to it again
# (a scheme of its own, so that even network-path references like <//host/x> come back as written).
_BASE_SCHEME = "x-emkg-fmt:"
_BASE_ORIGIN = _BASE_SCHEME + "//base.invalid"
_BASE_DIRS = ["a", "b", "c", "d", "e", "f", "g", "h"]
BASE = _BASE_ORIGIN + "/" + "/".join(_BASE_DIRS) + "/"

INDENT = "    "
MAX_INLINE_DEPTH = 32
COLLECTION_WIDTH = 100
WL_MAX_ROUNDS = 16


class TurtleSyntaxError(DataError):
    """The text is not Turtle; ``problem`` says where (``FILE:LINE:COL: error: ...``)."""

    def __init__(self, problem: SyntaxProblem) -> None:
        super().__init__(str(problem))
        self.problem = problem


class UnsupportedTurtle(EmkgError):
    """Valid input the formatter cannot write losslessly (it refuses rather than guess)."""

    exit_code = EXIT_USAGE


# --- parsing ---------------------------------------------------------------------------------------

@dataclass
class _Parsed:
    lines: list[str]  # N-Triples lines (no duplicates, document order)
    prefixes: dict[str, str]


def _clean_message(message: str) -> str:
    """pyoxigraph says 'Parser error at line 3 between columns 1 and 5: X'; keep X (as load.py does)."""
    return re.sub(r"^Parser error (at|between) [^:]*: ", "", message).strip()


def _parse(text: str, name: str) -> _Parsed:
    try:
        reader = ox.parse(text.encode("utf-8"), format=ox.RdfFormat.TURTLE, base_iri=BASE)
        data = ox.serialize(reader, format=ox.RdfFormat.N_TRIPLES)
    except SyntaxError as exc:
        loc = Location(name, exc.lineno or 1, exc.offset or 1)
        raise TurtleSyntaxError(SyntaxProblem(loc, _clean_message(str(exc.msg)))) from None
    lines = data.decode("utf-8").split("\n") if data else []
    if lines and not lines[-1]:
        lines.pop()
    return _Parsed(list(dict.fromkeys(lines)), dict(reader.prefixes))


def _split(line: str) -> tuple[str, str, str]:
    s, p, rest = line.split(" ", 2)
    return s, p, rest[:-2]


# --- terms ------------------------------------------------------------------------------------------

_PN_CHARS_BASE = (
    "A-Za-z\u00c0-\u00d6\u00d8-\u00f6\u00f8-\u02ff\u0370-\u037d\u037f-\u1fff\u200c-\u200d"
    "\u2070-\u218f\u2c00-\u2fef\u3001-\ud7ff\uf900-\ufdcf\ufdf0-\ufffd\U00010000-\U000effff"
)
_PN_CHARS_U = _PN_CHARS_BASE + "_"
_PN_CHARS = _PN_CHARS_U + "\\-0-9\u00b7\u0300-\u036f\u203f-\u2040"
_PLX = "%[0-9A-Fa-f]{2}"
_PN_LOCAL = re.compile(
    rf"(?:(?:[{_PN_CHARS_U}:0-9]|{_PLX})(?:(?:[{_PN_CHARS}.:]|{_PLX})*(?:[{_PN_CHARS}:]|{_PLX}))?)?"
)
_IRI_FORBIDDEN = re.compile(r'[\x00-\x20<>"{}|^`\\]')

_NT_ESCAPE = re.compile(r"\\(?:u([0-9A-Fa-f]{4})|U([0-9A-Fa-f]{8})|(.))", re.DOTALL)
_ECHAR = {"t": "\t", "b": "\b", "n": "\n", "r": "\r", "f": "\f", '"': '"', "'": "'", "\\": "\\"}
_SIMPLE_ESCAPES = [("\\" + k, v) for k, v in _ECHAR.items() if k != "\\"]


def _unescape_nt(value: str) -> str:
    if "\\" not in value:
        return value
    if "\\u" not in value and "\\U" not in value:
        # NUL is always \u0000 in N-Triples, so it can stand for an escaped backslash meanwhile
        value = value.replace("\\\\", "\x00")
        for escaped, char in _SIMPLE_ESCAPES:
            value = value.replace(escaped, char)
        return value.replace("\x00", "\\")

    def repl(match: re.Match[str]) -> str:
        code = match.group(1) or match.group(2)
        return chr(int(code, 16)) if code else _ECHAR[match.group(3)]

    return _NT_ESCAPE.sub(repl, value)


# control characters, line/paragraph separators and invisible format characters (zero-width space,
# bidi controls, BOM) are written as \uXXXX so that they can be seen (ZWJ/ZWNJ stay: scripts need them)
_INVISIBLE = [
    *range(0x20), 0x7F, *range(0x80, 0xA0), 0xAD, 0x61C, 0x180E, 0x200B, 0x200E, 0x200F,
    *range(0x2028, 0x202F), *range(0x2060, 0x2065), *range(0x2066, 0x2070), 0xFEFF,
]


def _escape_table(long: bool) -> dict[int, str]:
    table = {c: f"\\u{c:04X}" for c in _INVISIBLE}
    table.update({ord("\\"): "\\\\", ord("\r"): "\\r", ord("\t"): "\\t"})
    if long:
        del table[ord("\n")]
    else:
        table.update({ord('"'): '\\"', ord("\n"): "\\n"})
    return table


_SHORT_TABLE = _escape_table(long=False)
_LONG_TABLE = _escape_table(long=True)
_QUOTES = re.compile(r'"+')


def quote_string(value: str) -> str:
    """A Turtle string token for ``value``: short form, or a long string when it holds newlines."""
    if "\n" not in value:
        return '"' + value.translate(_SHORT_TABLE) + '"'
    body = value.translate(_LONG_TABLE)
    end = len(body)

    def fix(match: re.Match[str]) -> str:
        # in a long string a quote must be escaped when it is the third in a row or the last character
        run = match.group()
        at_end = match.end() == end
        return "".join(
            '\\"' if (i % 3 == 2 or (at_end and i == len(run) - 1)) else '"' for i in range(len(run))
        )

    return '"""' + _QUOTES.sub(fix, body) + '"""'


_CANONICAL = {
    XSD + "integer": re.compile(r"0|-?[1-9][0-9]*"),
    XSD + "decimal": re.compile(r"(?!-0\.0$)-?(?:0|[1-9][0-9]*)\.(?:0|[0-9]*[1-9])"),
    XSD + "double": re.compile(r"0\.0E0|-?[1-9]\.(?:0|[0-9]*[1-9])E(?:0|-?[1-9][0-9]*)"),
    XSD + "boolean": re.compile(r"true|false"),
}


@functools.lru_cache(maxsize=1024)
def language_case(tag: str) -> str:
    """A language tag in BCP 47 case: ``en-GB``, ``zh-Hant-TW``; a direction (``--ltr``) lower-case."""
    main, sep, direction = tag.partition("--")
    parts = main.split("-")
    out = [parts[0].lower()]
    private = False
    for part in parts[1:]:
        if private or len(part) == 1:
            private = True
            out.append(part.lower())
        elif len(part) == 2:
            out.append(part.upper())
        elif len(part) == 4 and part.isalpha():
            out.append(part.title())
        else:
            out.append(part.lower())
    return "-".join(out) + sep + direction.lower()


class _Terms:
    """Writes N-Triples terms as Turtle text with the file's prefixes (cached: files repeat terms)."""

    def __init__(self, prefixes: dict[str, str]) -> None:
        self.prefixes = prefixes
        # longest namespace first; names sharing a namespace: alphabetical
        self._by_length = sorted(((ns, name) for name, ns in prefixes.items()), key=lambda x: (-len(x[0]), x[1]))
        self._cache: dict[str, str] = {}

    def iri(self, iri: str) -> str:
        for ns, name in self._by_length:
            if iri.startswith(ns):
                local = iri[len(ns):]
                if _PN_LOCAL.fullmatch(local):
                    return f"{name}:{local}"
        return self.iriref(iri)

    @staticmethod
    def iriref(iri: str) -> str:
        if iri.startswith(_BASE_SCHEME):
            iri = _relative(iri)
        if _IRI_FORBIDDEN.search(iri):
            iri = _IRI_FORBIDDEN.sub(lambda m: f"\\u{ord(m.group()):04X}", iri)
        return f"<{iri}>"

    def term(self, nt: str) -> str:
        """A ground term (IRI, literal, triple term without blank nodes) as Turtle."""
        text = self._cache.get(nt)
        if text is None:
            if nt.startswith("<<("):
                text = self._triple_term(nt)
            elif nt[0] == "<":
                text = self.iri(nt[1:-1])
            else:
                text = self.literal(nt)
            self._cache[nt] = text
        return text

    def literal(self, nt: str) -> str:
        end = nt.rfind('"')
        lexical = _unescape_nt(nt[1:end])
        suffix = nt[end + 1:]
        if not suffix:
            return quote_string(lexical)
        if suffix[0] == "@":
            return quote_string(lexical) + "@" + language_case(suffix[1:])
        datatype = suffix[3:-1]
        canonical = _CANONICAL.get(datatype)
        if canonical is not None and canonical.fullmatch(lexical):
            return lexical
        return quote_string(lexical) + "^^" + self.iri(datatype)

    def _triple_term(self, nt: str) -> str:
        out = []
        for match in _NT_TOKEN.finditer(nt):
            token = match.group()
            if token in ("<<(", ")>>"):
                out.append(token)
            elif token.startswith("_:"):
                raise UnsupportedTurtle("blank nodes inside RDF 1.2 triple terms are not supported by emkg fmt")
            else:
                out.append(self.term(token))
        return " ".join(out)


_NT_TOKEN = re.compile(r'<<\(|\)>>|<[^>]*>|_:[^\s)]+|"(?:[^"\\]|\\.)*"(?:@[A-Za-z0-9-]+|\^\^<[^>]*>)?')


def _relative(iri: str) -> str:
    """An IRI under the made-up base, as the relative reference that resolves to it again."""
    if not iri.startswith(_BASE_ORIGIN) or iri[len(_BASE_ORIGIN):][:1] not in ("/", ""):
        return iri[len(_BASE_SCHEME):]  # a network-path reference: //host/path
    rest = iri[len(_BASE_ORIGIN):]
    if not rest.startswith("/"):
        return "//base.invalid" + rest
    cut = len(rest)
    for mark in "?#":
        pos = rest.find(mark)
        if pos != -1:
            cut = min(cut, pos)
    path, tail = rest[:cut], rest[cut:]
    segments = path.split("/")[1:]
    dirs, last = segments[:-1], segments[-1]
    common = 0
    while common < min(len(dirs), len(_BASE_DIRS)) and dirs[common] == _BASE_DIRS[common]:
        common += 1
    if common == 0:
        return path + tail
    ref = "../" * (len(_BASE_DIRS) - common) + "/".join([*dirs[common:], last])
    if ref.startswith("/") or (":" in ref.split("/", 1)[0]):
        ref = "./" + ref
    return ref + tail


# --- comments ---------------------------------------------------------------------------------------

_SCAN = re.compile(
    r"""
    (?P<c>\#[^\n]*)
  | (?P<s>\"\"\"(?:[^"\\]|\\.|"{1,2}(?!"))*\"\"\"|'''(?:[^'\\]|\\.|'{1,2}(?!'))*'''
        |"(?:[^"\\\n]|\\.)*"|'(?:[^'\\\n]|\\.)*')
  | (?P<i><[^>\s]*>)
  | (?P<o>[\[(])
  | (?P<x>[\])])
  | (?P<d>\.(?![\w:%\\.\-\u00b7]))
  | (?P<e>\\.)
    """,
    re.VERBOSE | re.DOTALL,
)
_WS = re.compile(r"\s*")
_SKIP = re.compile(r"[^#\"'<\[\]().\\]+")
_HEAD = re.compile(r"(?:[ \t\r]*(?:#[^\n]*)?\n)*")
_NAME = re.compile(r"(?:[^\s#\"'<>\[\](){},;\\.^@]|\\.|\.(?=[^\s#\"'<>\[\](){},;\\.^@]|\\))+")
_DIRECTIVE = re.compile(r"@(?:prefix|base|version)\b|(?i:(prefix|base|version))(?=\s)")
_PREFIX_DECL = re.compile(r"(?:@prefix|(?i:prefix))\s+([^\s:]*):\s*<([^>]*)>")
_BASE_DECL = re.compile(r"(?:@base|(?i:base))\s+<([^>]*)>")
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*:")
_LOCAL_ESCAPE = re.compile(r"\\([_~.\-!$&'()*+,;=/?#@%])")
_HAS_HASH_OUTSIDE = re.compile(
    r"\"\"\"(?:[^\"\\]|\\.|\"{1,2}(?!\"))*\"\"\"|'''(?:[^'\\]|\\.|'{1,2}(?!'))*'''"
    r"|\"(?:[^\"\\\n]|\\.)*\"|'(?:[^'\\\n]|\\.)*'|<[^>\s]*>|\\.",
    re.DOTALL,
)


@dataclass
class _Comments:
    header: list[str] = field(default_factory=list)  # "" marks a blank line
    subjects: dict[str, list[str]] = field(default_factory=dict)  # N-Triples subject -> lines
    footer: list[str] = field(default_factory=list)


def scan_comments(text: str) -> _Comments:
    """Where the file's comments belong: the header, a subject (by its N-Triples text), or the end.

    A light scanner (strings, IRIs, brackets, statement-ending dots and comments), run on text
    that is known to parse; it follows the prefixes and base in force to name each subject.
    """
    found = _Comments()
    prefixes: dict[str, str] = {}
    base = BASE
    head = _HEAD.match(text).end()  # the leading comment and blank lines
    if "#" not in _HAS_HASH_OUTSIDE.sub("", text[head:]):
        if "#" not in text[:head]:
            return found
        stop = True  # only the top of the file has comments: stop after the first statement
    else:
        stop = False
    pending: list[tuple[str, bool]] = []  # (comment, blank line before it)
    seen_statement = False
    depth = 0
    boundary = True
    current: list[str] | None = None  # where comments inside the current statement go
    previous: list[str] | None = None  # where the statement that just ended put its comments
    pos = 0
    last_end = 0
    size = len(text)

    def take_pending() -> list[tuple[str, bool]]:
        taken = pending[:]
        pending.clear()
        return taken

    def add_header(items: list[tuple[str, bool]]) -> None:
        for comment, gap in items:
            if gap and found.header and found.header[-1] != "":
                found.header.append("")
            found.header.append(comment)

    while pos < size:
        if boundary and depth == 0:
            pos = _WS.match(text, pos).end()
            if pos >= size:
                break
            if text[pos] == "#":
                end = text.find("\n", pos)
                end = size if end == -1 else end
                if previous is not None and not pending and "\n" not in text[last_end:pos]:
                    previous.append(text[pos:end].rstrip())  # a note after the '.' that ends a statement
                    pos = last_end = end
                    continue
                gap = text.count("\n", last_end, pos) >= 2 and (seen_statement or bool(pending))
                pending.append((text[pos:end].rstrip(), gap))
                pos = last_end = end
                continue
            directive = _DIRECTIVE.match(text, pos)
            if directive is not None:
                declared = _PREFIX_DECL.match(text, pos)
                if declared is not None:
                    prefixes[declared.group(1)] = resolve_iri(declared.group(2), base)
                declared = _BASE_DECL.match(text, pos)
                if declared is not None:
                    base = resolve_iri(declared.group(1), base)
                add_header(take_pending())
                seen_statement = True
                if stop:
                    break
                current = found.header
                if directive.group(1):  # SPARQL style: no final '.'; ends after its IRI or string
                    end = _SCAN.search(text, directive.end())
                    while end is not None and end.lastgroup == "c":
                        found.header.append(end.group().rstrip())
                        end = _SCAN.search(text, end.end())
                    pos = last_end = end.end() if end is not None else size
                    continue
                boundary = False
                pos = directive.end()
                continue
            key = _statement_subject(text, pos, prefixes, base)
            items = take_pending()
            if not seen_statement:
                # the block directly above the first subject is the subject's; the rest is the header
                gap_to_subject = text.count("\n", last_end, pos) >= 2
                split = len(items)
                if not gap_to_subject:
                    split = 0
                    for index in range(len(items) - 1, -1, -1):
                        if items[index][1]:
                            split = index
                            break
                add_header(items[:split])
                items = items[split:]
            seen_statement = True
            target = found.footer if key is None else found.subjects.setdefault(key, [])
            target.extend(comment for comment, _ in items)
            current = target
            boundary = False
            if stop:
                break
            continue
        skip = _SKIP.match(text, pos)
        if skip is not None:
            pos = skip.end()
        match = _SCAN.match(text, pos)
        if match is None:
            pos += 1  # '<' of '<<', '.' inside a name or number
            continue
        kind = match.lastgroup
        pos = match.end()
        if kind == "c":
            (current if current is not None else found.footer).append(match.group().rstrip())
        elif kind == "o":
            depth += 1
        elif kind == "x":
            depth = max(0, depth - 1)
        elif kind == "d" and depth == 0:
            boundary = True
            previous, current = current, None
            last_end = pos
    if pending:
        if seen_statement:
            found.footer.extend(comment for comment, _ in pending)
        else:
            add_header(pending)
    while found.header and found.header[-1] == "":
        found.header.pop()
    return found


def resolve_iri(ref: str, base: str) -> str:
    """An IRI reference resolved against ``base`` (RFC 3986), for any scheme of the base."""
    if _SCHEME.match(ref):
        return ref
    scheme, rest = base.split(":", 1)
    return scheme + ":" + urljoin("http:" + rest, ref)[len("http:"):]


def _statement_subject(text: str, pos: int, prefixes: dict[str, str], base: str) -> str | None:
    """The N-Triples text of the subject a statement starts with (None: anonymous or unknown)."""
    char = text[pos]
    if char == "<":
        if text.startswith("<<", pos):
            return None
        end = text.find(">", pos)
        return "<" + resolve_iri(text[pos + 1:end], base) + ">" if end != -1 else None
    if char in "[(":
        return None
    match = _NAME.match(text, pos)
    if match is None:
        return None
    word = match.group()
    if word.startswith("_:"):
        return word
    prefix, colon, local = word.partition(":")
    if not colon or prefix not in prefixes:
        return None
    return "<" + prefixes[prefix] + _LOCAL_ESCAPE.sub(r"\1", local) + ">"


# --- the graph and its blank nodes ----------------------------------------------------------------

class _Graph:
    """Triples grouped by subject, with what the layout needs to know about blank nodes."""

    def __init__(self, lines: list[str]) -> None:
        self.subjects: dict[str, dict[str, list[str]]] = {}
        self.refs: dict[str, list[tuple[str, str]]] = {}  # blank node -> (subject, predicate) using it
        self.order: dict[str, int] = {}  # blank node -> first appearance (the last tie-breaker)
        subjects = self.subjects
        refs = self.refs
        order = self.order
        for line in lines:
            s, p, rest = line.split(" ", 2)
            o = rest[:-2]
            pmap = subjects.get(s)
            if pmap is None:
                pmap = subjects[s] = {}
                if s[0] == "_" and s not in order:
                    order[s] = len(order)
            objs = pmap.get(p)
            if objs is None:
                pmap[p] = [o]
            else:
                objs.append(o)
            first = o[0]
            if first == "_":
                if o not in order:
                    order[o] = len(order)
                ref = refs.get(o)
                if ref is None:
                    refs[o] = [(s, p)]
                else:
                    ref.append((s, p))
            elif first == "<" and o.startswith("<<(") and "_:" in o:
                _Terms({})._triple_term(o)  # raises for blank nodes inside triple terms


class _Layout:
    """Decides which blank nodes are inlined, which are collections and which get labels."""

    def __init__(self, graph: _Graph) -> None:
        self.graph = graph
        self.collections: dict[str, list[str]] = {}  # head -> items
        self.members: dict[str, str] = {}  # the other nodes of a collection -> its head
        self.inline: set[str] = set()
        self.labels: dict[str, str] = {}
        self._colors: dict[str, str] | None = None
        self._plan()

    def colors(self) -> dict[str, str]:
        if self._colors is None:
            self._colors = node_colors(self.graph.subjects, self.graph.refs, self.graph.order)
        return self._colors

    def _key(self, node: str) -> tuple[str, int]:
        return self.colors()[node], self.graph.order[node]

    def _plan(self) -> None:
        graph = self.graph
        subjects, refs = graph.subjects, graph.refs
        candidates = {b for b, r in refs.items() if len(r) == 1}
        parent = {b: refs[b][0][0] for b in candidates}

        # well-formed collections: chains of rdf:first/rdf:rest nodes ending at rdf:nil
        def list_node(b: str) -> bool:
            pmap = subjects.get(b)
            return (
                b in candidates and pmap is not None and len(pmap) == 2
                and len(pmap.get(RDF_FIRST, ())) == 1 and len(pmap.get(RDF_REST, ())) == 1
            )

        shaped = {b for b in candidates if list_node(b)}
        middles = {b for b in shaped if refs[b][0][1] == RDF_REST and refs[b][0][0] in shaped}
        alias = self.members
        for head in sorted(shaped - middles, key=graph.order.__getitem__):
            items, chain, node, seen = [], [], head, set()
            while node in shaped and node not in seen and (node == head or node in middles):
                seen.add(node)
                chain.append(node)
                items.append(subjects[node][RDF_FIRST][0])
                node = subjects[node][RDF_REST][0]
            if node == RDF_NIL:
                self.collections[head] = items
                for member in chain[1:]:
                    alias[member] = head
        candidates -= set(alias)

        # roots: follow parents up; break cycles; cap the nesting depth
        def up(node: str) -> str:
            node = parent[node]
            return alias.get(node, node)

        depth: dict[str, int] = {}
        pending = sorted(candidates, key=graph.order.__getitem__)
        while pending:
            start = pending.pop()
            if start in depth or start not in candidates:
                continue
            path, on_path, node = [], {}, start
            while node in candidates and node not in depth and node not in on_path:
                on_path[node] = len(path)
                path.append(node)
                node = up(node)
            if node in on_path:  # a cycle of single-use blank nodes: cut it at its smallest node
                cycle = path[on_path[node]:]
                cut = min(cycle, key=self._key)
                pending.extend(self._dissolve(cut, candidates))
                pending.append(start)
                continue
            level = depth.get(node, 0) if node in candidates else 0
            for member in reversed(path):
                level += 1
                if level > MAX_INLINE_DEPTH:
                    pending.extend(self._dissolve(member, candidates))
                    level = 0
                depth[member] = level
        self.inline = {b for b in candidates if depth.get(b, 0) > 0}
        labelled = [b for b in graph.order if b not in self.inline and b not in self.members and b in refs]
        self._label(labelled)

    def _dissolve(self, node: str, candidates: set[str]) -> list[str]:
        """``node`` stops being inlined (it gets a label); a collection it heads becomes plain nodes."""
        candidates.discard(node)
        freed: list[str] = []
        if node in self.collections:
            del self.collections[node]
            freed = [member for member, head in self.members.items() if head == node]
            for member in freed:
                del self.members[member]
                candidates.add(member)
        return sorted(freed, key=self.graph.order.__getitem__)

    def _label(self, nodes: list[str]) -> None:
        if not nodes:
            return
        colors = self.colors()
        groups: dict[str, list[str]] = {}
        for node in nodes:
            groups.setdefault("b" + colors[node][:8], []).append(node)
        for label, group in groups.items():
            if len(group) == 1:
                self.labels[group[0]] = "_:" + label
            else:
                for index, node in enumerate(sorted(group, key=self._key), start=1):
                    self.labels[node] = f"_:{label}_{index}"


def node_colors(
    subjects: dict[str, dict[str, list[str]]],
    refs: dict[str, list[tuple[str, str]]],
    order: dict[str, int],
) -> dict[str, str]:
    """A colour per blank node from its content, never from its parser id.

    Colour refinement (``wl_colors``) sees a bounded neighbourhood; a bottom-up hash of the
    single-use, acyclic blank nodes below each node (their whole content, however deep) tells
    apart the nodes of long chains and deep trees that refinement alone cannot.
    """
    wl = wl_colors(subjects, refs, order)
    single = {b for b, r in refs.items() if len(r) == 1}
    parent = {b: refs[b][0][0] for b in single}
    visited: set[str] = set()
    cyclic: set[str] = set()
    for start in single:
        path: list[str] = []
        on_path: dict[str, int] = {}
        node = start
        while node in single and node not in visited and node not in on_path:
            on_path[node] = len(path)
            path.append(node)
            node = parent[node]
        if node in on_path:
            cyclic.update(path[on_path[node]:])
        visited.update(path)
    tree = single - cyclic
    content: dict[str, str] = {}
    for root in order:
        stack = [(root, False)]
        while stack:
            node, ready = stack.pop()
            if node in content:
                continue
            pmap = subjects.get(node, {})
            if not ready:
                stack.append((node, True))
                stack.extend((o, False) for objs in pmap.values() for o in objs if o in tree and o not in content)
                continue
            parts = sorted(f"{p} {content[o] if o in tree else wl.get(o, o)}" for p, objs in pmap.items() for o in objs)
            content[node] = hashlib.sha256((wl[node] + "\n" + "\n".join(parts)).encode("utf-8")).hexdigest()
    return content


def wl_colors(
    subjects: dict[str, dict[str, list[str]]],
    refs: dict[str, list[tuple[str, str]]],
    order: dict[str, int],
) -> dict[str, str]:
    """A colour per blank node from its neighbourhood (Weisfeiler-Leman refinement), not its id."""
    nodes = list(order)
    colors = {b: "" for b in nodes}
    classes = 1
    for _ in range(WL_MAX_ROUNDS):
        new = {}
        for b in nodes:
            parts = []
            for p, objs in subjects.get(b, {}).items():
                for o in objs:
                    parts.append(f">{p} {colors[o] if o in colors else o}")
            for s, p in refs.get(b, ()):
                parts.append(f"<{colors[s] if s in colors else s} {p}")
            parts.sort()
            new[b] = hashlib.sha256((colors[b] + "\n" + "\n".join(parts)).encode("utf-8")).hexdigest()
        colors = new
        count = len(set(colors.values()))
        if count == classes or count == len(nodes):  # stable, or every node told apart
            break
        classes = count
    return colors


# --- rendering --------------------------------------------------------------------------------------

class _Writer:
    def __init__(self, graph: _Graph, layout: _Layout, terms: _Terms) -> None:
        self.graph = graph
        self.layout = layout
        self.terms = terms
        self._pkeys: dict[str, tuple[int, str]] = {}
        self._orders: dict[frozenset[str], list[tuple[str, str]]] = {}
        # objects that are IRIs or literals: (sort rank, text); rdf:nil is the empty collection
        self._ground: dict[str, tuple[int, str]] = {RDF_NIL: (2, "()")}

    def predicate_key(self, p: str) -> tuple[int, str]:
        key = self._pkeys.get(p)
        if key is None:
            if p == RDF_TYPE:
                key = (0, "a")  # written 'a'; the key text is what statements() writes
            else:
                text = self.terms.iri(p[1:-1])
                key = (1 if p == RDFS_LABEL else 2 if p == SKOS_PREF_LABEL else 3, text)
            self._pkeys[p] = key
        return key

    def subject(self, s: str) -> str:
        if s[0] == "_":
            return self.layout.labels.get(s, "[]")
        return self.terms.term(s)

    def obj(self, o: str, indent: str) -> tuple[int, str]:
        """(sort rank, text) of an object written on a line indented by ``indent``."""
        if o[0] != "_":
            known = self._ground.get(o)
            if known is None:
                rank = 0 if o[0] == "<" and not o.startswith("<<(") else 1
                known = self._ground[o] = (rank, self.terms.term(o))
            return known
        layout = self.layout
        if o in layout.collections:
            return 2, self.collection(layout.collections[o], indent)
        if o in layout.inline:
            pmap = self.graph.subjects.get(o)
            if not pmap:
                return 3, "[]"
            inner = indent + INDENT
            return 3, "[\n" + " ;\n".join(self.statements(pmap, inner)) + "\n" + indent + "]"
        return 4, layout.labels[o]

    def collection(self, items: list[str], indent: str) -> str:
        inner = indent + INDENT
        texts = [self.obj(item, inner)[1] for item in items]
        if not texts:
            return "()"
        one_line = " ".join(texts)
        if "\n" not in one_line and len(one_line) <= COLLECTION_WIDTH:
            return "( " + one_line + " )"
        return "(\n" + "\n".join(inner + t for t in texts) + "\n" + indent + ")"

    def statements(self, pmap: dict[str, list[str]], indent: str) -> list[str]:
        out = []
        shape = frozenset(pmap)
        order = self._orders.get(shape)
        if order is None:
            pkey = self.predicate_key
            order = self._orders[shape] = [(p, pkey(p)[1]) for p in sorted(pmap, key=pkey)]
        ground = self._ground
        for p, verb in order:
            objs = pmap[p]
            if len(objs) == 1:
                o = objs[0]
                known = ground.get(o)
                text = known[1] if known is not None else self.obj(o, indent)[1]
                out.append(f"{indent}{verb} {text}")
            else:
                inner = indent + INDENT
                texts = []
                for o in objs:
                    known = ground.get(o)
                    texts.append(known if known is not None else self.obj(o, inner))
                texts.sort()
                out.append(f"{indent}{verb}\n" + " ,\n".join(inner + t for _, t in texts))
        return out

    def block(self, s: str) -> str:
        return self.subject(s) + "\n" + " ;\n".join(self.statements(self.graph.subjects[s], INDENT)) + " ."


def format_turtle(text: str, name: str) -> str:
    """The canonical layout of a Turtle text (see the module docstring). Raises TurtleSyntaxError."""
    return _format(text, name)[0]


def _format(text: str, name: str) -> tuple[str, list[str]]:
    with bulk():  # millions of small containers, no cycles (a 1M-triple file formats ~20% faster)
        return _format_text(text, name)


def format_graph(lines: list[str], prefixes: dict[str, str], header: Sequence[str] = ()) -> str:
    """The canonical layout of a graph given as N-Triples lines (absolute IRIs, in the order a
    parser would read them), declaring ``prefixes``, with ``header`` as its top comment lines:
    what ``format_turtle`` gives for such a file, without writing and parsing its text (the dumps)."""
    with bulk():
        return _layout_text(list(dict.fromkeys(lines)), prefixes, _Comments(header=[f"# {c}" for c in header]))


def prefix_block(prefixes: dict[str, str]) -> str:
    """The ``@prefix`` lines of a formatted file (sorted by prefix, no final newline)."""
    return "\n".join(f"@prefix {p}: {_Terms.iriref(ns)} ." for p, ns in sorted(prefixes.items()))


def ground_blocks(lines: list[str], prefixes: dict[str, str]) -> dict[str, tuple[str, str]]:
    """Subject (N-Triples text) -> (its Turtle text, its block) for a graph WITHOUT blank nodes given
    as distinct N-Triples lines: the blocks ``format_graph`` writes for it, each a function of its
    subject's lines and the prefixes alone. ``format_graph(lines, prefixes, header)`` is then
    ``join_blocks(header, prefixes, blocks sorted by (Turtle text, subject))``. The dumps use
    this to format again only the subjects that changed (``dumps.py``)."""
    with bulk():
        graph = _Graph(lines)
        if graph.refs:
            raise ValueError("ground_blocks: the graph has blank nodes")
        writer = _Writer(graph, _Layout(graph), _Terms(prefixes))
        return {s: (writer.subject(s), writer.block(s)) for s in graph.subjects}


def join_blocks(header: Sequence[str], prefixes: dict[str, str], blocks: Iterable[str]) -> str:
    """A formatted file from its ``header`` comment lines (without ``# ``), prefixes and blocks in order."""
    parts = ["\n".join(f"# {c}" for c in header)] if header else []
    if prefixes:
        parts.append(prefix_block(prefixes))
    parts.extend(blocks)
    return "\n\n".join(parts) + "\n" if parts else ""


def _format_text(text: str, name: str) -> tuple[str, list[str]]:
    parsed = _parse(text, name)
    return _layout_text(parsed.lines, parsed.prefixes, scan_comments(text)), parsed.lines


def _layout_text(lines: list[str], prefixes: dict[str, str], comments: _Comments) -> str:
    terms = _Terms(prefixes)
    graph = _Graph(lines)
    layout = _Layout(graph)
    writer = _Writer(graph, layout, terms)

    iri_subjects = []
    bnode_blocks = []
    for s in graph.subjects:
        if s[0] != "_":
            iri_subjects.append((writer.subject(s), s))
        elif s not in layout.inline and s not in layout.members:
            bnode_blocks.append((writer.block(s), s))
    iri_subjects.sort()
    bnode_blocks.sort()

    # comments of a blank node that is written inside another block go above that block
    roots: dict[str, list[str]] = {}
    footer = list(comments.footer)
    block_keys = {s for _, s in iri_subjects} | {s for _, s in bnode_blocks}
    for key, lines in comments.subjects.items():
        root = _root_of(key, graph, block_keys)
        if root is None:
            footer.extend(lines)
        else:
            roots.setdefault(root, []).extend(lines)

    parts: list[str] = []
    if comments.header:
        parts.append("\n".join(comments.header))
    if prefixes:
        parts.append(prefix_block(prefixes))
    for _, s in iri_subjects:
        block = writer.block(s)
        parts.append("\n".join([*roots[s], block]) if s in roots else block)
    for block, s in bnode_blocks:
        parts.append("\n".join([*roots[s], block]) if s in roots else block)
    if footer:
        parts.append("\n".join(footer))
    return "\n\n".join(parts) + "\n" if parts else ""


def _root_of(key: str, graph: _Graph, blocks: set[str]) -> str | None:
    """The top-level block a subject is written in (an inlined blank node: its enclosing block)."""
    node, steps = key, 0
    while node not in blocks:
        refs = graph.refs.get(node)
        if not refs or len(refs) != 1 or steps > len(graph.refs):
            return None
        node, steps = refs[0][0], steps + 1
    return node


# --- losslessness -----------------------------------------------------------------------------------

def same_graph(a: Iterable[str], b: Iterable[str]) -> bool:
    """Whether two sets of N-Triples lines are the same graph up to blank-node names."""
    with bulk():
        return _same_graph(a, b)


def _same_graph(a: Iterable[str], b: Iterable[str]) -> bool:
    ground_a, blank_a = _partition(a)
    ground_b, blank_b = _partition(b)
    if ground_a != ground_b or len(blank_a) != len(blank_b):
        return False
    if not blank_a:
        return True
    sig_a, discrete = _signature(blank_a)
    sig_b, _ = _signature(blank_b)
    if sig_a != sig_b:
        return False
    if discrete:
        return True
    return _canonical(blank_a) == _canonical(blank_b)


def _partition(lines: Iterable[str]) -> tuple[set[str], set[str]]:
    ground, blank = set(), set()
    for line in lines:
        s, _, o = _split(line)
        (blank if s[0] == "_" or o[0] == "_" else ground).add(line)
    return ground, blank


def _signature(lines: set[str]) -> tuple[list[str], bool]:
    graph = _Graph(sorted(lines))
    colors = wl_colors(graph.subjects, graph.refs, graph.order)
    sig = []
    for line in lines:
        s, p, o = _split(line)
        sig.append(f"{colors.get(s, s)} {p} {colors.get(o, o)}")
    sig.sort()
    return sig, len(set(colors.values())) == len(colors)


def _canonical(lines: set[str]) -> set[str]:
    """The lines with blank nodes renamed by RDFC-1.0 (complete, so equal sets mean isomorphic graphs)."""
    quads = ox.parse("\n".join(lines).encode("utf-8"), format=ox.RdfFormat.N_TRIPLES)
    dataset = ox.Dataset(quads)
    dataset.canonicalize(ox.CanonicalizationAlgorithm.RDFC_1_0)
    return {str(quad) for quad in dataset}


# --- the command ------------------------------------------------------------------------------------

def run_fmt(project: Project, paths: list[Path], check: bool) -> int:
    """``emkg fmt [--check] [PATH...]``: 0 all formatted, 1 drift (--check) or syntax errors, 2 refused."""
    files = _files(project, paths)
    changed = unchanged = failed = refused = 0
    for path in files:
        name = project.relative(path)
        text, problem = read_text(path, name)
        if problem is None and text is not None and not text.strip():
            problem = SyntaxProblem(Location(name, 1), "file is empty; a Turtle file needs at least its @prefix lines")
        if problem is not None:
            print(problem)
            failed += 1
            continue
        assert text is not None
        try:
            formatted, before = _format(text, name)
        except TurtleSyntaxError as exc:
            print(exc.problem)
            failed += 1
            continue
        except UnsupportedTurtle as exc:
            print(f"{name}: error: {exc}; the file is left as it is")
            refused += 1
            continue
        if formatted == text:
            unchanged += 1
            continue
        try:
            with bulk():
                after = _parse(formatted, name).lines
            lossless = same_graph(before, after)
        except TurtleSyntaxError as exc:
            lossless = False
            log.debug("formatted %s does not parse: %s", name, exc)
        if not lossless:
            print(
                f"emkg: internal error: {name}: the formatted text is not the same graph as the file; "
                "the file is left as it is (please report this)",
                file=sys.stderr,
            )
            refused += 1
            continue
        changed += 1
        if check:
            print(f"would reformat {name}")
        else:
            try:
                write_atomic(path, formatted)
            except OSError as exc:
                print(f"emkg: error: {name}: cannot write the file: {exc.strerror or exc}; it is left as it was", file=sys.stderr)
                changed -= 1
                refused += 1
                continue
            print(f"reformatted {name}")
    summary = f"{_files_count(changed)} {'would be reformatted' if check else 'reformatted'}, {unchanged} unchanged"
    if failed:
        summary += f", {failed} with syntax errors"
    if refused:
        summary += f", {refused} refused"
    print(summary)
    if refused:
        return EXIT_USAGE
    if failed or (check and changed):
        return EXIT_DATA
    return EXIT_OK


def _files_count(n: int) -> str:
    return f"{n} file" if n == 1 else f"{n} files"


def _files(project: Project, paths: list[Path]) -> list[Path]:
    if not paths:
        return project.all_turtle_files()
    found: list[Path] = []
    for path in paths:
        if path.is_dir():
            found.extend(
                sorted(p for p in path.rglob("*.ttl") if not any(part.startswith(".") for part in p.relative_to(path).parts))
            )
        elif path.exists():
            found.append(path)
        else:
            raise UsageError(f"{path}: no such file or folder")
    return list(dict.fromkeys(found))


def write_atomic(path: Path, text: str) -> None:
    """Replace ``path`` by ``text`` (UTF-8) through a temporary file in the same folder, keeping its mode."""
    target = path.resolve()
    mode = stat.S_IMODE(target.stat().st_mode) if target.exists() else 0o644
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(text.encode("utf-8"))
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, target)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
