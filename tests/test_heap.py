"""``heap.bulk``: the cyclic garbage collector is paused inside the block and left as it was after."""

from __future__ import annotations

import gc

import pytest

from emkg.heap import bulk


@pytest.fixture(autouse=True)
def collector_restored():
    was = gc.isenabled()
    yield
    (gc.enable if was else gc.disable)()


def test_paused_inside_and_enabled_again_after() -> None:
    gc.enable()
    with bulk():
        assert not gc.isenabled(), "the collector should be paused inside the block"
    assert gc.isenabled(), "the collector should run again after the block"


def test_nested_blocks_restore_the_outer_state() -> None:
    gc.enable()
    with bulk():
        with bulk():
            assert not gc.isenabled()
        assert not gc.isenabled(), "the inner block must not re-enable the collector the outer one paused"
    assert gc.isenabled()


def test_an_error_in_the_block_still_restores_the_collector() -> None:
    gc.enable()
    with pytest.raises(KeyError), bulk():
        raise KeyError("boom")
    assert gc.isenabled(), "an exception in the block left the collector paused"


def test_a_collector_paused_before_stays_paused() -> None:
    gc.disable()
    with bulk():
        pass
    assert not gc.isenabled(), "bulk() enabled a collector its caller had paused"
