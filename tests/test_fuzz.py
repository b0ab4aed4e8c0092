"""Fuzzing the Turtle loader and ``emkg validate`` with mutated copies of the real data files.

Mutations: bytes flipped, lines dropped, swapped or duplicated, the file cut short, Turtle's
punctuation inserted. Every case must end in a clean answer (triples or one problem with a line
inside the file; an exit code of 0 or 1 with no traceback), within a time limit (no hang).
Case counts: EMKG_FUZZ_CASES (loader, default 400) and EMKG_FUZZ_VALIDATE_CASES (whole
``emkg validate`` runs, default 12); seeded, so a failure reproduces.
"""

from __future__ import annotations

import os
import random
import shutil
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from emkg.cli import main
from emkg.load import parse_file

ROOT = Path(__file__).resolve().parents[1]
DATA_FILES = sorted((ROOT / "data").rglob("*.ttl"))
LOADER_CASES = int(os.environ.get("EMKG_FUZZ_CASES", "400"))
VALIDATE_CASES = int(os.environ.get("EMKG_FUZZ_VALIDATE_CASES", "12"))
PUNCTUATION = [b'"', b"'", b"<", b">", b".", b";", b",", b"\\", b"@", b"#", b"[", b"]", b"(", b")", b"^^", b'"""', b":", b"\xff"]

pytestmark = pytest.mark.skipif(not DATA_FILES, reason="no data files to mutate")


@contextmanager
def time_limit(seconds: int) -> Iterator[None]:
    def expired(signum, frame):  # noqa: ARG001
        raise TimeoutError(f"no answer within {seconds}s: a hang")

    previous = signal.signal(signal.SIGALRM, expired)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def mutate(data: bytes, rng: random.Random) -> tuple[bytes, str]:
    """One random mutation of a Turtle file, and what it was (for the failure message)."""
    lines = data.split(b"\n")
    kind = rng.choice(["flip", "drop", "swap", "duplicate", "truncate", "insert"])
    if kind == "flip" and data:
        buf = bytearray(data)
        for _ in range(rng.randint(1, 4)):
            buf[rng.randrange(len(buf))] = rng.randrange(256)
        return bytes(buf), kind
    if kind == "drop" and len(lines) > 1:
        del lines[rng.randrange(len(lines))]
    elif kind == "swap" and len(lines) > 1:
        i, j = rng.randrange(len(lines)), rng.randrange(len(lines))
        lines[i], lines[j] = lines[j], lines[i]
    elif kind == "duplicate" and lines:
        i = rng.randrange(len(lines))
        lines.insert(rng.randrange(len(lines)), lines[i])
    elif kind == "truncate":
        return data[: rng.randrange(max(1, len(data)))], kind
    else:
        at = rng.randrange(max(1, len(data)))
        return data[:at] + rng.choice(PUNCTUATION) + data[at:], "insert"
    return b"\n".join(lines), kind


def test_loader_answers_every_mutation(tmp_path: Path) -> None:
    rng = random.Random(20261122)
    answered = {"parsed": 0, "refused": 0}
    for case in range(LOADER_CASES):
        source = rng.choice(DATA_FILES)
        mutated, kind = mutate(source.read_bytes(), rng)
        target = tmp_path / f"case-{case}.ttl"
        target.write_bytes(mutated)
        with time_limit(20):
            parsed = parse_file(target, target.name)
        where = f"case {case}: {kind} of {source.name}"
        if parsed.problem is None:
            answered["parsed"] += 1
            continue
        answered["refused"] += 1
        problem = parsed.problem
        assert problem.message.strip(), where
        assert 1 <= problem.location.line <= mutated.count(b"\n") + 1, where
        assert str(problem).startswith(f"{target.name}:{problem.location.line}:"), where
    assert answered["refused"] > 0, "no mutation was refused: the mutator does nothing"


def _copy_project(dest: Path) -> None:
    for name in ("ontology", "data", "shapes", "queries"):
        if (ROOT / name).is_dir():
            shutil.copytree(ROOT / name, dest / name)
    shutil.copy(ROOT / "pyproject.toml", dest / "pyproject.toml")


def test_validate_answers_mutated_projects(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rng = random.Random(4)
    project = tmp_path / "project"
    _copy_project(project)
    codes = []
    for case in range(VALIDATE_CASES):
        source = rng.choice(DATA_FILES)
        target = project / source.relative_to(ROOT)
        original = target.read_bytes()
        mutated, kind = mutate(original, rng)
        target.write_bytes(mutated)
        try:
            with time_limit(120):
                code = main(["--root", str(project), "validate"])
        finally:
            target.write_bytes(original)
        out, err = capsys.readouterr()
        where = f"case {case}: {kind} of {source.name}"
        assert code in (0, 1), f"{where}: exit {code}: {err.strip()[-500:]}"
        assert "Traceback" not in err and "internal error" not in err, f"{where}: {err[-500:]}"
        if code == 1:
            assert any(":" in line and (": error:" in line or ": violation:" in line) for line in out.splitlines()), where
        codes.append(code)
    assert 1 in codes, "no mutation made validate fail: the fuzzer is not reaching the validator"
