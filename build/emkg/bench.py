"""``emkg bench``: synthetic national-scale trees and ``make bench``.

``emkg bench generate --triples N --out DIR [--faults K] [--seed S]`` writes a complete synthetic
project (see ``synth.py``).

``emkg bench run [--sizes 10000,100000,1000000] [--results bench/results] [--naive-limit 100000]``
generates a tree per size under ``bench/work/`` and times, each in its own subprocess (so that
peak memory is that process's own ``ru_maxrss``, read with ``os.wait4``):

* the emkg steps as ``emkg validate`` and ``emkg build`` run them, through the public APIs:
  parse (``load_graph``/``load_shapes``), validate (``validate_loaded``, default engine), views
  (every stored view, ``run_local``), dumps (``write_dumps``) and site (``render_site``);
* the commands themselves, end to end: ``emkg validate``, ``emkg build`` from an empty output
  folder, and ``emkg build`` again after one data file (an update) was edited — the incremental
  build; up to ``REPEAT_LIMIT`` triples and on the real data each ``--repeat`` times (default 3),
  recording the median run and every run's time;
* the naive pipeline on the same tree: rdflib parse, pySHACL validate, rdflib SPARQL for every
  view, rdflib Turtle serialization. Above ``--naive-limit`` triples (or when a step runs longer
  than ``EMKG_BENCH_NAIVE_TIMEOUT`` seconds, default 2400) it is not run: its time is extrapolated
  per step from the growth measured at the smaller sizes (a power law through the two largest
  measured sizes) and labelled ``extrapolated`` everywhere it is shown.

It prints a table and the ratios, and writes ``results.json`` and ``chart.svg`` (drawn by hand,
no plotting library) to the results folder. A step whose module is not there yet (an API that
another part of emkg has not landed) is recorded as ``unavailable``, never guessed.
"""

from __future__ import annotations

import datetime as _dt
import json
import logging
import math
import os
import platform
import re
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path

from .errors import UsageError
from .heap import bulk
from .project import Project

log = logging.getLogger(__name__)

FAST_STEPS = ("parse", "validate", "views", "dumps", "site")
NAIVE_STEPS = ("parse", "validate", "views", "serialize")
# which naive step a fast step is compared with
COMPARABLE = {"parse": "parse", "validate": "validate", "views": "views", "dumps": "serialize"}
NAIVE_TIMEOUT_ENV = "EMKG_BENCH_NAIVE_TIMEOUT"
ENGINE_ENV = "EMKG_SHACL_ENGINE"
SOURCE_DATE_EPOCH = "1700000000"
# Up to this size (and on the real data) each command is timed ``--repeat`` times and the median
# run recorded: this kind of machine's speed drifts by a third within minutes, and a target near its
# limit would be met or missed by the drift. Above it a command runs once (minutes each).
REPEAT_LIMIT = 100_000


# --- the command ---------------------------------------------------------------------------------------

def run_bench(project: Project, args) -> int:
    action = getattr(args, "bench_command", None)
    if action == "generate":
        return _generate(project, args)
    if action == "run":
        return _run(project, args)
    raise UsageError(f"unknown bench action {action!r}")


def _generate(project: Project, args) -> int:
    from .synth import generate_tree

    if args.triples < 1:
        raise UsageError("--triples must be a positive number")
    if args.faults < 0:
        raise UsageError("--faults must be 0 or more")
    started = time.perf_counter()
    manifest = generate_tree(project, args.out, args.triples, faults=args.faults, seed=args.seed)
    seconds = time.perf_counter() - started
    print(f"wrote {args.out}: {manifest['data_triples']} data triples in {manifest['data_files']} files, "
          f"{len(manifest['faults'])} faults, seed {args.seed} ({seconds:.2f}s)")
    return 0


def _parse_sizes(text: str) -> list[int]:
    sizes = []
    for part in str(text).split(","):
        part = part.strip().lower().replace("_", "")
        if not part:
            continue
        scale = 1
        if part.endswith("k"):
            part, scale = part[:-1], 1000
        elif part.endswith("m"):
            part, scale = part[:-1], 1_000_000
        try:
            value = int(float(part) * scale)
        except ValueError:
            raise UsageError(f"--sizes: {part!r} is not a number of triples") from None
        if value < 1:
            raise UsageError("--sizes: sizes must be positive")
        sizes.append(value)
    if not sizes:
        raise UsageError("--sizes: give at least one size")
    return sorted(set(sizes))


def _run(project: Project, args) -> int:
    sizes = _parse_sizes(args.sizes)
    results_dir = Path(args.results)
    if not results_dir.is_absolute():
        results_dir = project.root / results_dir
    work = project.root / "bench" / "work"
    naive_limit = int(args.naive_limit)
    repeat = int(getattr(args, "repeat", 1))
    if repeat < 1:
        raise UsageError("--repeat must be 1 or more")
    naive_timeout = float(os.environ.get(NAIVE_TIMEOUT_ENV, "2400"))
    doc = {
        "schema": 1,
        "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "machine": _machine(),
        "versions": _versions(),
        "git": _git_commit(project.root),
        "engine": os.environ.get(ENGINE_ENV) or _default_engine(),
        "naive_limit": naive_limit,
        "naive_timeout_s": naive_timeout,
        "repeat": repeat,
        "repeat_limit": REPEAT_LIMIT,
        "sizes": [],
        "real_data": None,
    }
    print(f"emkg bench: sizes {', '.join(map(str, sizes))}; naive pipeline up to {naive_limit} triples; "
          f"{doc['machine']['cpus']} CPUs", flush=True)
    doc["real_data"] = _bench_real(project, work, repeat)
    for size in sizes:
        doc["sizes"].append(_bench_size(project, work, size, naive_limit, naive_timeout, repeat if size <= REPEAT_LIMIT else 1))
        _extrapolate(doc["sizes"])
        _write_results(doc, results_dir)  # after every size: a long run leaves partial results
    doc["targets"] = _targets(doc)
    _write_results(doc, results_dir)
    print()
    print(render_table(doc))
    print(f"\nresults: {project.relative(results_dir / 'results.json')}, {project.relative(results_dir / 'chart.svg')}")
    return 0


def _default_engine() -> str:
    try:
        from . import validate

        return str(getattr(validate, "DEFAULT_ENGINE", "pyshacl"))
    except Exception:  # noqa: BLE001 - informational only
        return "unknown"


# --- one size ------------------------------------------------------------------------------------------

def _bench_size(project: Project, work: Path, size: int, naive_limit: int, naive_timeout: float, repeat: int = 1) -> dict:
    from .synth import generate_tree

    root = work / f"tree-{size}"
    print(f"\n== {size} triples: generating {project.relative(root)}", flush=True)
    started = time.perf_counter()
    manifest = generate_tree(project, root, size, faults=0, seed=1)
    entry: dict = {
        "requested": size,
        "data_triples": manifest["data_triples"],
        "data_files": manifest["data_files"],
        "generate_s": round(time.perf_counter() - started, 3),
    }
    print(f"   generated {manifest['data_triples']} data triples in {manifest['data_files']} files "
          f"({entry['generate_s']:.1f}s)", flush=True)

    fast = _worker(["fast", str(root), str(work / f"out-{size}")])
    entry["emkg"] = fast
    entry["triples"] = fast.get("triples")
    _print_steps("emkg steps", fast, FAST_STEPS)

    entry["cli"] = _bench_cli(root, work, size, repeat)

    if size <= naive_limit:
        naive = _naive(root, naive_timeout)
    else:
        naive = {"steps": {}, "extrapolated": True, "skipped": f"above --naive-limit {naive_limit}"}
    entry["naive"] = naive
    if not naive.get("extrapolated"):
        _print_steps("naive steps", naive, NAIVE_STEPS)
    shutil.rmtree(work / f"out-{size}", ignore_errors=True)
    return entry


def _bench_cli(root: Path, work: Path, size: int, repeat: int = 1) -> dict:
    """``emkg validate`` and a full ``emkg build`` from no cache and an empty output folder, then an
    incremental ``emkg build`` after editing one update file; each ``repeat`` times (the median run
    recorded, see :func:`median_run`)."""
    shutil.rmtree(root / ".cache", ignore_errors=True)
    runs: dict[str, list[dict]] = {"validate": [], "build": []}
    for n in range(repeat):
        out = _cold_start(root, work / f"site-{size}", n)
        runs["validate"].append(_command(["validate"], root))
        runs["build"].append(_command(["build", "--out", str(out)], root))
    cli = {name: median_run(found) for name, found in runs.items()}
    target = _incremental_target(root)
    if target is not None and cli["build"].get("exit") == 0:
        original = target.read_bytes()
        edits: list[dict] = []
        try:
            for n in range(repeat):
                if n:  # back to the state the first edit met: the original file, built
                    target.write_bytes(original)
                    _command(["build", "--out", str(out)], root)
                target.write_bytes(_edit_update(original))
                edits.append(_command(["build", "--out", str(out)], root))
        finally:
            target.write_bytes(original)
        cli["incremental_build"] = median_run(edits)
        cli["incremental_build"]["edited"] = target.relative_to(root).as_posix()
    for name, result in cli.items():
        print(f"   emkg {name:<18} {_seconds_text(result)}  peak {_peak_mb(result):7.0f} MB  {_status(result, (0,))}", flush=True)
    _clear_runs(root, work / f"site-{size}", repeat)
    return cli


def _cold_start(root: Path, out: Path, n: int) -> Path:
    """Before run ``n`` of a command pair: the last run's work cache moved aside (not deleted: a
    deletion's file-system work would be charged to the next timed command) and a new output folder."""
    if n and (root / ".cache").exists():
        aside = root / f".cache-run-{n}"
        shutil.rmtree(aside, ignore_errors=True)  # left by an interrupted run
        (root / ".cache").rename(aside)
    target = _run_folder(out, n)
    shutil.rmtree(target, ignore_errors=True)
    return target


def _run_folder(out: Path, n: int) -> Path:
    """The output folder of run ``n`` (``out`` itself for the first)."""
    return out.with_name(f"{out.name}-run-{n}") if n else out


def _clear_runs(root: Path, out: Path, repeat: int) -> None:
    """Delete what the repeated runs left: their caches and output folders (after the timing)."""
    for n in range(repeat):
        if n:
            shutil.rmtree(root / f".cache-run-{n}", ignore_errors=True)
        shutil.rmtree(_run_folder(out, n), ignore_errors=True)


def median_run(runs: Sequence[dict]) -> dict:
    """One record for a command timed ``len(runs)`` times: the run with the median time (the
    slower middle one of an even count), with every run's seconds in ``runs_s``; a run that
    failed is the record instead, so that a failure is never hidden behind a success."""
    failed = [r for r in runs if r.get("exit") not in (0, 1)]
    pick = dict(failed[0] if failed else sorted(runs, key=lambda r: r["seconds"])[len(runs) // 2])
    if len(runs) > 1:
        pick["runs_s"] = [r["seconds"] for r in runs]
    return pick


def _seconds_text(result: dict) -> str:
    runs = result.get("runs_s")
    spread = f" (median of {len(runs)}: {min(runs):.2f}-{max(runs):.2f})" if runs else ""
    return f"{result['seconds']:8.2f}s{spread}"


def _status(result: dict, ok: tuple[int, ...]) -> str:
    return "ok" if result.get("exit") in ok else f"exit {result.get('exit')}: {result.get('error', '')[:100]}"


def _naive(root: Path, timeout: float) -> dict:
    """The naive pipeline, each step in its own process (after its own rdflib parse), so that a
    step that runs out of time costs only itself; such a step is extrapolated later."""
    out: dict = {"steps": {}, "cpu": {}, "notes": {}, "extrapolated": False, "peak_rss_mb": 0.0, "wall_s": 0.0}
    for step in NAIVE_STEPS:
        record = _worker(["naive", str(root), step], timeout=timeout + 600 if step != "parse" else timeout)
        out["wall_s"] = round(out["wall_s"] + record.get("wall_s", 0.0), 3)
        out["peak_rss_mb"] = max(out["peak_rss_mb"], record.get("peak_rss_mb", 0.0))
        value = record["steps"].get(step)
        if isinstance(value, (int, float)):
            out["steps"][step] = value
            out["cpu"][step] = record["cpu"].get(step)
        else:
            out["notes"][step] = "timed out" if record.get("timed_out") else (record.get("error", "failed").splitlines() or ["failed"])[-1][:300]
            out.setdefault("missing", []).append(step)
            if record.get("timed_out"):  # it ran this long without finishing: its time is at least that
                out.setdefault("at_least", {})[step] = round(record.get("wall_s", 0.0), 1)
        for key in ("triples", "results", "view_rows"):
            if key in record:
                out[key] = record[key]
    return out


def _incremental_target(root: Path) -> Path | None:
    updates = sorted((root / "data" / "updates").glob("*.ttl"))
    return updates[len(updates) // 2] if updates else None


def _edit_update(text: bytes) -> bytes:
    """One realistic edit: a section's text changes (the file keeps parsing and validating)."""
    marker = b'schema:text "'
    at = text.find(marker)
    if at < 0:
        return text + b"\n# edited by emkg bench\n"
    at += len(marker)
    return text[:at] + b"Edited by the benchmark. " + text[at:]


def _command(argv: list[str], root: Path) -> dict:
    cmd = [sys.executable, "-m", "emkg.cli", "--root", str(root), "-v", *argv]
    env = dict(os.environ, SOURCE_DATE_EPOCH=SOURCE_DATE_EPOCH)
    result = _spawn(cmd, env=env)
    out = {"seconds": result["seconds"], "cpu_s": result["cpu_s"], "user_s": result["user_s"],
           "system_s": result["system_s"], "peak_rss_mb": result["peak_rss_mb"], "peak_tree_mb": result["peak_tree_mb"],
           "exit": result["exit"]}
    if argv and argv[0] == "build":
        phases = build_phases(result["stderr_lines"], result["seconds"])
        if phases:
            out["phases"] = phases
        for _stamp, line in result["stderr_lines"]:
            found = re.search(r"site: incremental: (\d+) of (\d+) resource pages", line)
            if found:
                out["pages_rendered"], out["pages_total"] = int(found.group(1)), int(found.group(2))
    if result["exit"] not in (0, 1):
        out["error"] = result["stderr"].strip().splitlines()[-1] if result["stderr"].strip() else ""
    return out


class _TreeMemory:
    """The peak, over the life of a process, of the memory it and every process it started use
    together: their proportional set sizes (PSS, ``/proc/PID/smaps_rollup``) summed, sampled every
    ``interval`` seconds on a thread. A forked worker shares most of its pages with its parent:
    PSS counts a shared page once, where adding up RSS would count it in every process (and the
    peak RSS of one process misses the others). None where ``/proc`` cannot tell (not Linux)."""

    def __init__(self, pid: int, interval: float = 0.2) -> None:
        self.pid, self.interval = pid, interval
        self.peak_kb: int | None = None
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, name="emkg-bench-memory", daemon=True)
        if Path(f"/proc/{pid}/smaps_rollup").is_file():
            self._thread.start()

    def _run(self) -> None:
        while not self._done.is_set():
            total = sum(self._pss(pid) for pid in self._tree())
            if total and (self.peak_kb is None or total > self.peak_kb):
                self.peak_kb = total
            self._done.wait(self.interval)

    def _tree(self) -> list[int]:
        children: dict[int, list[int]] = {}
        for entry in os.scandir("/proc"):
            if entry.name.isdigit():
                try:
                    with open(f"/proc/{entry.name}/stat", encoding="ascii", errors="replace") as f:
                        parent = int(f.read().rsplit(")", 1)[1].split()[1])
                except (OSError, ValueError, IndexError):
                    continue  # gone meanwhile
                children.setdefault(parent, []).append(int(entry.name))
        found, todo = [], [self.pid]
        while todo:
            pid = todo.pop()
            found.append(pid)
            todo.extend(children.get(pid, ()))
        return found

    @staticmethod
    def _pss(pid: int) -> int:
        try:
            with open(f"/proc/{pid}/smaps_rollup", encoding="ascii", errors="replace") as f:
                for line in f:
                    if line.startswith("Pss:"):
                        return int(line.split()[1])
        except (OSError, ValueError, IndexError):
            pass
        return 0

    def stop(self) -> float | None:
        """Stop sampling; the peak in MB (None: not measured)."""
        self._done.set()
        if self._thread.is_alive():
            self._thread.join()
        return None if self.peak_kb is None else round(self.peak_kb / 1024, 1)


def _settle() -> None:
    """Flush written files to disk (``sync``), where the platform can."""
    if hasattr(os, "sync"):
        os.sync()


def _spawn(cmd: list[str], env: dict | None = None, timeout: float | None = None) -> dict:
    """Run a command: wall time, CPU time and its own peak RSS (``os.wait4``), exit code, stdout
    lines, and stderr lines stamped with the second they arrived (for the build's progress phases).

    The file system is synced first: what an earlier step wrote (a 1M build writes 2.7 GB) is
    flushed to disk before this one starts, not while it runs, which would charge its time to it."""
    import selectors

    _settle()
    started = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    memory = _TreeMemory(proc.pid)
    assert proc.stdout is not None and proc.stderr is not None
    streams = {proc.stdout.fileno(): "out", proc.stderr.fileno(): "err"}
    buffers = {"out": b"", "err": b""}
    lines: dict[str, list] = {"out": [], "err": []}
    deadline = None if timeout is None else started + timeout
    timed_out = False
    sel = selectors.DefaultSelector()
    for fd in streams:
        sel.register(fd, selectors.EVENT_READ)
    open_fds = set(streams)
    while open_fds:
        wait = 5.0 if deadline is None else min(5.0, deadline - time.perf_counter())
        if wait <= 0:
            timed_out = True
            proc.kill()
            break
        for key, _mask in sel.select(timeout=wait):
            name = streams[key.fd]
            chunk = os.read(key.fd, 65536)
            now = time.perf_counter() - started
            if not chunk:
                sel.unregister(key.fd)
                open_fds.discard(key.fd)
                continue
            buffers[name] += chunk
            while b"\n" in buffers[name]:
                raw, buffers[name] = buffers[name].split(b"\n", 1)
                text = raw.decode("utf-8", "replace")
                lines[name].append((now, text) if name == "err" else text)
    sel.close()
    tree_mb = memory.stop()  # before the wait: the process (and its /proc entry) is still there
    _pid, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    proc.stdout.close()
    proc.stderr.close()
    for name in ("out", "err"):
        if buffers[name]:
            text = buffers[name].decode("utf-8", "replace")
            lines[name].append((time.perf_counter() - started, text) if name == "err" else text)
    return {
        "seconds": round(time.perf_counter() - started, 3),
        "peak_rss_mb": round(usage.ru_maxrss / 1024, 1),
        "peak_tree_mb": tree_mb,
        "cpu_s": round(usage.ru_utime + usage.ru_stime, 3),
        "user_s": round(usage.ru_utime, 3),
        "system_s": round(usage.ru_stime, 3),
        "exit": proc.returncode,
        "stdout": lines["out"],
        "stderr": "\n".join(text for _t, text in lines["err"]),
        "stderr_lines": lines["err"],
        "timed_out": timed_out,
    }


# ``emkg build`` progress lines (publish.Progress, plain mode) -> the phase that starts there
BUILD_PHASES = (
    ("loading the sources", "parse"),
    ("validating", "validate"),
    ("describing the dataset", "dumps"),
    ("running the stored views", "views"),
    ("rendering the site", "site"),
    ("swapping the new output", "swap"),
)


def build_phases(stderr_lines: Sequence[tuple[float, str]], end: float) -> dict[str, float]:
    """Seconds per phase of ``emkg build`` from the times its progress lines appeared on stderr."""
    marks: list[tuple[float, str]] = []
    for stamp, line in stderr_lines:
        text = line.removeprefix("emkg: ")
        for prefix, phase in BUILD_PHASES:
            if text.startswith(prefix) and phase not in (m[1] for m in marks):
                marks.append((stamp, phase))
    phases = {}
    for i, (stamp, phase) in enumerate(marks):
        following = marks[i + 1][0] if i + 1 < len(marks) else end
        phases[phase] = round(following - stamp, 3)
    if marks:
        phases["startup"] = round(marks[0][0], 3)
    return phases


def _worker(argv: list[str], timeout: float | None = None, step_timeout: float | None = None) -> dict:
    """Run ``python -m emkg.bench worker ...``: one JSON line per step, then a summary line.
    The work cache is off (``EMKG_NO_CACHE``): each step's figure is its whole cost."""
    cmd = [sys.executable, "-m", "emkg.bench", "worker", *argv]
    env = dict(os.environ, SOURCE_DATE_EPOCH=SOURCE_DATE_EPOCH, EMKG_NO_CACHE="1")
    if step_timeout is not None:
        env["EMKG_BENCH_STEP_TIMEOUT"] = str(step_timeout)
    result = _spawn(cmd, env=env, timeout=timeout)
    steps: dict = {}
    info: dict = {}
    for line in result["stdout"]:
        if not line.startswith("{"):
            continue
        record = json.loads(line)
        if "step" in record:
            steps[record["step"]] = record
        else:
            info.update(record)
    out = {"steps": {name: rec.get("seconds") for name, rec in steps.items()},
           "cpu": {name: rec.get("cpu_s") for name, rec in steps.items()},
           "notes": {name: rec["note"] for name, rec in steps.items() if rec.get("note")},
           "wall_s": result["seconds"], "peak_rss_mb": result["peak_rss_mb"], "exit": result["exit"], **info}
    if result["timed_out"]:
        out["timed_out"] = True
    if result["exit"] != 0:
        out["error"] = result["stderr"].strip()[-2000:]
    return out


def _print_steps(title: str, record: dict, names: Sequence[str]) -> None:
    cells = []
    for name in names:
        value = record["steps"].get(name)
        cells.append(f"{name} {value:.2f}s" if isinstance(value, (int, float)) else f"{name} {record.get('notes', {}).get(name, 'n/a')}")
    print(f"   {title}: " + ", ".join(cells) + f"; peak {record.get('peak_rss_mb', 0):.0f} MB", flush=True)
    if record.get("error"):
        print(f"   ({title} failed: {record['error'].splitlines()[-1][:200]})", flush=True)


# --- the real data ----------------------------------------------------------------------------------------

def _bench_real(project: Project, work: Path, repeat: int = 1) -> dict | None:
    """``emkg validate`` and ``emkg build`` on a copy of the real project (``make build``), from no
    cache and an empty output folder, ``repeat`` times (the median run recorded)."""
    if not (project.data_dir.is_dir() and any(project.data_dir.rglob("*.ttl"))):
        return None
    copy = work / "real"
    shutil.rmtree(copy, ignore_errors=True)
    for name in ("ontology", "data", "shapes", "queries"):
        if (project.root / name).is_dir():
            shutil.copytree(project.root / name, copy / name, ignore=shutil.ignore_patterns(".*"))
    shutil.copyfile(project.root / "pyproject.toml", copy / "pyproject.toml")
    print("\n== the real data (a copy of the project)", flush=True)
    runs: dict[str, list[dict]] = {"validate": [], "build": []}
    for n in range(repeat):
        site = _cold_start(copy, work / "real-out", n)
        runs["validate"].append(_command(["validate"], copy))
        runs["build"].append(_command(["build", "--out", str(site)], copy))
    out = {name: median_run(found) for name, found in runs.items()}
    for name, result in out.items():
        print(f"   emkg {name:<18} {_seconds_text(result)}  peak {_peak_mb(result):7.0f} MB  {_status(result, (0, 1))}", flush=True)
    _clear_runs(copy, work / "real-out", repeat)
    return out


# --- extrapolation ---------------------------------------------------------------------------------------

def _extrapolate(entries: list[dict]) -> None:
    """Fill in the naive steps that were not measured (above --naive-limit, or out of time) from
    the growth measured at the other sizes; each is listed in ``extrapolated_steps`` with its basis."""
    for name in NAIVE_STEPS:
        measured = sorted((e["triples"], e["naive"]["steps"][name]) for e in entries
                          if e.get("triples") and isinstance(e["naive"]["steps"].get(name), (int, float))
                          and name not in e["naive"].get("extrapolated_steps", []))
        # a step stopped for time at one size is at least that long there: a lower bound to grow from
        bounds = sorted((e["triples"], e["naive"]["at_least"][name]) for e in entries
                        if e.get("triples") and isinstance(e["naive"].get("at_least", {}).get(name), (int, float)))
        for e in entries:
            naive = naive_record = e["naive"]
            if not e.get("triples") or (isinstance(naive["steps"].get(name), (int, float))
                                        and name not in naive.get("extrapolated_steps", [])):
                continue
            if not measured:
                continue
            below = [m for m in measured if m[0] < e["triples"]] or measured
            if len(below) >= 2:
                (n1, t1), (n2, t2) = below[-2], below[-1]
                exponent = math.log(t2 / t1) / math.log(n2 / n1) if t1 > 0 and t2 > 0 and n2 != n1 else 1.0
                exponent = max(1.0, exponent)  # never assume better than linear growth
                basis = f"power law through the measurements at {n1} and {n2} triples (exponent {exponent:.2f})"
                n0, t0 = n2, t2
            else:
                (n0, t0), exponent = below[-1], 1.0
                basis = f"linear from the measurement at {n0} triples (the only one)"
            value = t0 * (e["triples"] / n0) ** exponent
            floor = naive_record.get("at_least", {}).get(name)
            if isinstance(floor, (int, float)) and floor > value:
                value = floor
                basis = f"ran {floor:.0f} s without finishing (stopped); at least that (the growth gave less)"
            smaller = [b for b in bounds if b[0] < e["triples"]]
            if smaller and floor is None:
                bn, bt = smaller[-1]
                if bt * (e["triples"] / bn) > value:  # never better than linear from a lower bound
                    value = bt * (e["triples"] / bn)
                    basis = f"at least linear growth from the lower bound at {bn} triples ({bt:.0f} s, stopped)"
            naive_record["steps"][name] = round(value, 3)
            naive_record.setdefault("basis", {})[name] = basis
            steps = naive_record.setdefault("extrapolated_steps", [])
            if name not in steps:
                steps.append(name)
            naive_record["extrapolated"] = True


# --- the worker --------------------------------------------------------------------------------------------

def _emit(record: dict) -> None:
    sys.stdout.write(json.dumps(record) + "\n")
    sys.stdout.flush()


def _cpu() -> float:
    import resource

    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def _timed(name: str, fn):
    """Run one step; emit its wall time and CPU time (this process, its threads and its children)."""
    started, cpu = time.perf_counter(), _cpu()
    try:
        value = fn()
    except _Unavailable as exc:
        _emit({"step": name, "seconds": None, "note": f"unavailable: {exc}"})
        return None
    _emit({"step": name, "seconds": round(time.perf_counter() - started, 4), "cpu_s": round(_cpu() - cpu, 4)})
    return value


class _Unavailable(Exception):
    """A public API another module has not landed yet."""


def _import(module: str, name: str):
    import importlib

    try:
        mod = importlib.import_module(f"emkg.{module}")
    except ModuleNotFoundError as exc:
        if exc.name == f"emkg.{module}":
            raise _Unavailable(f"emkg.{module} is not there yet") from None
        raise
    if not hasattr(mod, name):
        raise _Unavailable(f"emkg.{module}.{name} is not there yet")
    return getattr(mod, name)


def worker_fast(root: Path, out: Path) -> None:
    """The emkg steps, through the public APIs, the way ``emkg build`` (``publish.publish``) runs them."""
    from .load import load_graph, load_shapes
    from .project import open_project

    project = open_project(root)
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)

    def parse():
        return load_graph(project), load_shapes(project)

    graph, shapes = _timed("parse", parse)
    _emit({"triples": len(graph), "files": len(graph.files)})

    def validate():
        validate_loaded = _import("validate", "validate_loaded")
        engine = os.environ.get(ENGINE_ENV)
        report = validate_loaded(project, graph, shapes, engine=engine) if engine else validate_loaded(project, graph, shapes)
        _emit({"results": len(report.results), "conforms": report.conforms()})
        return report

    report = _timed("validate", validate)
    state: dict = {}

    def dumps():
        describe = _import("dumps", "describe")
        write_dumps = _import("dumps", "write_dumps")
        source_date = _import("dumps", "source_date")
        state["date"] = source_date(project)
        state["description"] = describe(project, graph.store, graph.prefixes, date=state["date"], endpoint=None)
        state["dumps"] = write_dumps(project, graph, out, description=state["description"])

    _timed("dumps", dumps)

    def views():
        run_views = _import("publish", "run_views")
        state["views"] = run_views(project, graph.store, out / "views")
        _emit({"view_rows": {v.name: (len(r.rows) if r is not None else None) for v, r, _e in state["views"]}})

    _timed("views", views)

    def site():
        import pyoxigraph as ox

        render_site = _import("site", "render_site")
        if "description" not in state or "views" not in state:
            raise _Unavailable("needs the dumps and views steps")
        store = ox.Store()
        store.bulk_extend(graph.store.quads_for_pattern(None, None, None, ox.DefaultGraph()))
        store.bulk_extend(ox.Quad(t.subject, t.predicate, t.object, ox.DefaultGraph()) for t in state["description"].triples)
        stats = render_site(project, graph, report, state["views"], out, shapes=shapes, dumps=state["dumps"],
                            description=state["description"], date=state["date"], store=store)
        _emit({"pages": getattr(stats, "pages", None)})

    _timed("site", site)


def worker_naive(root: Path, only: str | None = None) -> None:
    """The plain rdflib/pySHACL pipeline on the same files (``only``: parse, then just that step)."""
    import rdflib

    from .project import open_project

    project = open_project(root)

    def parse():
        data = rdflib.Graph()
        for path in project.graph_files():
            data.parse(path, format="turtle")
        shapes = rdflib.Graph()
        for path in project.shape_files():
            shapes.parse(path, format="turtle")
        return data, shapes

    if only in (None, "parse"):
        data, shapes = _timed("parse", parse)
    else:
        data, shapes = parse()
    _emit({"triples": len(data)})

    def validate():
        import pyshacl

        _conforms, results, _text = pyshacl.validate(
            data, shacl_graph=shapes, inference="none", advanced=True, allow_warnings=True,
            allow_infos=True, abort_on_first=False, meta_shacl=False, js=False,
        )
        _emit({"results": len(set(results.objects(None, rdflib.URIRef("http://www.w3.org/ns/shacl#result"))))})

    def views():
        list_views = _import("views", "list_views")
        done = {}
        for view in list_views(project):
            if any(p.required for p in view.params):
                continue
            done[view.name] = len(list(data.query(view.text)))
        _emit({"view_rows": done})

    def serialize():
        return len(data.serialize(format="turtle"))

    for name, fn in (("validate", validate), ("views", views), ("serialize", serialize)):
        if only in (None, name):
            _timed(name, fn)


def _worker_main(argv: Sequence[str]) -> int:
    logging.basicConfig(level=logging.WARNING)
    kind = argv[0]
    if kind == "fast":
        with bulk():  # as the emkg command runs (cli.py); the naive pipeline keeps the collector
            worker_fast(Path(argv[1]), Path(argv[2]))
    elif kind == "naive":
        worker_naive(Path(argv[1]), argv[2] if len(argv) > 2 else None)
    else:
        raise SystemExit(f"unknown worker {kind!r}")
    return 0


# --- results ---------------------------------------------------------------------------------------------------

def _machine() -> dict:
    mem = None
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    mem = round(int(line.split()[1]) / 1024 / 1024, 1)
    except OSError:
        pass
    return {"cpus": os.cpu_count(), "memory_gb": mem, "python": platform.python_version(),
            "platform": platform.platform(), "processor": platform.machine()}


def _versions() -> dict:
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for name in ("emkg", "pyoxigraph", "rdflib", "pyshacl", "pyshacl-turbo", "jinja2"):
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = None
    return out


def _git_commit(root: Path) -> str | None:
    try:
        done = subprocess.run(["git", "-C", str(root), "rev-parse", "--short", "HEAD"], capture_output=True,
                              text=True, timeout=10, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() or None


def _total(steps: dict, names: Sequence[str]) -> float | None:
    values = [steps.get(n) for n in names]
    if any(not isinstance(v, (int, float)) for v in values):
        return None
    return round(sum(values), 3)


def _peak_mb(result: dict) -> float:
    """A command's peak memory: all its processes together where measured, else its largest one."""
    return max(result.get("peak_tree_mb") or 0.0, result.get("peak_rss_mb") or 0.0)


def _targets(doc: dict) -> dict:
    out: dict = {}
    by_size = {e["requested"]: e for e in doc["sizes"]}
    big = by_size.get(1_000_000)
    if big:
        v, b = big["cli"].get("validate", {}), big["cli"].get("build", {})
        if v.get("exit") in (0, 1) and b.get("exit") in (0, 1):
            seconds = v["seconds"] + b["seconds"]
            peak = max(_peak_mb(v), _peak_mb(b))
            out["1M validate+build under 60 s"] = {"seconds": round(seconds, 2), "met": seconds < 60}
            out["1M peak memory under 4 GB"] = {"peak_mb": peak, "met": peak < 4096,
                                                "basis": "all the command's processes (PSS summed)"
                                                if v.get("peak_tree_mb") and b.get("peak_tree_mb") else "the largest process (RSS)"}
    mid = by_size.get(100_000)
    if mid:
        fast = _total(mid["emkg"]["steps"], ("parse", "validate", "views", "dumps"))
        naive = _total(mid["naive"]["steps"], NAIVE_STEPS)
        if fast and naive:
            ratio = naive / fast
            out["100k at least 20x faster than naive"] = {
                "ratio": round(ratio, 1), "met": ratio >= 20, "naive_extrapolated": bool(mid["naive"].get("extrapolated"))}
        inc = mid["cli"].get("incremental_build")
        if inc and inc.get("exit") in (0, 1):
            out["100k incremental build under 3 s"] = {"seconds": inc["seconds"], "met": inc["seconds"] < 3, **_runs(inc)}
    real = doc.get("real_data")
    if real and real.get("build", {}).get("exit") in (0, 1):
        out["real data build under 5 s"] = {"seconds": real["build"]["seconds"], "met": real["build"]["seconds"] < 5,
                                            **_runs(real["build"])}
    return out


def _runs(record: dict) -> dict:
    """A target's every run (when the command was timed more than once)."""
    return {"runs_s": record["runs_s"]} if record.get("runs_s") else {}


def _write_results(doc: dict, folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in (("results.json", json.dumps(doc, indent=2, sort_keys=False) + "\n"), ("chart.svg", render_chart(doc))):
        tmp = folder / f".{name}.tmp"
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(folder / name)


def _fmt_s(value, extrapolated: bool = False) -> str:
    if not isinstance(value, (int, float)):
        return "n/a"
    text = f"{value:.2f}" if value < 100 else f"{value:.0f}"
    return text + ("*" if extrapolated else "")


def render_table(doc: dict) -> str:
    """Seconds per step, emkg against naive, and the ratios; ``*`` marks extrapolated naive figures."""
    lines = []
    head = f"{'triples':>9}  {'step':<10} {'emkg s':>9} {'naive s':>10} {'ratio':>8}"
    lines.append(head)
    lines.append("-" * len(head))
    for e in doc["sizes"]:
        fast, naive = e["emkg"]["steps"], e["naive"]["steps"]
        ext = bool(e["naive"].get("extrapolated"))
        guessed = set(e["naive"].get("extrapolated_steps", []))
        for step in FAST_STEPS:
            f = fast.get(step)
            n = naive.get(COMPARABLE.get(step, "")) if step in COMPARABLE else None
            ratio = f"{n / f:.0f}x" if isinstance(f, (int, float)) and isinstance(n, (int, float)) and f > 0 else ""
            label = step if step != "dumps" else "dumps/ser"
            shown = _fmt_s(n, COMPARABLE.get(step) in guessed) if step in COMPARABLE else ""
            lines.append(f"{e.get('triples') or e['requested']:>9}  {label:<10} {_fmt_s(f):>9} {shown:>10} {ratio:>8}")
        ft = _total(fast, ("parse", "validate", "views", "dumps"))
        nt = _total(naive, NAIVE_STEPS)
        ratio = f"{nt / ft:.0f}x" if ft and nt else ""
        lines.append(f"{'':>9}  {'total':<10} {_fmt_s(ft):>9} {_fmt_s(nt, ext):>10} {ratio:>8}")
        cli = e.get("cli", {})
        for name in ("validate", "build", "incremental_build"):
            if name in cli:
                c = cli[name]
                lines.append(f"{'':>9}  emkg {name:<18} {_seconds_text(c)}, peak {_peak_mb(c):.0f} MB"
                             + ("" if c.get("exit") in (0, 1) else f" (exit {c.get('exit')})"))
        lines.append("")
    if any(e["naive"].get("extrapolated") for e in doc["sizes"]):
        lines.append("* not measured: extrapolated, or at least the time it ran before it was stopped (see 'basis' in results.json)")
    for name, target in (doc.get("targets") or {}).items():
        lines.append(f"target: {name}: {'met' if target.get('met') else 'NOT met'} "
                     + ", ".join(f"{k} {v}" for k, v in target.items() if k != "met"))
    real = doc.get("real_data")
    if real:
        lines.append("real data: " + ", ".join(f"emkg {k} {_seconds_text(v).strip()}" for k, v in real.items()))
    return "\n".join(lines)


# --- the chart ------------------------------------------------------------------------------------------

def _esc(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")


def render_chart(doc: dict) -> str:
    """A small SVG: per size, seconds on a log scale for the emkg steps (stacked) and the naive ones."""
    entries = [e for e in doc["sizes"] if e.get("emkg")]
    width, height = 760, 420
    left, right, top, bottom = 70, 200, 50, 70
    plot_w, plot_h = width - left - right, height - top - bottom
    colours = {"parse": "#4e79a7", "validate": "#e15759", "views": "#59a14f", "dumps": "#f28e2b",
               "serialize": "#f28e2b", "site": "#b07aa1"}
    totals = []
    for e in entries:
        totals.append(sum(v for v in e["emkg"]["steps"].values() if isinstance(v, (int, float))))
        totals.append(sum(v for v in e["naive"]["steps"].values() if isinstance(v, (int, float))))
    hi = max([t for t in totals if t > 0] or [1.0])
    lo = 0.01
    top_decade = 10 ** math.ceil(math.log10(max(hi, 1.0)))

    def y(seconds: float) -> float:
        seconds = max(seconds, lo)
        return top + plot_h - plot_h * (math.log10(seconds) - math.log10(lo)) / (math.log10(top_decade) - math.log10(lo))

    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
           f'font-family="sans-serif" font-size="12">',
           '<defs><pattern id="hatch" width="6" height="6" patternUnits="userSpaceOnUse" patternTransform="rotate(45)">'
           '<rect width="6" height="6" fill="white"/><line x1="0" y1="0" x2="0" y2="6" stroke="#888" stroke-width="3"/></pattern></defs>',
           f'<rect width="{width}" height="{height}" fill="white"/>',
           f'<text x="{left}" y="24" font-size="15" font-weight="bold">emkg against the naive pipeline: seconds per step (log scale)</text>',
           f'<text x="{left}" y="40" fill="#555">{_esc(doc.get("machine", {}).get("platform", ""))[:80]}, '
           f'{doc.get("machine", {}).get("cpus")} CPUs; hatched = extrapolated</text>']
    decade = lo
    while decade <= top_decade * 1.0001:
        yy = y(decade)
        out.append(f'<line x1="{left}" y1="{yy:.1f}" x2="{left + plot_w}" y2="{yy:.1f}" stroke="#ddd"/>')
        label = f"{decade:g} s"
        out.append(f'<text x="{left - 6}" y="{yy + 4:.1f}" text-anchor="end" fill="#555">{label}</text>')
        decade *= 10
    group_w = plot_w / max(1, len(entries))
    bar_w = min(50.0, group_w / 3)
    for i, e in enumerate(entries):
        gx = left + i * group_w + group_w / 2
        for j, (name, record, steps) in enumerate((("emkg", e["emkg"], FAST_STEPS), ("naive", e["naive"], NAIVE_STEPS))):
            x = gx + (j - 1) * bar_w * 1.15 + bar_w * 0.075
            ext = name == "naive" and bool(record.get("extrapolated"))
            running = 0.0
            for step in steps:
                value = record["steps"].get(step)
                if not isinstance(value, (int, float)) or value <= 0:
                    continue
                y0, y1 = y(running) if running > 0 else top + plot_h, y(running + value)
                running += value
                fill = "url(#hatch)" if ext else colours[step]
                stroke = colours[step]
                out.append(f'<rect x="{x:.1f}" y="{y1:.1f}" width="{bar_w:.1f}" height="{max(0.5, y0 - y1):.1f}" '
                           f'fill="{fill}" stroke="{stroke}"><title>{name} {step}: {value:.2f} s'
                           f'{" (extrapolated)" if ext else ""}</title></rect>')
            if running > 0:
                out.append(f'<text x="{x + bar_w / 2:.1f}" y="{y(running) - 4:.1f}" text-anchor="middle" font-size="10">'
                           f'{running:.1f}{"*" if ext else ""}</text>')
            out.append(f'<text x="{x + bar_w / 2:.1f}" y="{top + plot_h + 14:.1f}" text-anchor="middle" font-size="10">{name}</text>')
        triples = e.get("triples") or e["requested"]
        out.append(f'<text x="{gx:.1f}" y="{top + plot_h + 32:.1f}" text-anchor="middle" font-weight="bold">{_human(triples)} triples</text>')
        ft = _total(e["emkg"]["steps"], ("parse", "validate", "views", "dumps"))
        nt = _total(e["naive"]["steps"], NAIVE_STEPS)
        if ft and nt:
            out.append(f'<text x="{gx:.1f}" y="{top + plot_h + 48:.1f}" text-anchor="middle" fill="#555">'
                       f'{nt / ft:.0f}x faster{" (extrapolated)" if e["naive"].get("extrapolated") else ""}</text>')
    lx = left + plot_w + 20
    for k, step in enumerate(("parse", "validate", "views", "dumps", "site")):
        label = {"dumps": "dumps / serialize"}.get(step, step)
        out.append(f'<rect x="{lx}" y="{top + k * 20}" width="12" height="12" fill="{colours[step]}"/>'
                   f'<text x="{lx + 18}" y="{top + k * 20 + 10}">{label}</text>')
    out.append(f'<rect x="{lx}" y="{top + 5 * 20}" width="12" height="12" fill="url(#hatch)" stroke="#888"/>'
               f'<text x="{lx + 18}" y="{top + 5 * 20 + 10}">extrapolated</text>')
    out.append("</svg>")
    return "\n".join(out) + "\n"


def _human(n: int) -> str:
    if n >= 1_000_000:
        return f"{n / 1_000_000:.1f}M"
    if n >= 1000:
        return f"{n / 1000:.0f}k"
    return str(n)


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "worker":
        sys.exit(_worker_main(sys.argv[2:]))
    raise SystemExit("usage: python -m emkg.bench worker fast|naive ROOT [OUT]")
