"""Working without the cyclic garbage collector's repeated passes over long-lived objects.

CPython runs a full collection each time the objects it tracks have grown by a quarter, and a full
collection visits every tracked object. A command that builds structures of millions of objects
(the graph's pages' model, view rows, the dumps' per-subject pieces) visits them again and again,
and finds next to nothing to free: they live until the command ends. Measured at 1M triples: the
pages' model took 5.8 s to build with the collector on and 3.4 s with it off; a whole `emkg build`
took 12% less time with the collector paused (98 and 108 s against 112 and 123 s, alternating), its
peak memory about 0.05 to 0.1 GB more (3.63 GB against 3.58 GB with warm caches, 3.72 to 3.74 GB
against 3.60 to 3.63 GB from cold: little cyclic garbage). So the one-shot commands
run with the collector paused (``cli.main``), and code that builds such a structure pauses it
itself (``bulk``: the pages' model, the Turtle formatter), for callers that keep it on.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def bulk() -> Iterator[None]:
    """Pause the collector for the block (nestable); its state before the block is restored after
    it, however the block ends."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
