"""``emkg build``: validate, then write the dumps, the views and the site; swap the output in atomically.

Steps: load → validate (the same report as ``emkg validate``; any violation, syntax error or
project error stops the build, exit 1/2, and nothing is published) → dumps (``dumps.py``) →
views (``views/NAME.csv`` and ``views/NAME.json``) → site (``site.py``) → swap. When the output
has a build record (an incremental build) and the graph is below
``BACKGROUND_VALIDATION_TRIPLES``, the validation runs in a child process alongside the dumps,
views and pages, and only the pages that show its report wait for it (``Validation``); the
output is updated only if it conforms.

Everything is written into a temporary folder beside the output (``.NAME.tmp-PID``); at the end
the old output is renamed to ``.NAME.old-PID``, the new one renamed into place and the old one
deleted. A failed or interrupted build (an exception, Ctrl-C, SIGTERM, a kill) leaves the previous
output as it was; leftovers of killed builds are removed by the next build.

Safety: the output folder must be a folder (or not exist yet); an existing, non-empty folder is
replaced only if an earlier build made it (it holds ``.emkg-build``); it may not be the project
folder, contain it, or lie inside the source folders. Pages are written only through
``site.safe_join`` (no path leaves the output).
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import urllib.parse
from collections.abc import Sequence
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

import pyoxigraph as ox

from .errors import EXIT_OK, UsageError
from .forked import Forked
from .project import Project
from .querydeps import Prefetch

log = logging.getLogger(__name__)

MARKER = ".emkg-build"
MARKER_TEXT = "This folder was written by `emkg build`; the next build replaces it as a whole.\n"
ENDPOINT_ENV = "EMKG_ENDPOINT"


# --- progress ------------------------------------------------------------------------------------

class Progress:
    """Progress on stderr: one live line on a terminal, plain lines otherwise (pipes, CI)."""

    def __init__(self, stream: TextIO | None = None, live: bool | None = None) -> None:
        self.stream = stream or sys.stderr
        if live is None:
            live = (hasattr(self.stream, "isatty") and self.stream.isatty() and not os.environ.get("CI")
                    and os.environ.get("TERM") != "dumb")
        self.live = live
        self._last = 0.0
        self._milestone: dict[str, int] = {}
        self._open = False

    def _write(self, text: str) -> None:
        try:
            self.stream.write(text)
            self.stream.flush()
        except (OSError, ValueError):
            pass

    def step(self, text: str) -> None:
        if self.live:
            self._write(f"\r\x1b[Kemkg: {text}…")
            self._open = True
        else:
            self._write(f"emkg: {text}\n")

    def tick(self, step: str, done: int, total: int) -> None:
        if total <= 0:
            return
        if self.live:
            now = time.monotonic()
            if done >= total or now - self._last >= 0.1:
                self._last = now
                self._write(f"\r\x1b[Kemkg: {step} {done:,}/{total:,} ({100 * done // total}%)")
                self._open = True
            return
        # plain: a line at every quarter of a long step, and at the end
        if total < 500 and done < total:
            return
        quarter = 4 * done // total
        if quarter > self._milestone.get(step, 0) or (done >= total and self._milestone.get(step) != 4):
            self._milestone[step] = quarter
            self._write(f"emkg: {step} {done:,}/{total:,}\n")

    def done(self, text: str) -> None:
        if self.live and self._open:
            self._write("\r\x1b[K")
            self._open = False
        self._write(f"emkg: {text}\n")


# --- the output folder ---------------------------------------------------------------------------

def _inside(path: Path, folder: Path) -> bool:
    try:
        path.relative_to(folder)
        return True
    except ValueError:
        return False


def check_output(project: Project, out: Path) -> Path:
    """The output folder, absolute; a UsageError (exit 2) if it cannot or must not be used."""
    out = Path(os.path.abspath(out))
    shown = str(out)
    if out.exists() and not out.is_dir():
        raise UsageError(f"{shown}: --out is a file, not a folder; give a folder to publish into")
    root = project.root.resolve()
    resolved = out.resolve() if out.exists() else Path(os.path.abspath(out))
    if resolved == root or _inside(root, resolved):
        raise UsageError(f"{shown}: --out would replace the project folder itself; choose a folder such as public/")
    for source in (project.ontology_dir, project.data_dir, project.shapes_dir, project.queries_dir):
        if _inside(resolved, source.resolve()):
            raise UsageError(f"{shown}: --out may not be inside the sources ({project.relative(source)}/)")
    if out.is_dir() and any(out.iterdir()) and not (out / MARKER).is_file():
        raise UsageError(f"{shown}: the folder is not empty and was not made by `emkg build` (no {MARKER} in it); "
                         "refusing to replace it: choose an empty or new folder")
    parent = out.parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"{shown}: cannot create the output folder: {exc.strerror or exc}") from None
    if not parent.is_dir():
        raise UsageError(f"{shown}: {parent} is not a folder")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise UsageError(f"{shown}: cannot write in {parent}: permission denied")
    return out


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _clean_leftovers(out: Path) -> None:
    """Remove the temporary and backup folders of earlier builds that were killed."""
    pattern = re.compile(r"^\." + re.escape(out.name) + r"\.(tmp|old|trash)-(\d+)(-\d+)?$")
    for item in sorted(out.parent.iterdir()):
        match = pattern.match(item.name)
        if match and item.is_dir() and not item.is_symlink() and not _pid_alive(int(match.group(2))):
            log.info("removing %s (left by an interrupted build)", item)
            # renamed out of the way at once, deleted in the background (a national site takes seconds)
            _remove_later(_to_trash(item, out))


def _to_trash(folder: Path, out: Path) -> Path:
    """Rename ``folder`` to a new ``.NAME.trash-PID-N`` beside ``out`` (itself if it cannot be)."""
    for n in range(1000):
        trash = out.parent / f".{out.name}.trash-{os.getpid()}-{n}"
        if not trash.exists():
            try:
                os.rename(folder, trash)
                return trash
            except OSError:
                break
    return folder


def _swap(tmp: Path, out: Path) -> None:
    if out.exists() or out.is_symlink():
        backup = out.parent / f".{out.name}.old-{os.getpid()}"
        if backup.exists():  # an earlier build in this process, still being deleted in the background
            _remove_later(_to_trash(backup, out))
        os.rename(out, backup)
        try:
            os.rename(tmp, out)
        except OSError:
            os.rename(backup, out)
            raise
        _remove_later(backup)
    else:
        os.rename(tmp, out)


def _remove_later(path: Path) -> None:
    """Delete the previous output in a detached process: the new one is already in place, and a
    national site takes seconds to delete. (If it is killed, the next build removes what is left,
    see ``_clean_leftovers``; if no process can be started, it is deleted here.)"""
    code = "import shutil, sys; shutil.rmtree(sys.argv[1], ignore_errors=True)"
    try:
        subprocess.Popen([sys.executable, "-c", code, str(path)], start_new_session=True, close_fds=True,
                         stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    except OSError as exc:
        log.debug("deleting %s here: %s", path, exc)
        shutil.rmtree(path, ignore_errors=True)


class _Terminated(KeyboardInterrupt):
    """SIGTERM during a build: unwind (clean up the temporary folder) like Ctrl-C."""


def _on_sigterm(signum, frame):  # pragma: no cover - exercised by the interrupted-build test
    raise _Terminated()


# --- views ---------------------------------------------------------------------------------------

def run_views(project: Project, store, views_dir: Path | None, planner=None, changed: set[str] | None = None,
              deferred: list[tuple[str, Any]] | None = None) -> list[tuple]:
    """Run every stored view without parameters; write ``NAME.csv`` and ``NAME.json``.

    The files' text comes from the work cache when the same rows were published before
    (``views.published_texts``). Returns (View, Result | None, reason | None) for the site. A view with a required parameter is
    not run (the reason says so); a view that fails to run stops the build (exit 2).

    ``planner`` (an ``incremental.IncrementalSite``) and ``changed`` (the predicates of the triples
    that changed since its last build, None if unknown): a view none of whose predicates changed
    (``querydeps``) has the last build's rows, which are reused rather than run again. With
    ``deferred``, such a view's files are not written but listed there as (name, result), for
    ``write_view_files`` or to be kept in the output the build updates in place.
    """
    from concurrent.futures import ThreadPoolExecutor

    from .cache import code_fingerprint
    from .views import bind_params, list_views, run_local

    planned = []  # (view, key, the kept result or None, the query), in order
    out: list[tuple] = []
    for view in list_views(project):
        needed = [p.name for p in view.params if p.required]
        if needed:
            planned.append((view, None, None, f"it needs the parameter{'s' if len(needed) > 1 else ''} {', '.join(needed)}"))
            continue
        text = bind_params(view, {})
        key = hashlib.sha256(f"{code_fingerprint('views', 'querydeps')}\0{text}".encode("utf-8")).hexdigest()
        planned.append((view, key, _kept_view(project, planner, changed, view.name, key, text), text))
    # the views to run, on two threads when there are several (pyoxigraph evaluates a query
    # without holding the GIL: the two overlap); the answers are taken in order
    to_run = [(view, text) for view, key, kept, text in planned if key is not None and kept is None]
    with ThreadPoolExecutor(max_workers=min(VIEW_THREADS, len(to_run)) or 1) as pool:
        running = {view.name: pool.submit(run_local, store, text, source=project.relative(view.path)) for view, text in to_run}
        reused = 0
        for view, key, kept, text in planned:
            if key is None:
                out.append((view, None, text))  # not run: ``text`` says why
                continue
            if kept is not None:
                reused += 1
                result = kept
            else:
                try:
                    result = running[view.name].result()
                except UsageError as exc:
                    for future in running.values():
                        future.cancel()
                    raise UsageError(f"view {view.name!r} cannot be published: {exc}") from None
            if planner is not None:
                planner.remember_view(view.name, key, result)
            if deferred is not None and kept is not None:
                deferred.append((view.name, result))
            elif views_dir is not None:
                write_view_files(project, views_dir, view.name, result)
            out.append((view, result, None))
    if changed is not None:
        log.info("views: %d of %d reused (none of the predicates they read changed)", reused, len(out))
    return out


VIEW_THREADS = 2  # stored views run at once (the machines this is made for have two cores or more)


def write_view_files(project: Project, views_dir: Path, name: str, result) -> None:
    """A view's ``NAME.csv`` and ``NAME.json`` (their text cached per rows)."""
    from .views import published_texts

    views_dir.mkdir(parents=True, exist_ok=True)
    csv_text, json_text = published_texts(project, name, result)
    (views_dir / f"{name}.csv").write_text(csv_text, encoding="utf-8", newline="")
    (views_dir / f"{name}.json").write_text(json_text, encoding="utf-8")


VIEW_FILES = ("csv", "json")


def _view_analysis(project: Project) -> Prefetch:
    """The analysis of every stored view run without parameters, started in the background (none
    when a view cannot be read: running the views reports that, in its place in the build)."""
    from .views import bind_params, list_views

    try:
        texts = [bind_params(view, {}) for view in list_views(project) if not any(p.required for p in view.params)]
    except UsageError:
        texts = []
    return Prefetch(texts, project)


def _analyse_views(project: Project, views: list[tuple]) -> None:
    """Work out (and keep in the cache) which predicates each view reads, for the next build to
    tell which views an edit can change (``querydeps``; slow the first time, then cached)."""
    from .querydeps import query_predicates
    from .views import bind_params

    for view, result, _reason in views:
        if result is not None:
            query_predicates(bind_params(view, {}), project)


def _kept_view(project: Project, planner, changed: set[str] | None, name: str, key: str, text: str):
    """The last build's result of a view whose predicates did not change (None: run it)."""
    if planner is None or changed is None:
        return None
    kept = planner.kept_view(name, key)
    if kept is None or not changed:
        return kept
    from .querydeps import query_predicates

    reads = query_predicates(text, project)
    if reads is None or reads & changed:
        return None
    return kept


# --- validation --------------------------------------------------------------------------------------

class NotConforming(Exception):
    """The build's validation found violations (or syntax or project errors): nothing is published."""

    def __init__(self, report) -> None:
        super().__init__(report.summary())
        self.report = report


class Validation:
    """The validation a build depends on: the kept report when nothing changed, else a validation
    run here or (``background``) alongside the dumps, views and pages.

    In the background the validation runs in a child process forked from this one (it has the
    loaded graph; the report comes back pickled through a pipe), so that both cores work and
    neither waits for the other's Python (where ``fork`` is missing, it runs here, first). Nothing
    is published unless the report conforms: ``check`` raises ``NotConforming``."""

    def __init__(self, project: Project, graph, shapes, background: bool = False) -> None:
        from .validate import kept_report, validate_loaded

        self.report = kept_report(project, graph, shapes)
        self._child: Forked | None = None
        self._error: BaseException | None = None
        if self.report is not None:
            return
        if background and hasattr(os, "fork"):
            self._child = Forked(lambda: validate_loaded(project, graph, shapes, qc=True, reuse=True))
        else:
            self.report = validate_loaded(project, graph, shapes, qc=True, reuse=True)

    def result(self):
        """The report (waiting for the background validation); its errors are raised here."""
        if self._child is not None:
            child, self._child = self._child, None
            try:
                self.report = child.result()
            except BaseException as exc:  # noqa: BLE001 - kept: every later call raises it too
                self._error = exc
        if self._error is not None:
            raise self._error
        return self.report

    def check(self):
        """The report, if it conforms; else ``NotConforming``."""
        report = self.result()
        if not report.conforms():
            raise NotConforming(report)
        return report

    def stop(self) -> None:
        """End a background validation still running (the build failed)."""
        if self._child is not None:
            self._child.stop()
            self._child = None


# Above this the validation runs before the dumps, not alongside them: at national scale the two
# would hold their working memory at the same time (the build must stay under 4 GB at 1M triples).
BACKGROUND_VALIDATION_TRIPLES = 400_000


def _incremental_build(project: Project, out: Path) -> bool:
    """Whether the output folder has a build record (so the build is likely incremental, and
    validation is worth running alongside the dumps: a full build forks workers instead)."""
    from .incremental import cache_dir

    return (cache_dir(project, out) / "state.pickle").is_file()


# --- the command ---------------------------------------------------------------------------------

@dataclass
class BuildSummary:
    out: Path
    triples: int
    dumps: int
    views: int
    pages: int
    seconds: float

    def text(self, shown: str) -> str:
        pages = f", {self.pages:,} pages" if self.pages else " (no site)"
        return (f"built {shown} in {self.seconds:.1f} s: {self.triples:,} triples, {self.dumps} dumps, "
                f"{self.views} views{pages}")


def run_build(project: Project, args) -> int:
    """``emkg build [--out DIR] [--no-site] [--full] [--jobs N]``."""
    from .load import load_graph, load_shapes
    from .validate import render_report

    started = time.monotonic()
    progress = Progress()
    out_arg = getattr(args, "out", None)
    out = check_output(project, Path(out_arg) if out_arg is not None else project.out_dir)
    shown = _shown(project, out)
    jobs = int(getattr(args, "jobs", 0) or 0)
    if jobs < 0:
        raise UsageError(f"--jobs must be 0 (one per CPU) or more, not {jobs}")
    full = bool(getattr(args, "full", False))

    site = not getattr(args, "no_site", False)

    # what each view reads, for the next build (``_analyse_views``): worked out meanwhile, on the
    # other core, when not in the cache yet (a fork now, while this process is small)
    with _view_analysis(project) if site else nullcontext():  # (its child ends with the build)
        progress.step("loading the sources")
        graph = load_graph(project)
        shapes = load_shapes(project)
        background = site and not full and len(graph) < BACKGROUND_VALIDATION_TRIPLES and _incremental_build(project, out)
        progress.step(f"validating {len(graph):,} triples" + (" (alongside the dumps and views)" if background else ""))
        validation = Validation(project, graph, shapes, background=background)
        try:
            if validation.report is not None:
                validation.check()
            summary = publish(project, out, graph, shapes, validation, site=site,
                              jobs=jobs, progress=progress, started=started, full=full)
        except NotConforming as exc:
            progress.done("the data does not conform: nothing was published")
            print(render_report(exc.report, "text"))
            return exc.report.exit_code()
        finally:
            validation.stop()  # a validation still running when the build failed
    warnings = validation.result().warnings
    progress.done(summary.text(shown) + (f"; {warnings} validation warning{'s' if warnings != 1 else ''} (see quality/)"
                                         if warnings and summary.pages else ""))
    return EXIT_OK


def public_endpoint(raw: str) -> str | None:
    """The SPARQL endpoint to announce in the dataset description: an http(s) URL with any
    ``user:password@`` removed (credentials are never written into the output)."""
    raw = raw.strip()
    if not raw:
        return None
    parts = urllib.parse.urlsplit(raw)
    try:
        port = parts.port
    except ValueError:
        port, parts = None, parts._replace(scheme="")
    if parts.scheme not in ("http", "https") or not parts.hostname:
        log.warning("%s is not an http(s) URL; the dataset description names no SPARQL endpoint", ENDPOINT_ENV)
        return None
    host = parts.hostname if ":" not in parts.hostname else f"[{parts.hostname}]"
    netloc = host + (f":{port}" if port else "")
    return urllib.parse.urlunsplit((parts.scheme, netloc, parts.path, parts.query, ""))


def publish(project: Project, out: Path, graph, shapes, report, *, site: bool = True, jobs: int = 0,
            progress: Progress | None = None, started: float | None = None, full: bool = False) -> BuildSummary:
    """Write dumps, views and (``site``) the site for a validated graph into ``out``, atomically.

    ``out`` must have passed :func:`check_output`. The caller decides whether ``report`` allows
    publishing (``run_build`` refuses any non-conforming report); a ``Validation`` still running
    is waited for by the pages that show its report (the last made) or, without a site, once the
    dumps and views are written, and ``NotConforming`` stops the build there (the temporary
    folder is removed: nothing is published). The site is incremental (``incremental.py``: only
    the pages a change can touch are made, and the output is updated in place) unless ``full``.
    """
    from . import dumps as dumps_mod
    from .incremental import IncrementalSite

    started = time.monotonic() if started is None else started
    progress = progress or Progress()
    date = dumps_mod.source_date(project)
    endpoint = public_endpoint(os.environ.get(ENDPOINT_ENV, ""))
    _clean_leftovers(out)
    planner = IncrementalSite(project, out, full=full or not site, date=date, endpoint=endpoint)
    tmp = out.parent / f".{out.name}.tmp-{os.getpid()}"
    if tmp.exists():
        shutil.rmtree(tmp)
    try:
        tmp.mkdir()
    except OSError as exc:
        raise UsageError(f"{out}: cannot create a temporary folder beside it: {exc.strerror or exc}") from None

    early = None  # the resource pages, when they are started before the dumps (``_start_resource_pages``)
    previous = signal.getsignal(signal.SIGTERM)
    try:
        signal.signal(signal.SIGTERM, _on_sigterm)
    except ValueError:  # not the main thread
        previous = None
    try:
        (tmp / MARKER).write_text(MARKER_TEXT, encoding="utf-8")
        progress.step("describing the dataset")
        description = dumps_mod.describe(project, graph.store, graph.prefixes, date=date, endpoint=endpoint)
        described = [ox.Quad(t.subject, t.predicate, t.object, ox.DefaultGraph()) for t in description.triples]
        locations = planner.locations(graph) if site else None
        if site and planner.renders_every_page:  # every resource page: rendered while the dumps and views are
            # written (the workers have the cores: the pool's threads keep the dumps in this process)
            early = _start_resource_pages(project, graph, shapes, tmp, described, date, endpoint, jobs, locations)
        written = dumps_mod.write_dumps(project, graph, tmp, description=description, progress=progress.step,
                                         parallel=jobs != 1, on_lines=lambda lines: planner.known_lines(graph.store, lines),
                                         statements=early.model.statements_of if early is not None else None)
        progress.step("running the stored views")
        changed = planner.changed_predicates(graph.store, described) if site else None
        if changed is not None and any(q in graph.store for q in described):
            changed = None  # the changed triples are told from the site's triples: sure only if they add to the graph
        deferred: list[tuple[str, Any]] = []  # views with the last build's rows: their files may stay in the output
        views = run_views(project, graph.store, tmp / "views", planner if site else None, changed, deferred)
        if site:  # done now, while any page workers have the cores, not after them on one core: the
            # views' rows into the build cache, what each view reads
            planner.record_views()
            if changed is None:
                _analyse_views(project, views)  # in the cache by now, from ``_view_analysis`` (or waited for)
        pages = 0
        if site:
            from .site import render_site

            progress.step("rendering the site")
            store = graph.store  # the site shows the dataset description too (the views are done; a
            # validation in the background works on its own copy, in its own process)
            store.bulk_extend(described)
            shown = report.check if isinstance(report, Validation) else report  # the pages that show it wait for it
            stats = render_site(project, graph, shown, views, tmp, shapes=shapes, dumps=written,
                                description=description, date=date, endpoint=endpoint, jobs=jobs,
                                progress=progress.tick, store=store, select=planner.select,
                                page_keys=planner.page_keys, locations=locations, early=early)
            pages = stats.pages
        if isinstance(report, Validation):
            report.check()  # nothing is published unless it conforms
        progress.step("swapping the new output into place")
        for name, result in deferred:
            files = [f"views/{name}.{ext}" for ext in VIEW_FILES]
            if site and planner.in_place and all((out / rel).is_file() for rel in files):
                planner.keep_files(files)  # the same rows: the same files
            else:
                write_view_files(project, tmp / "views", name, result)
        if site and planner.in_place:
            planner.update_in_place(tmp, out)  # only what changed (the rest of the output stays)
        else:
            if site:
                planner.note_output(tmp)
            _swap(tmp, out)
        if site:
            planner.save(out)
    except BaseException:
        if early is not None:
            early.close()  # its workers write into the temporary folder
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
    return BuildSummary(out, description.total_triples, len([d for d in written if d.triples]),
                        len(views), pages, time.monotonic() - started)


def _start_resource_pages(project: Project, graph, shapes, tmp: Path, described: Sequence[ox.Quad], date: str | None,
                          endpoint: str | None, jobs: int, locations):
    """Every resource page, started in worker processes (``site.start_resource_pages``) from the
    graph with the dataset description added, so that they render while this process writes the
    dumps and views; the description's triples are taken out of the store again at once (the
    dumps and views are of the graph alone; the workers have their own copy). None where the
    pages are rendered later, the usual way."""
    from .site import start_resource_pages

    store = graph.store
    added = [quad for quad in described if quad not in store]
    store.bulk_extend(added)
    try:
        return start_resource_pages(project, graph, tmp, shapes=shapes, date=date, endpoint=endpoint, jobs=jobs,
                                    store=store, locations=locations)
    finally:
        for quad in added:
            store.remove(quad)


def _shown(project: Project, path: Path) -> str:
    text = project.relative(path)
    return text + "/" if not text.endswith("/") else text


__all__ = ["BuildSummary", "MARKER", "Progress", "check_output", "publish", "run_build", "run_views"]
