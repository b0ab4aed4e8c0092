"""Hard-link the unchanged pages of an incremental build from the previous output (``site.py``).

Standalone (no emkg import), so that ``site.render_site`` can run it as a script in a child
process (``python -I -S linktree.py SRC DST``, the folders NUL-separated on stdin, the folders
whose files are missing NUL-separated on stdout) while the main process renders: tens of
thousands of ``link`` calls at national scale. Never writes through a link: a name already at
the target is unlinked first, and a file that cannot be linked is copied into a new file.
"""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Iterable, Sequence

RESOURCE_FILES = ("index.html", "index.ttl", "index.jsonld")


def link_or_copy(src: str, dst: str) -> None:
    """Hard-link ``src`` at ``dst``, or copy it into a new file where it cannot be linked (another
    file system, too many links). FileNotFoundError if ``src`` is not there. A name already at
    ``dst`` is replaced, never written through."""
    try:
        os.link(src, dst)
        return
    except FileExistsError:
        os.unlink(dst)
    except FileNotFoundError:
        raise
    except OSError:
        pass
    try:
        os.link(src, dst)
    except FileNotFoundError:
        raise
    except OSError:
        if os.path.lexists(dst):
            os.unlink(dst)
        shutil.copyfile(src, dst)


def link_folders(src_root: str, dst_root: str, folders: Iterable[str],
                 names: Sequence[str] = RESOURCE_FILES) -> list[str]:
    """Link ``names`` of each folder (relative, already checked safe) from ``src_root`` into
    ``dst_root``, making each folder once; the folders where one of the files is missing (none
    of their files is left linked)."""
    made: set[str] = set()
    link = os.link
    missing: list[str] = []

    def make(folder: str) -> None:
        parent = folder.rpartition("/")[0]
        if parent and parent not in made:
            make(parent)
        try:
            os.mkdir(f"{dst_root}/{folder}")
        except FileExistsError:
            pass
        made.add(folder)

    for folder in folders:
        if folder not in made:
            make(folder)
        src, dst = f"{src_root}/{folder}/", f"{dst_root}/{folder}/"
        linked: list[str] = []
        try:
            for name in names:
                try:
                    link(src + name, dst + name)
                except FileNotFoundError:
                    raise
                except OSError:
                    link_or_copy(src + name, dst + name)
                linked.append(dst + name)
        except FileNotFoundError:
            for path in linked:
                os.unlink(path)
            missing.append(folder)
    return missing


def main(argv: Sequence[str]) -> int:
    src_root, dst_root = argv
    folders = [f for f in os.fsdecode(sys.stdin.buffer.read()).split("\0") if f]
    missing = link_folders(src_root, dst_root, folders)
    sys.stdout.buffer.write(os.fsencode("\0".join(missing)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
