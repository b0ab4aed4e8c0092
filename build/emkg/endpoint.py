"""Remote SPARQL: run views on any SPARQL 1.1 endpoint, push the graph atomically, serve it locally.

Three URLs describe a server (docs/ENDPOINTS.md lists them for Oxigraph, Virtuoso, Fuseki, GraphDB):

* the query endpoint (``--endpoint``, ``EMKG_ENDPOINT``): SELECT queries, through SPARQLWrapper;
* the update endpoint (``--update-endpoint``, ``EMKG_UPDATE_ENDPOINT``): SPARQL 1.1 Update;
* the Graph Store endpoint (``--store-endpoint``, ``EMKG_STORE_ENDPOINT``): the SPARQL 1.1 Graph
  Store HTTP Protocol, optional, used by ``push`` to upload in bulk.

Every request goes through one small HTTP client (:class:`_Client`) that adds basic or digest
authentication, a timeout, and retries with exponential backoff on connection errors and HTTP 5xx
(never on 4xx). Failures become one-line :class:`~emkg.errors.EmkgError` messages that name the
endpoint and never show a credential:

* exit 2 (:class:`UsageError`): bad options, or no HTTP answer at all (refused, unknown host);
* exit 3 (:class:`RemoteError`): the server answered with an error, or did not answer in time.

``push`` is atomic from a reader's point of view: the triples go into a staging graph, the staging
graph is counted, then ONE update request ``MOVE``s it over the target graph (or the default graph).
A push that fails or is killed before the swap leaves the previous data as it was; the staging graph
it leaves behind is dropped by the next push to the same target.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import logging
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyoxigraph as ox

from .errors import DataError, EmkgError, RemoteError, UsageError
from .project import Project

log = logging.getLogger(__name__)

XSD = "http://www.w3.org/2001/XMLSchema#"
XSD_STRING = XSD + "string"
XSD_BOOLEAN = XSD + "boolean"
XSD_INTEGER = XSD + "integer"
RDF_LANGSTRING = "http://www.w3.org/1999/02/22-rdf-syntax-ns#langString"

ENV_ENDPOINT = "EMKG_ENDPOINT"
ENV_UPDATE = "EMKG_UPDATE_ENDPOINT"
ENV_STORE = "EMKG_STORE_ENDPOINT"
ENV_USER = "EMKG_USER"
ENV_PASSWORD = "EMKG_PASSWORD"
ENV_GRAPH = "EMKG_GRAPH"
ENV_AUTH = "EMKG_AUTH"
# Test hook: exit hard (no cleanup, like a SIGKILL) right after the staging graph is loaded and counted.
ENV_FAIL_AFTER = "EMKG_PUSH_FAIL_AFTER"

STAGING_PREFIX = "urn:emkg:staging:"
USER_AGENT = "emkg (SPARQLWrapper)"
MAX_GET_URL = 2000  # longer queries are sent by POST
MAX_BACKOFF = 8.0
MESSAGE_LIMIT = 300

# which option names an endpoint, for messages
_OPTION = {"query": "--endpoint", "update": "--update-endpoint", "store": "--store-endpoint"}
_ENV = {"query": ENV_ENDPOINT, "update": ENV_UPDATE, "store": ENV_STORE}
_WHERE_TO_LOOK = {
    "query": "Oxigraph .../query, Virtuoso .../sparql, Fuseki .../DATASET/query, GraphDB .../repositories/ID",
    "update": "Oxigraph .../update, Virtuoso .../sparql, Fuseki .../DATASET/update, "
              "GraphDB .../repositories/ID/statements",
    "store": "Oxigraph .../store, Virtuoso .../sparql-graph-crud, Fuseki .../DATASET/data, "
             "GraphDB .../repositories/ID/rdf-graphs/service",
}


# --- settings --------------------------------------------------------------------------------------

@dataclass(frozen=True)
class EndpointConfig:
    """Where the server is and how to talk to it. The password is never part of ``repr``."""

    query_url: str | None = None
    update_url: str | None = None
    store_url: str | None = None
    user: str | None = None
    password: str | None = field(default=None, repr=False)
    auth: str = "basic"
    timeout: float = 60.0
    retries: int = 3
    graph: str | None = None
    backoff: float = 0.5

    @classmethod
    def from_args(cls, args: Any, env: Mapping[str, str] | None = None) -> EndpointConfig:
        """Settings from parsed command-line options, falling back to the ``EMKG_*`` environment.

        Credentials may also be written into a URL (``https://user:pw@host/sparql``): they are taken
        out of it, so that no URL emkg prints or sends carries them.
        """
        env = os.environ if env is None else env

        def pick(attr: str, var: str) -> str | None:
            value = getattr(args, attr, None)
            if value in (None, ""):
                value = env.get(var) or None
            return value.strip() if isinstance(value, str) else value

        user = pick("user", ENV_USER)
        password = getattr(args, "password", None) or env.get(ENV_PASSWORD) or None
        urls: dict[str, str | None] = {}
        for kind, attr in (("query", "endpoint"), ("update", "update_endpoint"), ("store", "store_endpoint")):
            raw = pick(attr, _ENV[kind])
            if raw is None:
                urls[kind] = None
                continue
            clean, url_user, url_password = _split_userinfo(raw, kind)
            urls[kind] = clean
            if url_user and not user:
                user = url_user
            if url_password and not password:
                password = url_password
        auth = getattr(args, "auth", None)
        if auth in (None, "", "basic") and env.get(ENV_AUTH):  # "basic" is also the flag's default
            auth = env[ENV_AUTH]
        auth = (auth or "basic").strip().lower()
        if auth not in ("basic", "digest"):
            raise UsageError(f"--auth must be basic or digest, not {auth!r}")
        timeout = getattr(args, "timeout", None)
        timeout = 60.0 if timeout is None else float(timeout)
        if not timeout > 0:
            raise UsageError(f"--timeout must be a positive number of seconds, not {timeout:g}")
        retries = getattr(args, "retries", None)
        retries = 3 if retries is None else int(retries)
        if retries < 0:
            raise UsageError(f"--retries must be 0 or more, not {retries}")
        graph = pick("graph", ENV_GRAPH)
        if graph is not None:
            graph = _check_graph_iri(graph)
        return cls(query_url=urls["query"], update_url=urls["update"], store_url=urls["store"], user=user,
                   password=password, auth=auth, timeout=timeout, retries=retries, graph=graph)

    def url(self, kind: str) -> str | None:
        return {"query": self.query_url, "update": self.update_url, "store": self.store_url}[kind]

    def require(self, kind: str, why: str) -> str:
        url = self.url(kind)
        if not url:
            raise UsageError(f"{why} needs the {_describe_kind(kind)} URL: {_OPTION[kind]} URL or {_ENV[kind]} "
                             f"({_WHERE_TO_LOOK[kind]})")
        return url


def _describe_kind(kind: str) -> str:
    return {"query": "SPARQL query endpoint", "update": "SPARQL update endpoint",
            "store": "Graph Store endpoint"}[kind]


def _split_userinfo(raw: str, kind: str) -> tuple[str, str | None, str | None]:
    """A URL without its ``user:password@`` part, and that part; a usage error if it is not http(s)."""
    parts = urllib.parse.urlsplit(raw)
    user = urllib.parse.unquote(parts.username) if parts.username else None
    password = urllib.parse.unquote(parts.password) if parts.password else None
    host = parts.hostname or ""
    netloc = host if ":" not in host else f"[{host}]"
    try:
        port = parts.port
    except ValueError:
        raise UsageError(f"{_OPTION[kind]}: bad port in URL {_shown_raw_url(raw)!r}") from None
    if port is not None:
        netloc += f":{port}"
    clean = urllib.parse.urlunsplit((parts.scheme, netloc, parts.path, parts.query, ""))
    if parts.scheme not in ("http", "https") or not host:
        raise UsageError(f"{_OPTION[kind]}: not an http(s) URL: {_shown_raw_url(raw)!r}")
    return clean, user, password


def _check_graph_iri(graph: str) -> str:
    if graph.startswith("<") and graph.endswith(">"):
        graph = graph[1:-1]
    if not re.match(r"^[A-Za-z][A-Za-z0-9+.-]*:", graph):
        raise UsageError(f"--graph must be an absolute IRI (e.g. https://w3id.org/emkg/graph), not {graph!r}")
    try:
        ox.NamedNode(graph)
    except ValueError as exc:
        raise UsageError(f"--graph {graph!r} is not a valid IRI ({exc})") from None
    return graph


_USERINFO = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*://)[^/@\s]+@")


def scrub_url(text: str) -> str:
    """Text with every ``scheme://user:password@`` reduced to ``scheme://***@``."""
    return _USERINFO.sub(r"\g<scheme>***@", text)


def _shown_raw_url(raw: str) -> str:
    """A URL the user gave, for a message: anything before an '@' (credentials?) hidden."""
    return "***@" + raw.rsplit("@", 1)[1] if "@" in raw and "://" not in raw else scrub_url(raw)


# --- HTTP ------------------------------------------------------------------------------------------

@dataclass
class _Response:
    """A complete HTTP answer (the body is read while the timeout and retries still apply)."""

    status: int
    headers: http.client.HTTPMessage
    body: bytes
    url: str

    def info(self) -> http.client.HTTPMessage:  # the urllib response API SPARQLWrapper uses
        return self.headers

    def read(self) -> bytes:
        return self.body

    def geturl(self) -> str:
        return self.url

    @property
    def content_type(self) -> str:
        return (self.headers.get("Content-Type") or "").split(";")[0].strip().lower()


class _Client:
    """One opener with the configured authentication; every request is retried and classified here."""

    def __init__(self, config: EndpointConfig, sleep=time.sleep) -> None:
        self.config = config
        self._sleep = sleep
        handlers: list[urllib.request.BaseHandler] = []
        if config.user and config.password:
            roots = {_root(u) for u in (config.query_url, config.update_url, config.store_url) if u}
            if config.auth == "digest":
                digest_mgr = urllib.request.HTTPPasswordMgrWithDefaultRealm()
                for root in roots:
                    digest_mgr.add_password(None, root, config.user, config.password)
                handlers.append(urllib.request.HTTPDigestAuthHandler(digest_mgr))
            else:
                basic_mgr = urllib.request.HTTPPasswordMgrWithPriorAuth()
                for root in roots:
                    basic_mgr.add_password(None, root, config.user, config.password, is_authenticated=True)
                handlers.append(urllib.request.HTTPBasicAuthHandler(basic_mgr))
        self._opener = urllib.request.build_opener(*handlers)

    def send(self, request: urllib.request.Request, kind: str, action: str) -> _Response:
        """Send ``request`` to the ``kind`` endpoint; ``action`` ("run the query") is for messages."""
        config = self.config
        shown = scrub_url(request.full_url.split("?")[0])
        attempts = config.retries + 1
        for attempt in range(1, attempts + 1):
            problem: str
            try:
                with self._opener.open(request, timeout=config.timeout) as answer:
                    body = answer.read()
                    return _Response(answer.status, answer.headers, body, request.full_url)
            except urllib.error.HTTPError as exc:
                body = _read_error_body(exc)
                if exc.code >= 500 and attempt < attempts:
                    problem = f"HTTP {exc.code} {_reason(exc)}"
                    self._wait(attempt, problem, kind, shown, _retry_after(exc.headers))
                    continue
                raise self._http_error(exc.code, exc.headers, body, kind, shown, action, attempt) from None
            except urllib.error.URLError as exc:
                reason = exc.reason
                if isinstance(reason, (TimeoutError, socket.timeout)):
                    problem = f"no connection within {config.timeout:g} s"
                else:
                    problem = _os_error_text(reason)
                if attempt < attempts:
                    self._wait(attempt, problem, kind, shown)
                    continue
                raise self._fail(UsageError, f"cannot reach the {_describe_kind(kind)} {shown}: {problem}"
                                 f"{_tries(attempt)}; is the server running and {_OPTION[kind]} right?") from None
            except ValueError as exc:  # urllib's basic handler meets a challenge it cannot answer
                match = re.search(r"scheme: '?([A-Za-z-]+)", str(exc))
                if match is None:
                    raise
                scheme = match.group(1).lower()
                hint = f": add --auth {scheme}" if scheme in ("basic", "digest") else ""
                raise self._fail(RemoteError, f"the {_describe_kind(kind)} {shown} needs a login (HTTP 401 "
                                 f"Unauthorized) with {match.group(1)} authentication{hint}") from None
            except (TimeoutError, socket.timeout):
                raise self._fail(RemoteError, f"the {_describe_kind(kind)} {shown} did not answer within "
                                 f"{config.timeout:g} s (raise --timeout)") from None
            except (http.client.HTTPException, ConnectionError, OSError) as exc:
                problem = f"the connection broke: {_os_error_text(exc)}"
                if attempt < attempts:
                    self._wait(attempt, problem, kind, shown)
                    continue
                raise self._fail(RemoteError, f"the {_describe_kind(kind)} {shown} failed: {problem}"
                                 f"{_tries(attempt)}") from None
        raise AssertionError("unreachable")

    def _wait(self, attempt: int, problem: str, kind: str, shown: str, at_least: float = 0.0) -> None:
        delay = min(self.config.backoff * (2 ** (attempt - 1)), MAX_BACKOFF)
        delay = max(delay, min(at_least, MAX_BACKOFF * 4))
        log.warning("%s", scrub_url(f"{_describe_kind(kind)} {shown}: {problem}; retrying in {delay:g} s "
                                    f"(attempt {attempt + 1} of {self.config.retries + 1})"))
        self._sleep(delay)

    def _fail(self, cls: type[EmkgError], message: str) -> EmkgError:
        return cls(self.scrub(message))

    def scrub(self, message: str) -> str:
        message = scrub_url(message)
        password = self.config.password
        if password and len(password) >= 3:
            message = message.replace(password, "***")
        return message

    def _http_error(self, code: int, headers, body: bytes, kind: str, shown: str, action: str,
                    attempt: int) -> EmkgError:
        error = self._http_error_message(code, headers, body, kind, shown, action, attempt)
        error.status = code  # type: ignore[attr-defined]
        error.server_message = _server_message(body, headers)  # type: ignore[attr-defined]
        return error

    def _http_error_message(self, code: int, headers, body: bytes, kind: str, shown: str, action: str,
                            attempt: int) -> EmkgError:
        config = self.config
        what = f"the {_describe_kind(kind)} {shown}"
        server = _server_message(body, headers)
        said = f": {server}" if server else ""
        if code == 401:
            challenge = (headers.get("WWW-Authenticate") or "").split(" ")[0].strip().lower() if headers else ""
            if not config.user:
                need = f"no user name was given (--user or {ENV_USER})"
            elif not config.password:
                need = f"no password was given ({ENV_PASSWORD}, or --password)"
            else:
                need = f"it refused the credentials given ({ENV_USER}/{ENV_PASSWORD} or --user/--password)"
                if challenge in ("basic", "digest") and challenge != config.auth:
                    need += f"; it asks for {challenge} authentication: add --auth {challenge}"
                elif config.auth == "basic" and not challenge:
                    need += "; if it uses digest authentication (as Virtuoso's /sparql-auth does), add --auth digest"
            return self._fail(RemoteError, f"{what} needs a login (HTTP 401 Unauthorized): {need}")
        if code == 403:
            who = ("no credentials were given (--user and EMKG_PASSWORD)" if not (config.user and config.password)
                   else "the user given may not do this")
            return self._fail(RemoteError, f"{what} forbids this (HTTP 403 Forbidden): {who}{said}")
        if code == 404:
            return self._fail(RemoteError, f"{what} does not exist (HTTP 404 Not Found): wrong "
                              f"{_OPTION[kind]} URL? ({_WHERE_TO_LOOK[kind]})")
        if code == 405:
            return self._fail(RemoteError, f"{what} does not accept this request (HTTP 405 Method Not Allowed): "
                              f"is {_OPTION[kind]} the {_describe_kind(kind)}? ({_WHERE_TO_LOOK[kind]})")
        if code == 413:
            return self._fail(RemoteError, f"{what} refused a request as too large (HTTP 413): lower --batch-size")
        if code == 400 or 400 < code < 500:
            hint = _hint(server)
            return self._fail(RemoteError, f"{what} refused to {action} (HTTP {code}){said}{hint}")
        hint = _hint(server)
        return self._fail(RemoteError, f"{what} failed to {action} (HTTP {code}){said}{hint}{_tries(attempt)}")


def _root(url: str) -> str:
    parts = urllib.parse.urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}/"


def _tries(attempt: int) -> str:
    return f" (after {attempt} attempts)" if attempt > 1 else ""


def _reason(exc: urllib.error.HTTPError) -> str:
    return str(exc.reason or http.client.responses.get(exc.code, "")).strip()


def _retry_after(headers) -> float:
    value = (headers.get("Retry-After") or "").strip() if headers else ""
    return float(value) if value.isdigit() else 0.0


def _read_error_body(exc: urllib.error.HTTPError) -> bytes:
    try:
        return exc.read() or b""
    except Exception:  # a body cut short: the status is what matters
        return b""


def _os_error_text(error: object) -> str:
    if isinstance(error, ConnectionRefusedError):
        return "connection refused"
    if isinstance(error, socket.gaierror):
        return "unknown host name"
    if isinstance(error, OSError) and error.strerror:
        return error.strerror[0].lower() + error.strerror[1:]
    text = str(error) or type(error).__name__
    return text


def _server_message(body: bytes, headers=None) -> str:
    """The gist of an error body: one line, no HTML, no echo of the whole query, not too long."""
    if not body:
        return ""
    text = body.decode("utf-8", errors="replace")
    if "html" in ((headers.get("Content-Type") or "") if headers else "").lower() or text.lstrip().startswith("<"):
        text = re.sub(r"(?is)<(script|style|head)\b.*?</\1>", " ", text)
        text = re.sub(r"<[^>]+>", " ", text)
    text = re.split(r"\n\s*SPARQL (?:query|request):", text, maxsplit=1)[0]  # Virtuoso echoes the query
    text = " ".join(text.split())
    if len(text) > MESSAGE_LIMIT:
        text = text[: MESSAGE_LIMIT - 3].rstrip() + "..."
    return text


def _hint(server: str) -> str:
    if "SP031" in server and "DEFAULT" in server.upper():
        return " (this server has no plain default graph to write into: push into a named graph with --graph IRI)"
    if re.search(r"SR186|No permission|permission denied", server, re.I):
        return (" (the server's user may not update: on Virtuoso run GRANT SPARQL_UPDATE TO \"SPARQL\", "
                "or use /sparql-auth with a user that has it)")
    return ""


# --- queries ---------------------------------------------------------------------------------------

def _wrapper_class():
    from SPARQLWrapper import SPARQLWrapper

    class _Wrapper(SPARQLWrapper):
        """SPARQLWrapper builds the protocol request; our client sends it (auth, retries, messages)."""

        def __init__(self, client: _Client, url: str) -> None:
            super().__init__(url, agent=USER_AGENT)
            self._client = client

        def _query(self):  # the one method that performs I/O in SPARQLWrapper 2
            request = self._createRequest()
            return self._client.send(request, "query", "run the query"), self.returnFormat

    return _Wrapper


def run_remote(config: EndpointConfig, text: str, source: str = "<query>") -> Any:
    """Run a SELECT query on the query endpoint; the rows are pyoxigraph terms (a ``views.Result``)."""
    from SPARQLWrapper import JSON, POST, URLENCODED, GET

    from .views import Result

    url = config.require("query", "querying a server")
    client = _Client(config)
    wrapper = _wrapper_class()(client, url)
    wrapper.setOnlyConneg(True)  # no format=/output= parameters: some servers reject unknown ones
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        wrapper.setQuery(text)
    if wrapper.queryType != "SELECT":
        raise UsageError(f"{source}: error: only SELECT queries can be run as views")
    wrapper.setReturnFormat(JSON)
    if config.graph:
        wrapper.addParameter("default-graph-uri", config.graph)
    length = len(url) + len(urllib.parse.urlencode({"query": text, "default-graph-uri": config.graph or ""}))
    if length > MAX_GET_URL:
        wrapper.setMethod(POST)
        wrapper.setRequestMethod(URLENCODED)
    else:
        wrapper.setMethod(GET)
    log.debug("querying %s%s", url, f" (default graph <{config.graph}>)" if config.graph else "")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        response: _Response = wrapper.query().response
    _warn_truncated(response)
    document = _parse_json_results(response, url)
    variables, rows = results_to_rows(document, url)
    return Result(variables=variables, rows=rows)


def _warn_truncated(response: _Response) -> None:
    limit = response.headers.get("X-SPARQL-MaxRows") if response.headers else None
    if limit:
        log.warning("the query endpoint %s cut the results at %s rows (X-SPARQL-MaxRows: Virtuoso's "
                    "ResultSetMaxRows): the answer is incomplete; raise ResultSetMaxRows in virtuoso.ini",
                    scrub_url(response.url.split("?")[0]), limit.strip())


def _parse_json_results(response: _Response, url: str) -> dict:
    shown = scrub_url(url)
    try:
        document = json.loads(response.body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        got = response.content_type or "no Content-Type"
        raise RemoteError(f"the SPARQL query endpoint {shown} did not answer with SPARQL JSON results "
                          f"(got {got}): is --endpoint a SPARQL query endpoint? ({_WHERE_TO_LOOK['query']})") from None
    if not isinstance(document, dict) or "head" not in document or not isinstance(document.get("results"), dict):
        if isinstance(document, dict) and "boolean" in document:
            raise UsageError("only SELECT queries can be run as views")
        raise RemoteError(f"the SPARQL query endpoint {shown} answered JSON that is not SPARQL results")
    return document


def results_to_rows(document: dict, url: str = "") -> tuple[list[str], list[tuple]]:
    """SPARQL 1.1 JSON results as (variables, rows of pyoxigraph terms or None)."""
    head = document.get("head") or {}
    variables = [str(v) for v in head.get("vars") or []]
    blanks: dict[str, ox.BlankNode] = {}
    rows = []
    try:
        for binding in document["results"].get("bindings") or []:
            rows.append(tuple(_term(binding[v], blanks) if v in binding else None for v in variables))
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise RemoteError(f"the SPARQL query endpoint {scrub_url(url)} answered malformed JSON results: {exc}") from None
    return variables, rows


_BNODE_ID = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$")


def _term(value: dict, blanks: dict[str, ox.BlankNode]):
    kind = value["type"]
    text = value["value"]
    if kind == "uri":
        return ox.NamedNode(text)
    if kind in ("literal", "typed-literal"):  # typed-literal: the 2007 W3C note, still sent by Virtuoso
        language = value.get("xml:lang") or value.get("lang")
        datatype = value.get("datatype")
        if language:
            return ox.Literal(text, language=language)
        if datatype and datatype not in (XSD_STRING, RDF_LANGSTRING):
            if datatype == XSD_BOOLEAN and text in ("1", "0"):  # Virtuoso stores booleans as integers
                text = "true" if text == "1" else "false"
            return ox.Literal(text, datatype=ox.NamedNode(datatype))
        return ox.Literal(text)
    if kind == "bnode":
        if text not in blanks:
            label = text.removeprefix("nodeID://").removeprefix("_:")
            if not _BNODE_ID.match(label):
                label = "b" + hashlib.sha1(text.encode("utf-8")).hexdigest()[:16]
            blanks[text] = ox.BlankNode(label)
        return blanks[text]
    raise ValueError(f"unsupported term type {kind!r}")


def count_triples(config: EndpointConfig, graph: str | None) -> int:
    """How many triples the server holds in ``graph`` (None: the default graph, as the server defines it)."""
    pattern = f"GRAPH <{graph}> {{ ?s ?p ?o }}" if graph else "?s ?p ?o"
    plain = EndpointConfig(**{**config.__dict__, "graph": None})  # GRAPH <g> names the graph itself
    result = run_remote(plain, f"SELECT (COUNT(*) AS ?n) WHERE {{ {pattern} }}")
    try:
        return int(result.rows[0][0].value)
    except (IndexError, AttributeError, TypeError, ValueError):
        raise RemoteError(f"the SPARQL query endpoint {config.query_url} did not answer a COUNT query with a number") from None


# --- updates and the Graph Store protocol ----------------------------------------------------------

def run_update(config: EndpointConfig, text: str, client: _Client | None = None, action: str = "run the update") -> None:
    """Send one SPARQL Update request (form-encoded ``update=``, as every server accepts)."""
    url = config.require("update", "updating a server")
    client = client or _Client(config)
    data = urllib.parse.urlencode({"update": text}).encode("ascii")
    request = urllib.request.Request(url, data=data, method="POST", headers={
        "Content-Type": "application/x-www-form-urlencoded", "User-Agent": USER_AGENT,
        "Accept": "application/sparql-results+json, application/json;q=0.9, */*;q=0.1"})
    client.send(request, "update", action)


def store_upload(config: EndpointConfig, graph: str, body: bytes, *, replace: bool, client: _Client | None = None) -> None:
    """PUT (replace) or POST (add) N-Triples into ``graph`` through the Graph Store HTTP Protocol."""
    url = config.require("store", "the Graph Store protocol")
    client = client or _Client(config)
    separator = "&" if "?" in url else "?"
    target = f"{url}{separator}{urllib.parse.urlencode({'graph': graph})}"
    request = urllib.request.Request(target, data=body, method="PUT" if replace else "POST", headers={
        "Content-Type": "text/turtle; charset=utf-8", "User-Agent": USER_AGENT})  # N-Triples is Turtle
    client.send(request, "store", "store the triples")


# --- push ------------------------------------------------------------------------------------------

@dataclass
class Payload:
    """What a push writes: the whole graph (into the target), plus named graphs kept under their own IRIs."""

    whole: list[ox.Triple]
    named: dict[str, list[ox.Triple]]
    source: str


@dataclass
class PushReport:
    target: str | None
    local: int
    remote: int
    named_local: int
    named_remote: int
    graphs: int
    source: str
    method: str
    dropped: list[str] = field(default_factory=list)

    @property
    def matches(self) -> bool:
        return self.local == self.remote and self.named_local == self.named_remote


def published_payload(project: Project) -> Payload:
    """What to push: the build's ``emkg.trig`` (whole graph + one graph per source document), else its
    ``emkg.ttl``, else the project's sources as they are."""
    out = project.out_dir
    trig, ttl = out / "emkg.trig", out / "emkg.ttl"
    built = trig if trig.is_file() else ttl if ttl.is_file() else None
    if built is not None:
        newest = max((p.stat().st_mtime for p in project.graph_files()), default=0.0)
        if newest > built.stat().st_mtime:
            log.warning("%s is older than the sources: pushing it as built (run 'emkg build' to refresh it)",
                        project.relative(built))
        fmt = ox.RdfFormat.TRIG if built is trig else ox.RdfFormat.TURTLE
        try:
            quads = list(ox.parse(path=str(built), format=fmt))
        except (SyntaxError, OSError, ValueError) as exc:
            raise DataError(f"{project.relative(built)}: cannot read the built graph: {exc} (run 'emkg build')") from None
        whole = list(dict.fromkeys(q.triple for q in quads))
        named: dict[str, list[ox.Triple]] = {}
        for quad in quads:
            if isinstance(quad.graph_name, ox.NamedNode):
                named.setdefault(quad.graph_name.value, []).append(quad.triple)
        return Payload(whole, named, project.relative(built))
    from .load import load_graph

    graph = load_graph(project)
    if graph.problems:
        for problem in graph.problems:
            print(problem, file=sys.stderr)
        raise DataError(f"{len(graph.problems)} file(s) with syntax errors: fix them before pushing")
    log.info("no %s: pushing the project's sources as they are (run 'emkg build' to push the published graph)",
             project.relative(trig))
    triples = [q.triple for q in graph.store.quads_for_pattern(None, None, None, ox.DefaultGraph())]
    return Payload(triples, {}, "the project's sources")


def skolemise(payload: Payload, base_iri: str) -> Payload:
    """Blank nodes replaced by IRIs ``<authority>/.well-known/genid/emkg-<id>`` (RFC 7, section 3.5).

    The ids come from canonicalising the blank nodes of the whole payload, so pushing the same graph
    twice gives the same IRIs (a second push replaces rather than duplicates), and a blank node
    shared by the whole graph and a named graph stays one node.
    """
    def has_blank(triples: Iterable[ox.Triple]) -> bool:
        return any(isinstance(t.subject, ox.BlankNode) or isinstance(t.object, ox.BlankNode) for t in triples)

    if not has_blank(payload.whole) and not any(has_blank(ts) for ts in payload.named.values()):
        return payload
    dataset = ox.Dataset(ox.Quad(t.subject, t.predicate, t.object, ox.DefaultGraph()) for t in payload.whole)
    for name, triples in payload.named.items():
        for t in triples:
            dataset.add(ox.Quad(t.subject, t.predicate, t.object, ox.NamedNode(name)))
    dataset.canonicalize(ox.CanonicalizationAlgorithm.UNSTABLE)
    parts = urllib.parse.urlsplit(base_iri)
    genid = f"{parts.scheme}://{parts.netloc}/.well-known/genid/emkg-"

    def fix(term):
        return ox.NamedNode(genid + term.value) if isinstance(term, ox.BlankNode) else term

    whole: list[ox.Triple] = []
    named: dict[str, list[ox.Triple]] = {name: [] for name in payload.named}
    for q in dataset:
        triple = ox.Triple(fix(q.subject), q.predicate, fix(q.object))
        if isinstance(q.graph_name, ox.DefaultGraph):
            whole.append(triple)
        else:
            named[q.graph_name.value].append(triple)
    log.info("blank nodes replaced by skolem IRIs %s...", genid)
    return Payload(whole, named, payload.source)


def staging_graph(target: str | None) -> str:
    """The staging graph of a target: one per target, so a killed push's leftovers are reused, not piled up."""
    digest = hashlib.sha256((target or "default-graph").encode("utf-8")).hexdigest()[:20]
    return f"{STAGING_PREFIX}{digest}"


def _batches(triples: Sequence[ox.Triple], size: int) -> Iterable[bytes]:
    for start in range(0, len(triples), size):
        yield ox.serialize(triples[start:start + size], format=ox.RdfFormat.N_TRIPLES)


def _too_big(error: EmkgError) -> bool:
    """A batch the server found too large: HTTP 413, or Virtuoso's limit on the SQL it compiles from it."""
    status = getattr(error, "status", None)
    message = getattr(error, "server_message", "") or ""
    return status == 413 or (status in (400, 500) and bool(re.search(r"too (large|long|big)|has exceeded", message)))


def _insert_data(config: EndpointConfig, client: _Client, staging: str, triples: Sequence[ox.Triple],
                 size: int, shown: str) -> int:
    """INSERT DATA in batches of ``size`` triples, halving the batch when the server finds it too big
    (Virtuoso compiles INSERT DATA to SQL, capped at 10,000 lines: about 1,500 triples). Returns the size used."""
    start = number = 0
    while start < len(triples):
        chunk = triples[start:start + size]
        body = ox.serialize(chunk, format=ox.RdfFormat.N_TRIPLES).decode("utf-8")
        try:
            run_update(config, f"INSERT DATA {{ GRAPH <{staging}> {{\n{body}}} }}", client, "insert the triples")
        except RemoteError as exc:
            if size > 1 and _too_big(exc):
                size = max(1, size // 2)
                log.info("the server found a batch too big: %d triples per INSERT DATA from now on", size)
                continue
            raise
        start += len(chunk)
        number += 1
        _say(f"inserted batch {number} for {shown} ({len(chunk)} triples)")
    return size


def _graph_counts(config: EndpointConfig, graphs: Sequence[str]) -> dict[str, int]:
    """Triples per named graph, in one GROUP BY query (graphs that do not exist count 0)."""
    if not graphs:
        return {}
    plain = EndpointConfig(**{**config.__dict__, "graph": None})
    listed = ", ".join(f"<{g}>" for g in graphs)
    result = run_remote(plain, f"SELECT ?g (COUNT(*) AS ?n) WHERE {{ GRAPH ?g {{ ?s ?p ?o }} "
                               f"FILTER(?g IN ({listed})) }} GROUP BY ?g")
    counts = dict.fromkeys(graphs, 0)
    for g, n in result.rows:
        if g is not None and n is not None:
            counts[g.value] = int(n.value)
    return counts


def _graphs_under(config: EndpointConfig, prefix: str) -> list[str]:
    """The server's named graphs whose IRI starts with ``prefix``."""
    plain = EndpointConfig(**{**config.__dict__, "graph": None})
    result = run_remote(plain, "SELECT DISTINCT ?g WHERE { GRAPH ?g { ?s ?p ?o } "
                               f"FILTER(STRSTARTS(STR(?g), {json.dumps(prefix)})) }}")
    return sorted(row[0].value for row in result.rows if row[0] is not None)


def _say(message: str) -> None:
    log.info("%s", message)


def push(project: Project, config: EndpointConfig, *, batch_size: int = 5000,
         payload: Payload | None = None, triples: Sequence[ox.Triple] | None = None) -> PushReport:
    """Load the whole graph into ``config.graph`` (or the default graph), and the build's per-document
    named graphs under their own IRIs, through staging graphs swapped in by ONE update request.

    ``triples`` (a whole graph, no named graphs) or ``payload`` replace what the build published.
    """
    config.require("query", "push (to count the triples)")
    config.require("update", "push")
    if batch_size < 1:
        raise UsageError(f"--batch-size must be 1 or more, not {batch_size}")
    if payload is None:
        payload = Payload(list(triples), {}, "the given triples") if triples is not None else published_payload(project)
    payload = Payload(list(dict.fromkeys(payload.whole)),
                      {g: list(dict.fromkeys(ts)) for g, ts in sorted(payload.named.items()) if ts}, payload.source)
    payload = skolemise(payload, project.base_iri)
    if not payload.whole:
        raise DataError("the graph is empty: nothing to push (an empty push would erase the server's copy)")
    target = config.graph
    if target is not None and target in payload.named:
        raise UsageError(f"--graph <{target}> is one of the build's per-document graphs: choose another IRI")
    shown_target = f"<{target}>" if target else "the default graph"
    # (destination, staging, triples); destination None is the default graph
    plan: list[tuple[str | None, str, list[ox.Triple]]] = [(target, staging_graph(target), payload.whole)]
    plan += [(name, staging_graph(name), triples) for name, triples in payload.named.items()]
    client = _Client(config)
    method = "Graph Store protocol" if config.store_url else "SPARQL Update"
    _say(f"pushing {len(payload.whole)} triples from {payload.source} into {shown_target}"
         + (f" and {len(payload.named)} named graphs" if payload.named else "") + f" through {method}")
    stale: list[str] = []
    if payload.named:  # per-document graphs of an earlier build that this one no longer has
        prefix = project.base_iri + "graph/"
        stale = [g for g in _graphs_under(config, prefix) if g not in payload.named and g != target]
    stagings = [staging for _, staging, _ in plan]
    run_update(config, " ;\n".join(f"DROP SILENT GRAPH <{s}>" for s in stagings), client, "clear the staging graphs")
    swapped = False
    try:
        for destination, staging, triples in plan:
            shown = f"<{destination}>" if destination else "the default graph"
            if config.store_url:
                for number, body in enumerate(_batches(triples, batch_size)):
                    store_upload(config, staging, body, replace=number == 0, client=client)
                    _say(f"stored batch {number + 1} for {shown} ({len(body)} bytes)")
            else:
                batch_size = _insert_data(config, client, staging, triples, batch_size, shown)
        staged = _graph_counts(config, stagings)
        for destination, staging, triples in plan:
            if staged.get(staging, 0) != len(triples):
                shown = f"<{destination}>" if destination else "the default graph"
                raise RemoteError(f"the server holds {staged.get(staging, 0)} triples in the staging graph "
                                  f"<{staging}> for {shown}, expected {len(triples)}: the push stopped before "
                                  f"changing anything")
        if os.environ.get(ENV_FAIL_AFTER) == "staging":  # test hook: die like a killed process
            log.warning("%s=staging: exiting hard after loading the staging graphs", ENV_FAIL_AFTER)
            logging.shutdown()
            os._exit(70)
        operations = [f"MOVE GRAPH <{staging}> TO {f'GRAPH <{d}>' if d else 'DEFAULT'}" for d, staging, _ in plan]
        operations += [f"DROP SILENT GRAPH <{g}>" for g in stale]
        run_update(config, " ;\n".join(operations), client, f"move the staging graphs into {shown_target}")
        swapped = True
    finally:
        if not swapped:
            _drop_quietly(config, stagings)
    remote = count_triples(config, target)
    named_counts = _graph_counts(config, list(payload.named))
    return PushReport(target=target, local=len(payload.whole), remote=remote,
                      named_local=sum(len(ts) for ts in payload.named.values()),
                      named_remote=sum(named_counts.values()), graphs=len(payload.named),
                      source=payload.source, method=method, dropped=stale)


def _drop_quietly(config: EndpointConfig, stagings: Sequence[str]) -> None:
    """Best effort: remove the staging graphs after a failed push (the next push drops them anyway)."""
    quick = EndpointConfig(**{**config.__dict__, "retries": 0, "timeout": min(config.timeout, 10.0)})
    try:
        run_update(quick, " ;\n".join(f"DROP SILENT GRAPH <{s}>" for s in stagings), _Client(quick),
                   "drop the staging graphs")
    except EmkgError as exc:
        log.info("could not drop the staging graphs: %s", exc)


def run_push(project: Project, args: Any) -> int:
    """``emkg push``: push the published graph, check the server's counts, say so."""
    config = EndpointConfig.from_args(args)
    report = push(project, config, batch_size=getattr(args, "batch_size", None) or 5000)
    shown_target = f"<{report.target}>" if report.target else "the default graph"
    where = scrub_url(config.update_url or "")
    named = f" and {report.graphs} per-document named graphs" if report.graphs else ""
    print(f"pushed {report.local} triples from {report.source} into {shown_target}{named} at {where} "
          f"({report.method})")
    if report.dropped:
        print(f"dropped {len(report.dropped)} named graph(s) the build no longer has: "
              + ", ".join(f"<{g}>" for g in report.dropped))
    if report.matches:
        extra = (f"; its {report.graphs} named graphs hold {report.named_remote}" if report.graphs else "")
        print(f"checked: the server holds {report.remote} triples in {shown_target}{extra}, "
              f"as many as the local graph")
        return 0
    if report.remote != report.local:
        hint = (" (this server's default graph seems to include other graphs, as Virtuoso's does: "
                "push into a named graph with --graph IRI)") if report.target is None else ""
        raise RemoteError(f"the server holds {report.remote} triples in {shown_target} after the push, but the "
                          f"local graph has {report.local}{hint}")
    raise RemoteError(f"the server's {report.graphs} named graphs hold {report.named_remote} triples after the "
                      f"push, but the build's have {report.named_local}")


# --- serve -----------------------------------------------------------------------------------------

def find_oxigraph() -> str:
    """The ``oxigraph`` server CLI (PyPI package ``oxigraph``): next to this Python first, then on PATH."""
    beside = Path(sys.executable).parent / "oxigraph"
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    found = shutil.which("oxigraph")
    if found:
        return found
    raise UsageError("the oxigraph server is not installed: pip install oxigraph (it provides the 'oxigraph' command)")


def _free_port(host: str) -> int:
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def _check_port(host: str, port: int) -> None:
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            raise UsageError(f"cannot listen on {host}:{port}: {_os_error_text(exc)} (choose another --port)") from None


def _wait_ready(proc: subprocess.Popen, url: str, log_path: Path, deadline: float = 30.0) -> None:
    start = time.monotonic()
    probe = url + "?" + urllib.parse.urlencode({"query": "ASK {}"})
    while time.monotonic() - start < deadline:
        if proc.poll() is not None:
            raise UsageError(f"oxigraph serve stopped at once: {_last_line(log_path)}")
        try:
            with urllib.request.urlopen(probe, timeout=1) as answer:
                if answer.status == 200:
                    return
        except (OSError, http.client.HTTPException):
            time.sleep(0.05)
    raise UsageError(f"oxigraph serve did not answer within {deadline:g} s: {_last_line(log_path)}")


def _served_count(url: str) -> int | None:
    probe = url + "?" + urllib.parse.urlencode({"query": "SELECT (COUNT(*) AS ?n) WHERE { ?s ?p ?o }"})
    request = urllib.request.Request(probe, headers={"Accept": "application/sparql-results+json"})
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:
            return int(json.loads(answer.read())["results"]["bindings"][0]["n"]["value"])
    except (OSError, ValueError, KeyError, IndexError, http.client.HTTPException):
        return None


def _last_line(path: Path) -> str:
    try:
        lines = [ln.strip() for ln in path.read_text(encoding="utf-8", errors="replace").splitlines() if ln.strip()]
    except OSError:
        return "no message"
    return lines[-1][:MESSAGE_LIMIT] if lines else "no message"


def _stop(proc: subprocess.Popen) -> None:
    """SIGTERM (the server ignores SIGINT), then SIGKILL if it lingers."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def run_serve(project: Project, args: Any) -> int:
    """``emkg serve``: an Oxigraph server with the built graph, until Ctrl-C; its data folder is temporary."""
    exe = find_oxigraph()
    host = getattr(args, "bind", None) or "127.0.0.1"
    port = int(getattr(args, "port", 7878) or 0)
    port = _free_port(host) if port == 0 else port
    _check_port(host, port)
    built = project.out_dir / "emkg.ttl"
    previous = signal.getsignal(signal.SIGTERM)

    def on_term(signum, frame):  # `kill emkg` stops the server and cleans up, like Ctrl-C
        raise KeyboardInterrupt

    with tempfile.TemporaryDirectory(prefix="emkg-serve-") as tmp:
        folder = Path(tmp)
        log.info("server data in %s (removed on exit)", folder)
        if built.is_file():
            data_file, shown = built, project.relative(built)
            if max((p.stat().st_mtime for p in project.graph_files()), default=0.0) > built.stat().st_mtime:
                log.warning("%s is older than the sources: serving it as built (run 'emkg build' to refresh it)",
                            shown)
        else:
            from .load import load_graph

            graph = load_graph(project)
            if graph.problems:
                for problem in graph.problems:
                    print(problem, file=sys.stderr)
                raise DataError(f"{len(graph.problems)} file(s) with syntax errors: fix them before serving")
            data_file = folder / "graph.nt"
            graph.store.dump(str(data_file), format=ox.RdfFormat.N_TRIPLES, from_graph=ox.DefaultGraph())
            shown = "the project's sources (no public/emkg.ttl)"
        db = folder / "db"
        loaded = subprocess.run([exe, "load", "--location", str(db), "--file", str(data_file)],
                                capture_output=True, text=True, errors="replace")
        if loaded.returncode != 0:
            message = (loaded.stderr.strip().splitlines() or ["no message"])[-1]
            raise DataError(f"oxigraph load failed on {shown}: {message[:MESSAGE_LIMIT]}")
        server_log = folder / "server.log"
        shown_host = f"[{host}]" if ":" in host else host
        base = f"http://{shown_host}:{port}"
        with open(server_log, "wb") as log_file:
            proc = subprocess.Popen([exe, "serve", "--location", str(db), "--bind", f"{shown_host}:{port}"],
                                    stdin=subprocess.DEVNULL, stdout=log_file, stderr=subprocess.STDOUT)
        try:
            signal.signal(signal.SIGTERM, on_term)
            _wait_ready(proc, base + "/query", server_log)
            count = _served_count(base + "/query")
            triples = f"{count} triples" if count is not None else "the graph"
            print(f"serving {triples} from {shown} with Oxigraph", flush=True)
            print(f"  query:  {base}/query", flush=True)
            print(f"  update: {base}/update", flush=True)
            print(f"  store:  {base}/store", flush=True)
            print("press Ctrl-C to stop (changes made through update/store are thrown away)", flush=True)
            if host not in ("127.0.0.1", "localhost", "::1"):
                log.warning("listening on %s: anyone who can reach it can change the data through /update", host)
            code = proc.wait()
            raise UsageError(f"oxigraph serve stopped unexpectedly (exit {code}): {_last_line(server_log)}")
        except KeyboardInterrupt:
            _stop(proc)
            print("stopped", flush=True)
            return 0
        finally:
            _stop(proc)
            signal.signal(signal.SIGTERM, previous)
