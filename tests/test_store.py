"""Framing of cached values and the in-memory LRU store."""

from __future__ import annotations

import pytest

from generator.store import MemoryStore, pack, unpack

PAYLOAD = bytes(range(256)) * 4


def test_pack_unpack_round_trip():
    assert unpack(pack(PAYLOAD)) == PAYLOAD


def test_empty_payload_round_trips():
    assert unpack(pack(b"")) == b""


def test_unpack_of_missing_value_is_none():
    assert unpack(None) is None


@pytest.mark.parametrize("pos", [0, 3, 4, 19, 20, 100, -1])
def test_flipped_byte_is_detected(pos):
    framed = bytearray(pack(PAYLOAD))
    framed[pos] ^= 0x01
    assert unpack(bytes(framed)) is None


@pytest.mark.parametrize("keep", [0, 10, 19, 20, 500])
def test_truncated_value_is_detected(keep):
    assert unpack(pack(PAYLOAD)[:keep]) is None


def test_appended_garbage_is_detected():
    assert unpack(pack(PAYLOAD) + b"x") is None


def test_unframed_value_is_detected():
    assert unpack(b"garbage that is long enough to have a header") is None


# ---- MemoryStore --------------------------------------------------------------------------
def test_memory_store_get_set_delete():
    s = MemoryStore()
    assert s.get("a") is None
    s.set("a", b"1")
    assert s.get("a") == b"1"
    s.delete("a")
    assert s.get("a") is None


def test_memory_store_delete_of_missing_key_is_silent():
    MemoryStore().delete("nothing")


def test_memory_store_evicts_least_recently_set_past_size_limit():
    s = MemoryStore(max_bytes=30)
    for k in "abc":
        s.set(k, b"x" * 10)
    s.set("d", b"x" * 10)
    assert s.get("a") is None
    assert all(s.get(k) is not None for k in "bcd")


def test_memory_store_get_refreshes_recency():
    s = MemoryStore(max_bytes=30)
    for k in "abc":
        s.set(k, b"x" * 10)
    s.get("a")
    s.set("d", b"x" * 10)
    assert s.get("a") is not None
    assert s.get("b") is None


def test_memory_store_evicts_by_bytes_not_count():
    s = MemoryStore(max_bytes=100)
    for k in "abcde":
        s.set(k, b"x" * 10)
    s.set("big", b"x" * 80)
    assert s.get("big") is not None
    assert [k for k in "abcde" if s.get(k) is not None] == ["d", "e"]


def test_memory_store_overwrite_does_not_leak_size():
    s = MemoryStore(max_bytes=30)
    for _ in range(10):
        s.set("a", b"x" * 10)
    s.set("b", b"x" * 10)
    s.set("c", b"x" * 10)
    assert all(s.get(k) is not None for k in "abc")


def test_memory_store_keeps_a_single_value_larger_than_the_limit():
    s = MemoryStore(max_bytes=10)
    s.set("huge", b"x" * 50)
    assert s.get("huge") == b"x" * 50
    s.set("small", b"y")
    assert s.get("huge") is None
    assert s.get("small") == b"y"
