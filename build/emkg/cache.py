"""The project's work cache (``.cache/`` at the project root, git-ignored, safe to delete).

Entries are pickles written atomically (a temporary file, then a rename) and read back only when
the key stored inside matches the key the caller expects. Anything wrong with an entry (missing,
unreadable, written by another version, from a folder that cannot be written) is a miss, never an
error: the cache only ever saves work, it never changes an answer.
"""

from __future__ import annotations

import hashlib
import logging
import os
import pickle
from functools import lru_cache
from pathlib import Path
from typing import Any

from .project import Project

log = logging.getLogger(__name__)

FORMAT = 1
HERE = Path(__file__).resolve().parent
DISABLE_ENV = "EMKG_NO_CACHE"  # set (to anything but "" or "0") to neither read nor write the cache


def enabled() -> bool:
    return os.environ.get(DISABLE_ENV, "").strip() in ("", "0")


def cache_root(project: Project) -> Path:
    return project.root / ".cache"


@lru_cache(maxsize=None)
def code_fingerprint(*modules: str) -> str:
    """A hash of emkg's version and the source of the named modules (``"load"`` for ``load.py``):
    an entry made by other code is never reused."""
    from . import __version__

    digest = hashlib.sha256(f"{FORMAT}\0{__version__}\0".encode("utf-8"))
    for name in modules:
        digest.update(name.encode("utf-8") + b"\0" + (HERE / f"{name}.py").read_bytes() + b"\0")
    return digest.hexdigest()


def hash_files(digest, paths) -> bool:
    """Add each file's name and bytes to ``digest`` (a hashlib object), in name order; False if a
    file cannot be read (the key cannot be told)."""
    for path in sorted(paths):
        try:
            digest.update(path.name.encode("utf-8") + b"\0" + path.read_bytes() + b"\0")
        except OSError:
            return False
    return True


def read_entry(path: Path, key: str) -> Any | None:
    """The value stored at ``path`` under ``key``; None on any miss."""
    if not enabled():
        return None
    try:
        with path.open("rb") as handle:
            stored_key, value = pickle.load(handle)
    except FileNotFoundError:
        return None
    except Exception as exc:  # a damaged or foreign entry is a miss
        log.debug("cache entry %s unreadable (%s): ignored", path, exc)
        return None
    return value if stored_key == key else None


def write_entry(path: Path, key: str, value: Any) -> bool:
    """Store ``value`` under ``key`` at ``path`` atomically; False (logged) if it cannot be written."""
    if not enabled():
        return False
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with tmp.open("wb") as handle:
            pickle.dump((key, value), handle, protocol=pickle.HIGHEST_PROTOCOL)
        tmp.replace(path)
        return True
    except OSError as exc:
        log.debug("cache entry %s not written: %s", path, exc)
        try:
            tmp.unlink()
        except OSError:
            pass
        return False


def entry_name(*parts: str) -> str:
    """A file name for an entry named by ``parts`` (e.g. a source file's project-relative path)."""
    return hashlib.sha256("\0".join(parts).encode("utf-8")).hexdigest()[:24] + ".pickle"
