"""Stored views: SPARQL queries in ``queries/NAME.rq`` with a header, safe parameters, result formats.

A view file starts with comment lines::

    # title: Local authorities
    # description: The region's authorities as the seeds list them, one row each.
    # param: county iri optional  Only authorities in this county (e.g. https://w3id.org/emkg/id/area/derbyshire)

``# param: NAME TYPE required|optional DESCRIPTION`` declares a parameter (TYPE one of ``iri``,
``string``, ``date``, ``integer``). A header line that starts with ``#`` and two or more spaces
continues the entry above it; other comment lines are free notes.

Parameters are never pasted into the query as text: each value is checked against its type, turned
into an RDF term by pyoxigraph (which escapes it) and bound with ``VALUES ?name { term }`` placed
right after the opening brace of the query's outermost WHERE group, on the same line, so that line
numbers in messages stay those of the ``.rq`` file.

Results are pyoxigraph terms (``Result.rows``), so rows from the embedded store and from a remote
endpoint compare equal; ``format_result`` writes them as an aligned table, or in the W3C SPARQL 1.1
CSV, TSV and JSON results formats.
"""

from __future__ import annotations

import csv
import difflib
import hashlib
import io
import itertools
import json
import logging
import os
import re
import sys
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pyoxigraph as ox

from .errors import DataError, UsageError
from .project import DEFAULT_BASE_IRI, Project

log = logging.getLogger(__name__)

XSD = "http://www.w3.org/2001/XMLSchema#"
XSD_STRING = XSD + "string"
PARAM_TYPES = ("iri", "string", "date", "integer")
FORMATS = ("table", "csv", "tsv", "json")
ENDPOINT_ENV = "EMKG_ENDPOINT"

_VIEW_NAME = re.compile(r"^[a-z0-9][a-z0-9-]*$")
_VAR_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_HEADER_ENTRY = re.compile(r"^#\s?(?P<key>[A-Za-z][A-Za-z-]*):\s*(?P<value>.*)$")
_CONTINUATION = re.compile(r"^#\s{2,}(?P<value>\S.*)$")


# --- prefixes ------------------------------------------------------------------------------------

STANDARD_PREFIXES: dict[str, str] = {
    "rdf": "http://www.w3.org/1999/02/22-rdf-syntax-ns#",
    "rdfs": "http://www.w3.org/2000/01/rdf-schema#",
    "owl": "http://www.w3.org/2002/07/owl#",
    "xsd": XSD,
    "skos": "http://www.w3.org/2004/02/skos/core#",
    "dcterms": "http://purl.org/dc/terms/",
    "foaf": "http://xmlns.com/foaf/0.1/",
    "org": "http://www.w3.org/ns/org#",
    "schema": "https://schema.org/",
    "prov": "http://www.w3.org/ns/prov#",
    "dcat": "http://www.w3.org/ns/dcat#",
    "void": "http://rdfs.org/ns/void#",
    "sh": "http://www.w3.org/ns/shacl#",
}

# prefix -> path under the base IRI (docs/MODEL.md, "Namespaces")
PROJECT_NAMESPACES: dict[str, str] = {
    "emkg": "def/",
    "emkgsh": "shapes/",
    "source": "source/",
    "area": "id/area/",
    "authority": "id/authority/",
    "organisation": "id/organisation/",
    "group": "id/group/",
    "programme": "id/programme/",
    "update": "id/update/",
    "section": "id/section/",
    "person": "id/person/",
    "post": "id/post/",
    "membership": "id/membership/",
    "role": "id/role/",
    "event": "id/event/",
    "publication": "id/publication/",
    "scheme": "id/scheme/",
    "concept": "id/concept/",
    "quantity": "id/quantity/",
    "change": "id/change/",
}


def project_prefixes(base_iri: str = DEFAULT_BASE_IRI) -> dict[str, str]:
    """The prefixes of docs/MODEL.md for a base IRI: the project's own, then the standard ones."""
    prefixes = {name: base_iri + path for name, path in PROJECT_NAMESPACES.items()}
    prefixes.update(STANDARD_PREFIXES)
    return prefixes


# --- views ---------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Param:
    """A declared parameter: ``# param: NAME TYPE required|optional DESCRIPTION``."""

    name: str
    type: str
    required: bool
    description: str = ""


@dataclass(frozen=True)
class View:
    """A stored query and its header."""

    name: str
    path: Path
    title: str
    description: str
    params: tuple[Param, ...]
    text: str
    base_iri: str = field(default=DEFAULT_BASE_IRI, compare=False)

    def param(self, name: str) -> Param | None:
        return next((p for p in self.params if p.name == name), None)

    @property
    def prefixes(self) -> dict[str, str]:
        return project_prefixes(self.base_iri)


def list_views(project: Project) -> list[View]:
    """Every stored view (``queries/*.rq``, not ``queries/qc/``), by name."""
    folder = project.queries_dir
    if not folder.is_dir():
        return []
    return [_read_view(path, project) for path in sorted(folder.glob("*.rq")) if path.is_file()]


def view_names(project: Project) -> list[str]:
    folder = project.queries_dir
    return sorted(p.stem for p in folder.glob("*.rq") if p.is_file()) if folder.is_dir() else []


def get_view(project: Project, name: str) -> View:
    """The view called ``name``; an unknown name is a usage error that suggests the closest names."""
    names = view_names(project)
    if name not in names:
        close = difflib.get_close_matches(name, names, n=3, cutoff=0.5)
        hint = f"; did you mean {' or '.join(close)}?" if close else ""
        raise UsageError(f"unknown view {name!r}{hint} ('emkg query --list' lists the views)")
    return _read_view(project.queries_dir / f"{name}.rq", project)


def read_query_file(path: Path, project: Project) -> View:
    """An ad-hoc ``--file`` query: the header is optional (but parameters need ``# param:`` lines)."""
    return _read_view(path, project, require_header=False)


def _read_view(path: Path, project: Project, *, require_header: bool = True) -> View:
    shown = project.relative(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UsageError(f"{shown}: no such query file") from None
    except IsADirectoryError:
        raise UsageError(f"{shown}: is a directory, not a query file") from None
    except UnicodeDecodeError:
        raise UsageError(f"{shown}: not UTF-8 text") from None
    except OSError as exc:
        raise UsageError(f"{shown}: cannot read: {exc.strerror or exc}") from None
    text = project.rebase_query(text)
    name = path.stem
    # a stored view that is broken is a bug in the project's sources (exit 1); a --file is user input (exit 2)
    error = DataError if require_header else UsageError
    if require_header and not _VIEW_NAME.match(name):
        raise error(f"{shown}: a view's file name must be lower-case kebab-case (a-z, 0-9, '-'): {name!r}")
    title, description, params = _parse_header(text, shown, error)
    if require_header:
        if not title:
            raise error(f"{shown}:1: error: the view has no '# title: ...' header line")
        if not description:
            raise error(f"{shown}:1: error: the view has no '# description: ...' header line")
    used = _variables_used(text)
    for param in params:
        if param.name not in used:
            raise error(f"{shown}: error: parameter {param.name!r} is declared but ?{param.name} is not used in the query")
    return View(name=name, path=path, title=title or name, description=description or "",
                params=tuple(params), text=text, base_iri=project.base_iri)


def _parse_header(text: str, shown: str, error: type[Exception]) -> tuple[str, str, list[Param]]:
    """The title, description and parameters from the leading comment lines."""
    entries: list[list] = []  # [key, value, line]
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.rstrip()
        if not line.strip():
            continue
        if not line.lstrip().startswith("#"):
            break
        line = line.lstrip()
        cont = _CONTINUATION.match(line)
        if cont and entries:
            entries[-1][1] = f"{entries[-1][1]} {cont.group('value').strip()}".strip()
            continue
        match = _HEADER_ENTRY.match(line)
        if match and match.group("key").lower() in ("title", "description", "param"):
            entries.append([match.group("key").lower(), match.group("value").strip(), number])
        else:
            entries.append(["note", line.lstrip("#").strip(), number])
    title = description = ""
    params: list[Param] = []
    for key, value, number in entries:
        if key == "title":
            if title:
                raise error(f"{shown}:{number}: error: a second '# title:' line")
            title = value
        elif key == "description":
            if description:
                raise error(f"{shown}:{number}: error: a second '# description:' line")
            description = value
        elif key == "param":
            param = _parse_param(value, f"{shown}:{number}", error)
            if any(p.name == param.name for p in params):
                raise error(f"{shown}:{number}: error: parameter {param.name!r} is declared twice")
            params.append(param)
    return title, description, params


def _parse_param(value: str, where: str, error: type[Exception]) -> Param:
    parts = value.split(None, 3)
    if len(parts) < 3:
        raise error(f"{where}: error: expected '# param: NAME TYPE required|optional DESCRIPTION', got {value!r}")
    name, kind, need = parts[0].lstrip("?$"), parts[1].lower(), parts[2].lower()
    if not _VAR_NAME.match(name):
        raise error(f"{where}: error: parameter name {name!r} is not a SPARQL variable name")
    if kind not in PARAM_TYPES:
        raise error(f"{where}: error: parameter {name!r} has type {kind!r}; expected one of {', '.join(PARAM_TYPES)}")
    if need not in ("required", "optional"):
        raise error(f"{where}: error: parameter {name!r} must be 'required' or 'optional', not {need!r}")
    return Param(name=name, type=kind, required=need == "required", description=parts[3].strip() if len(parts) > 3 else "")


# --- a small SPARQL lexer: enough to find braces, keywords and variables outside strings/comments/IRIs ----

_LEX = re.compile(
    r"""
    (?P<comment>\#[^\n]*)
  | (?P<long>\"\"\"(?:[^"\\]|\\.|"(?!""))*\"\"\"|'''(?:[^'\\]|\\.|'(?!''))*''')
  | (?P<str>"(?:[^"\\\n]|\\.)*"|'(?:[^'\\\n]|\\.)*')
  | (?P<iri><[^<>"{}|^`\\\x00-\x20]*>)
  | (?P<var>[?$][A-Za-z0-9_\u00B7\u00C0-\uFFFF]+)
  | (?P<word>[A-Za-z_][A-Za-z0-9_-]*)
  | (?P<open>\{)
  | (?P<close>\})
  | (?P<other>.)
    """,
    re.VERBOSE | re.DOTALL,
)


def _lex(text: str) -> Iterable[tuple[str, str, int]]:
    for match in _LEX.finditer(text):
        kind = match.lastgroup or "other"
        if kind == "other" and match.group().isspace():
            continue
        yield kind, match.group(), match.start()


def _variables_used(text: str) -> set[str]:
    return {value[1:] for kind, value, _ in _lex(text) if kind == "var"}


def where_brace(text: str) -> int:
    """The offset just after the opening brace of the outermost WHERE group (-1 if there is none)."""
    depth = 0
    seen_where = False
    first_open = -1
    for kind, value, start in _lex(text):
        if kind == "open":
            if depth == 0:
                if seen_where:
                    return start + 1
                if first_open < 0:
                    first_open = start + 1
            depth += 1
        elif kind == "close":
            depth = max(depth - 1, 0)
        elif kind == "word" and depth == 0 and value.upper() == "WHERE":
            seen_where = True
    return first_open  # SELECT/ASK without the (optional) WHERE keyword


# --- parameters ----------------------------------------------------------------------------------

_IRI_FORBIDDEN = re.compile(r'[\x00-\x20<>"{}|^`\\]')
_ABSOLUTE_IRI = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")
_PREFIXED = re.compile(r"^(?P<prefix>[A-Za-z][A-Za-z0-9_-]*)?:(?P<local>[A-Za-z0-9_][A-Za-z0-9_.-]*)?$")
# schemes whose IRIs have no '//' (anything else written 'x:y' is taken for a prefixed name)
_OPAQUE_SCHEMES = frozenset({"urn", "mailto", "tag", "data", "info", "tel", "geo", "doi", "isbn"})
_SLUG = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
_DATE = re.compile(r"^(?P<y>-?[0-9]{4,})-(?P<m>[0-9]{2})-(?P<d>[0-9]{2})(?P<tz>Z|[+-](?:(?:0[0-9]|1[0-3]):[0-5][0-9]|14:00))?$")
_INTEGER = re.compile(r"^[+-]?[0-9]+$")
_DESCRIPTION_IRI = re.compile(r"https?://[^\s<>\"{}|^`\\,;)]+")


def parse_param_args(pairs: Sequence[str]) -> dict[str, str]:
    """``--param KEY=VALUE`` options as a dict (a repeated key is a usage error)."""
    values: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        key = key.strip()
        if not sep or not key:
            raise UsageError(f"--param {pair!r}: expected KEY=VALUE")
        if key in values:
            raise UsageError(f"--param {key}: given twice")
        values[key] = value
    return values


def param_term(view: View, param: Param, value: str) -> ox.NamedNode | ox.Literal:
    """The RDF term for a parameter value, or a usage error naming the parameter."""
    where = f"parameter {param.name!r} of view {view.name!r}"
    if param.type == "string":
        return ox.Literal(value)
    if param.type == "integer":
        if not _INTEGER.match(value.strip()):
            raise UsageError(f"{where} must be an integer, not {value!r}")
        return ox.Literal(value.strip(), datatype=ox.NamedNode(XSD + "integer"))
    if param.type == "date":
        text = value.strip()
        match = _DATE.match(text)
        if not match or not _valid_date(int(match.group("y")), int(match.group("m")), int(match.group("d"))):
            raise UsageError(f"{where} must be a date YYYY-MM-DD (xsd:date), not {value!r}")
        return ox.Literal(text, datatype=ox.NamedNode(XSD + "date"))
    if param.type == "iri":
        return ox.NamedNode(_resolve_iri(view, param, value.strip(), where))
    raise AssertionError(param.type)


def _valid_date(year: int, month: int, day: int) -> bool:
    if year == 0 or not 1 <= month <= 12:
        return False
    leap = year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)
    days = [31, 29 if leap else 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31][month - 1]
    return 1 <= day <= days


def _resolve_iri(view: View, param: Param, value: str, where: str) -> str:
    expected = "an absolute IRI, a prefixed name (e.g. area:derbyshire) or a slug"
    if not value:
        raise UsageError(f"{where} must be {expected}, not an empty value")
    if value.startswith("<") and value.endswith(">"):
        value = value[1:-1]
    if _IRI_FORBIDDEN.search(value):
        raise UsageError(f"{where} must be {expected}; {value!r} contains a character not allowed in an IRI")
    prefixes = view.prefixes
    prefixed = _PREFIXED.match(value)
    if prefixed and (prefixed.group("prefix") or "") in prefixes:
        iri = prefixes[prefixed.group("prefix") or ""] + (prefixed.group("local") or "")
    elif _ABSOLUTE_IRI.match(value):
        scheme, rest = value.split(":", 1)
        if not rest.startswith("/") and scheme.lower() not in _OPAQUE_SCHEMES:
            known = ", ".join(sorted(prefixes))
            raise UsageError(f"{where}: unknown prefix {scheme!r} in {value!r}; the prefixes are {known}")
        iri = value
    elif _SLUG.match(value):
        namespace = _slug_namespace(view, param)
        if namespace is None:
            raise UsageError(f"{where} must be an absolute IRI or a prefixed name, not {value!r}")
        iri = namespace + value
    else:
        raise UsageError(f"{where} must be {expected}, not {value!r}")
    try:
        ox.NamedNode(iri)
    except ValueError as exc:
        raise UsageError(f"{where}: {value!r} is not a valid IRI ({exc})") from None
    return iri


def _slug_namespace(view: View, param: Param) -> str | None:
    """The namespace a bare slug is resolved against: that of the example IRI in the parameter's description."""
    for found in _DESCRIPTION_IRI.findall(param.description):
        if found.startswith(DEFAULT_BASE_IRI):
            found = view.base_iri + found[len(DEFAULT_BASE_IRI):]
        if found.startswith(view.base_iri) and "/" in found[len(view.base_iri):]:
            return found.rstrip(".")[: found.rstrip(".").rfind("/") + 1]
    return None


def bind_params(view: View, values: Mapping[str, str]) -> str:
    """The view's query with its parameters bound by ``VALUES`` (checked, escaped); never string-pasted."""
    for key in values:
        if view.param(key) is None:
            declared = ", ".join(p.name for p in view.params) or "none"
            close = difflib.get_close_matches(key, [p.name for p in view.params], n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise UsageError(f"unknown parameter {key!r} for view {view.name!r}{hint}; its parameters: {declared}")
    bindings: list[str] = []
    for param in view.params:
        if param.name not in values:
            if param.required:
                raise UsageError(f"view {view.name!r} needs parameter {param.name!r} ({param.type}): "
                                 f"--param {param.name}=VALUE" + (f"; {param.description}" if param.description else ""))
            continue
        term = param_term(view, param, values[param.name])
        text = str(term)
        assert "\n" not in text and "\r" not in text  # N-Triples escapes them: line numbers stay put
        bindings.append(f"VALUES ?{param.name} {{ {text} }}")
    if not bindings:
        return view.text
    at = where_brace(view.text)
    if at < 0:
        raise UsageError(f"{view.name}: cannot bind parameters: the query has no WHERE group")
    return view.text[:at] + " " + " ".join(bindings) + " " + view.text[at:]


# --- running -------------------------------------------------------------------------------------

Term = ox.NamedNode | ox.BlankNode | ox.Literal


@dataclass
class Result:
    """A SELECT query's answer: variable names and rows of pyoxigraph terms (``None`` where unbound)."""

    variables: list[str]
    rows: list[tuple[Term | None, ...]]


_POSITION = re.compile(r"(?P<line>\d+):(?P<col>\d+)")


def syntax_message(message: str) -> tuple[int, int, str]:
    """pyoxigraph's 'error at 3:12: expected one of ...' as (line, column, a readable message)."""
    first = message.strip().splitlines()[0] if message.strip() else "syntax error"
    line = col = 1
    match = _POSITION.search(first)
    if match:
        line, col = int(match.group("line")), int(match.group("col"))
    text = re.sub(r"^(?:error|Parser error)\s+(?:at|between)\s+[\d:]+(?:\s+and\s+[\d:]+)?\s*:\s*", "", first)
    expected = re.match(r"^expected one of (.*)$", text)
    if expected:
        # pyoxigraph lists its own explanation (e.g. 'Prefix not found') among the expected tokens
        hints = [h.strip() for h in re.split(r",\s*", expected.group(1)) if re.match(r"^[A-Z][a-z]* \S+ ", h.strip())]
        if hints:
            text = hints[0]
        elif len(text) > 120:
            text = text[: text.rfind(",", 0, 117)] + ", ..."
    return line, col, text


def _construct_position(text: str) -> tuple[int, int, str] | None:
    """Where the construct that fails to parse starts, from rdflib's parser (pyoxigraph often reports the
    furthest point it read, which can be the end of the query); None if rdflib cannot tell."""
    try:
        from pyparsing import ParseException
        from rdflib.plugins.sparql.parser import parseQuery
    except ImportError:  # pragma: no cover - rdflib is a dependency
        return None
    try:
        parseQuery(text)
    except ParseException as exc:
        found = re.search(r"found '([^']*)'", str(exc))
        return exc.lineno, exc.col, found.group(1) if found else ""
    except Exception:  # noqa: BLE001 - a second opinion only
        return None
    return None


def run_local(store: ox.Store, text: str, source: str = "<query>") -> Result:
    """Run a SELECT query on the embedded store; a syntax error names ``source`` and its line."""
    try:
        answer = store.query(text)
    except SyntaxError as exc:
        line, col, message = syntax_message(str(exc))
        better = _construct_position(text)
        if better is not None and better[:2] < (line, col):
            line, col, found = better
            message = f"syntax error at {found!r}: {message}" if found else message
        raise UsageError(f"{source}:{line}:{col}: error: {message}") from None
    except (OSError, ValueError, RuntimeError) as exc:
        raise UsageError(f"{source}: error: the query failed: {exc}") from None
    if not isinstance(answer, ox.QuerySolutions):
        raise UsageError(f"{source}: error: only SELECT queries can be run as views")
    variables = [v.value for v in answer.variables]
    width = len(variables)
    rows = [tuple(solution[i] for i in range(width)) for solution in answer]
    return Result(variables=variables, rows=rows)


# --- formats -------------------------------------------------------------------------------------

def format_result(result: Result, fmt: str, prefixes: Mapping[str, str] | None = None) -> str:
    """The result as text: ``table``, or the W3C SPARQL 1.1 ``csv``, ``tsv`` or ``json`` results formats."""
    if fmt == "table":
        return format_table(result, project_prefixes() if prefixes is None else prefixes)
    if fmt == "csv":
        return format_csv(result)
    if fmt == "tsv":
        return format_tsv(result)
    if fmt == "json":
        return format_json(result)
    raise UsageError(f"unknown result format {fmt!r}; expected one of {', '.join(FORMATS)}")


def shorten(iri: str, prefixes: Mapping[str, str]) -> str:
    """``prefix:local`` for the longest matching namespace when the local part is a plain name, else the IRI."""
    best = ""
    best_prefix = None
    for prefix, namespace in prefixes.items():
        if iri.startswith(namespace) and len(namespace) > len(best):
            local = iri[len(namespace):]
            if re.fullmatch(r"[A-Za-z0-9_](?:[A-Za-z0-9_.-]*[A-Za-z0-9_-])?|", local):
                best, best_prefix = namespace, prefix
    if best_prefix is None:
        return iri
    return f"{best_prefix}:{iri[len(best):]}"


def _cell(term: Term | None, prefixes: Mapping[str, str]) -> str:
    if term is None:
        return ""
    if isinstance(term, ox.NamedNode):
        return shorten(term.value, prefixes)
    if isinstance(term, ox.BlankNode):
        return f"_:{term.value}"
    if isinstance(term, ox.Literal):
        return " ".join(term.value.split()) if any(c in term.value for c in "\n\r\t") else term.value
    return str(term)


def _width(text: str) -> int:
    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 0 if unicodedata.combining(c) else 1 for c in text)


def format_table(result: Result, prefixes: Mapping[str, str]) -> str:
    """Aligned plain-text columns: a header row, a rule, then one line per row."""
    cells = [[_cell(term, prefixes) for term in row] for row in result.rows]
    header = list(result.variables)
    widths = [_width(h) for h in header]
    for row in cells:
        for i, value in enumerate(row):
            widths[i] = max(widths[i], _width(value))

    def line(values: Sequence[str]) -> str:
        return "  ".join(v + " " * (widths[i] - _width(v)) for i, v in enumerate(values)).rstrip()

    out = [line(header), line(["-" * w for w in widths])]
    out.extend(line(row) for row in cells)
    return "\n".join(out) + "\n"


def _csv_value(term: Term | None) -> str:
    if term is None:
        return ""
    if isinstance(term, ox.BlankNode):
        return f"_:{term.value}"
    return term.value


def format_csv(result: Result) -> str:
    """SPARQL 1.1 Query Results CSV: header of names, IRIs bare, literals lexical, CRLF, RFC 4180 quoting.

    The text is what ``csv.writer`` (``QUOTE_MINIMAL``) writes, row by row; each distinct term's
    cell is made once per result (views repeat terms: an authority or an update on many rows)."""
    if len(result.variables) < 2:  # a row of one empty cell is written quoted: left to the writer
        return _format_csv_reference(result)
    buffer = io.StringIO(newline="")
    csv.writer(buffer, lineterminator="\r\n", quoting=csv.QUOTE_MINIMAL).writerow(result.variables)
    cells: dict = {None: ""}

    def cell(term: Term) -> str:
        value = _csv_value(term)
        text = cells[term] = value if _CSV_PLAIN.fullmatch(value) else _csv_cell(value)
        return text

    parts = [buffer.getvalue()]
    get = cells.get
    for row in result.rows:
        parts.append(",".join([text if (text := get(term)) is not None else cell(term) for term in row]) + "\r\n")
    return "".join(parts)


_CSV_PLAIN = re.compile(r'[^\s",]([^",\r\n]*[^\s",])?')  # a cell the writer leaves as it is


def _csv_cell(value: str) -> str:
    """``value`` as ``csv.writer`` (``QUOTE_MINIMAL``) writes it in a row of several cells."""
    buffer = io.StringIO(newline="")
    csv.writer(buffer, lineterminator="\r\n", quoting=csv.QUOTE_MINIMAL).writerow([value, ""])
    return buffer.getvalue()[:-3]  # less the empty cell and the line end


def tsv_term(term: Term | None) -> str:
    """A term in Turtle/N-Triples syntax, with tab, newline and carriage return escaped."""
    if term is None:
        return ""
    if isinstance(term, ox.BlankNode):
        return f"_:{term.value}"
    text = str(term)
    return text.replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")


def format_tsv(result: Result) -> str:
    """SPARQL 1.1 Query Results TSV: ``?var`` header, terms in Turtle syntax, tab-separated, LF line ends."""
    lines = ["\t".join(f"?{v}" for v in result.variables)]
    lines.extend("\t".join(tsv_term(term) for term in row) for row in result.rows)
    return "\n".join(lines) + "\n"


def json_term(term: Term) -> dict[str, str]:
    if isinstance(term, ox.NamedNode):
        return {"type": "uri", "value": term.value}
    if isinstance(term, ox.BlankNode):
        return {"type": "bnode", "value": term.value}
    if isinstance(term, ox.Literal):
        out = {"type": "literal", "value": term.value}
        if term.language:
            out["xml:lang"] = term.language
        elif term.datatype.value != XSD_STRING:
            out["datatype"] = term.datatype.value
        return out
    raise TypeError(f"cannot write {term!r} in SPARQL JSON results")


def format_json(result: Result) -> str:
    """SPARQL 1.1 Query Results JSON: ``head.vars`` and ``results.bindings`` (unbound variables left out).

    The text is exactly ``json.dumps(document, ensure_ascii=False, indent=2)`` (see
    ``_format_json_reference``), written directly: with ``indent`` the json module encodes in pure
    Python, about ten times slower (seconds for the views of a national graph).
    """
    enc = _encode_json_string
    variables = list(result.variables)
    keys = [enc(v) for v in variables]
    parts = ['{\n  "head": {\n    "vars": ']
    parts.append("[\n" + ",\n".join("      " + k for k in keys) + "\n    ]" if keys else "[]")
    parts.append('\n  },\n  "results": {\n    "bindings": ')
    if result.rows:
        # each distinct term's binding text is made once per column (views repeat terms)
        columns: list[dict] = [{} for _ in keys]

        def binding(i: int, term: Term) -> str:
            inner = ",\n".join(f"          {enc(k)}: {enc(v)}" for k, v in json_term(term).items())
            text = columns[i][term] = f"        {keys[i]}: {{\n{inner}\n        }}"
            return text

        items = []
        for row in result.rows:
            fields = [columns[i].get(term) or binding(i, term) for i, term in enumerate(row) if term is not None]
            items.append("      {\n" + ",\n".join(fields) + "\n      }" if fields else "      {}")
        parts.append("[\n" + ",\n".join(items) + "\n    ]")
    else:
        parts.append("[]")
    parts.append("\n  }\n}\n")
    return "".join(parts)


_encode_json_string = json.encoder.encode_basestring  # the C encoder json.dumps(ensure_ascii=False) uses


def rows_digest(result: Result) -> str:
    """A hash of a result's variables and rows (terms as N-Triples text, escaped, so unambiguous)."""
    digest = hashlib.sha256(json.dumps(result.variables).encode("utf-8") + b"\0")
    text = "\x1e".join(map(str, itertools.chain.from_iterable(result.rows)))  # None (unbound): "None", never a term
    digest.update(text.encode("utf-8", "surrogatepass"))
    digest.update(f"\0{len(result.rows)}".encode())
    return digest.hexdigest()


def published_texts(project: Project, name: str, result: Result) -> tuple[str, str]:
    """A view's ``NAME.csv`` and ``NAME.json`` text for ``emkg build``: from the work cache
    (``.cache/views/``) when the same rows were formatted before, else formatted (and cached)."""
    from .cache import cache_root, code_fingerprint, entry_name, read_entry, write_entry

    key = f"{code_fingerprint('views')}\0{rows_digest(result)}"
    path = cache_root(project) / "views" / entry_name("published", name)
    kept = read_entry(path, key)
    if isinstance(kept, tuple) and len(kept) == 2 and all(isinstance(t, str) for t in kept):
        log.debug("view %s: CSV and JSON text from the cache", name)
        return kept
    texts = (format_csv(result), format_json(result))
    write_entry(path, key, texts)
    return texts


def _format_json_reference(result: Result) -> str:
    """``format_json`` through the json module (the definition; tests check the two agree)."""
    bindings = [
        {var: json_term(term) for var, term in zip(result.variables, row) if term is not None}
        for row in result.rows
    ]
    document = {"head": {"vars": list(result.variables)}, "results": {"bindings": bindings}}
    return json.dumps(document, ensure_ascii=False, indent=2) + "\n"


def _format_csv_reference(result: Result) -> str:
    """``format_csv`` through ``csv.writer`` row by row (the definition; tests check the two agree)."""
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer, lineterminator="\r\n", quoting=csv.QUOTE_MINIMAL)
    writer.writerow(result.variables)
    for row in result.rows:
        writer.writerow([_csv_value(term) for term in row])
    return buffer.getvalue()


# --- the command ---------------------------------------------------------------------------------

def format_view_list(views: Sequence[View]) -> str:
    if not views:
        return ""
    width = max(len(v.name) for v in views)
    return "".join(f"{v.name.ljust(width)}  {v.title}".rstrip() + "\n" for v in views)


def _write(text: str) -> None:
    """Results on stdout exactly as formatted (CRLF kept), UTF-8 whatever the locale."""
    stream = sys.stdout
    buffer = getattr(stream, "buffer", None)
    if buffer is None:
        stream.write(text)
        stream.flush()
        return
    stream.flush()
    buffer.write(text.encode("utf-8"))
    buffer.flush()


def run_query(project: Project, args) -> int:
    """``emkg query``: list the views, or run one (or a ``--file``) locally or on an endpoint."""
    name = getattr(args, "name", None)
    file = getattr(args, "file", None)
    fmt = getattr(args, "format", "table") or "table"
    if getattr(args, "list", False):
        if name or file:
            raise UsageError("--list takes no view name or --file")
        _write(format_view_list(list_views(project)))
        return 0
    if name and file:
        raise UsageError("give a view name or --file, not both")
    if not name and not file:
        raise UsageError("give a view name (emkg query NAME), --file Q.rq, or --list")
    if fmt not in FORMATS:
        raise UsageError(f"unknown --format {fmt!r}; expected one of {', '.join(FORMATS)}")
    view = get_view(project, name) if name else read_query_file(Path(file), project)
    values = parse_param_args(getattr(args, "param", None) or [])
    text = bind_params(view, values)
    source = project.relative(view.path)
    endpoint_url = getattr(args, "endpoint", None) or os.environ.get(ENDPOINT_ENV)
    if endpoint_url:
        result = _run_remote(args, text, source)
    else:
        from .load import load_graph

        graph = load_graph(project)
        if graph.problems:
            for problem in graph.problems:
                print(problem, file=sys.stderr)
            print(f"emkg: error: {len(graph.problems)} file(s) with syntax errors; fix them before querying",
                  file=sys.stderr)
            return 1
        result = run_local(graph.store, text, source)
    _write(format_result(result, fmt, project_prefixes(project.base_iri)))
    return 0


def _run_remote(args, text: str, source: str) -> Result:
    try:
        from . import endpoint
    except ModuleNotFoundError as exc:
        if exc.name not in ("emkg.endpoint", f"{__package__}.endpoint"):
            raise
        raise UsageError("querying an endpoint is not available in this version (no emkg.endpoint module)") from None
    config = endpoint.EndpointConfig.from_args(args)
    return endpoint.run_remote(config, text, source=source)
