"""The packed list storage (engine/quicklist.py, engine/packeddeque.py) against a deque model."""

from __future__ import annotations

import sys
from collections import deque

from hypothesis import given, settings, strategies as st
from twisted.trial.unittest import SynchronousTestCase

from kvtwist.engine import packeddeque, quicklist
from kvtwist.engine.packeddeque import PackedDeque
from kvtwist.engine.quicklist import Packed, pack, thawed

# Elements of a few lengths (uniform and mixed chunks, the empty string included).
ELEMENTS = st.sampled_from([b"", b"a", b"b", b"ab", b"xyz", b"abc", b"a" * 9, b"q" * 20])
INDEX = st.integers(-40, 40)
# Pushed elements come as lists or tuples (the commands' argument tuples).
SEQUENCE = st.one_of(st.lists(ELEMENTS, max_size=12),
                     st.lists(ELEMENTS, max_size=12).map(tuple))
OPERATION = st.one_of(
    st.tuples(st.just("append"), ELEMENTS),
    st.tuples(st.just("appendleft"), ELEMENTS),
    st.tuples(st.just("extend"), SEQUENCE),
    st.tuples(st.just("extendleft"), SEQUENCE),
    st.tuples(st.just("pop"), st.just(None)),
    st.tuples(st.just("popleft"), st.just(None)),
    st.tuples(st.just("pop_many"), st.integers(0, 12)),
    st.tuples(st.just("popleft_many"), st.integers(0, 12)),
    st.tuples(st.just("get"), INDEX),
    st.tuples(st.just("set"), st.tuples(INDEX, ELEMENTS)),
    st.tuples(st.just("setitem"), st.tuples(INDEX, ELEMENTS)),
    st.tuples(st.just("insert"), st.tuples(INDEX, ELEMENTS)),
    st.tuples(st.just("delete"), INDEX),
    st.tuples(st.just("index"), ELEMENTS),
    st.tuples(st.just("contains"), ELEMENTS),
    st.tuples(st.just("range"), st.tuples(st.integers(0, 40), st.integers(0, 40))),
    st.tuples(st.just("copy"), st.just(None)),
    st.tuples(st.just("frozen"), st.just(None)),
    st.tuples(st.just("clear"), st.just(None)),
)


def small_chunks(test):
    """Run ``test`` with chunks of at most 4 elements and 12 bytes (much freezing)."""
    def run(self, *args, **kwargs):
        saved = (quicklist.LIMIT, quicklist.THAW, quicklist.CHUNK_BYTES,
                 packeddeque.LIMIT, packeddeque.THAW)
        quicklist.LIMIT, quicklist.THAW, quicklist.CHUNK_BYTES = 4, 2, 12
        packeddeque.LIMIT, packeddeque.THAW = 4, 2
        try:
            return test(self, *args, **kwargs)
        finally:
            (quicklist.LIMIT, quicklist.THAW, quicklist.CHUNK_BYTES,
             packeddeque.LIMIT, packeddeque.THAW) = saved
    run.__name__ = test.__name__
    run.__doc__ = test.__doc__
    return run


def apply(target, name, arg):
    """Apply one operation to a PackedDeque or a deque; return its result or exception type."""
    try:
        if name in ("append", "appendleft", "extend", "extendleft"):
            return getattr(target, name)(arg)
        if name == "pop":
            return target.pop()
        if name == "popleft":
            return target.popleft()
        if name == "pop_many":
            count = min(arg, len(target))
            if isinstance(target, PackedDeque):
                return target.pop_many(count)
            return [target.pop() for _ in range(count)]
        if name == "popleft_many":
            count = min(arg, len(target))
            if isinstance(target, PackedDeque):
                return target.popleft_many(count)
            return [target.popleft() for _ in range(count)]
        if name == "get":
            return target[arg]
        if name == "set":
            if isinstance(target, PackedDeque):
                return target.swap(*arg)
            old = target[arg[0]]
            target[arg[0]] = arg[1]
            return old
        if name == "setitem":
            target[arg[0]] = arg[1]
            return None
        if name == "insert":
            return target.insert(*arg)
        if name == "delete":
            del target[arg]
            return None
        if name == "index":
            return target.index(arg)
        if name == "contains":
            return arg in target
        if name == "range":
            start, stop = sorted((min(arg[0], len(target)), min(arg[1], len(target))))
            if isinstance(target, PackedDeque):
                return target.range(start, stop)
            return list(target)[start:stop]
        if name == "frozen":
            if isinstance(target, PackedDeque):
                return thawed(target.frozen())
            return list(target)
        if name == "copy":
            return list(target.copy())
        if name == "clear":
            return target.clear()
    except (IndexError, ValueError) as error:
        return type(error)
    raise AssertionError(name)


class PropertyTests(SynchronousTestCase):
    """Random operation sequences give a PackedDeque the same contents as a deque."""

    @small_chunks
    @settings(max_examples=400, deadline=None)
    @given(st.lists(ELEMENTS, max_size=30), st.lists(OPERATION, max_size=60))
    def test_model(self, initial, operations):
        """Every operation's result and the contents after it match collections.deque's."""
        packed, model = PackedDeque(initial), deque(initial)
        for name, arg in operations:
            snapshot = packed.frozen()
            before = list(model)
            self.assertEqual(apply(packed, name, arg), apply(model, name, arg), name)
            self.assertEqual(list(packed), list(model), name)
            self.assertEqual(list(reversed(packed)), list(reversed(model)), name)
            self.assertEqual(len(packed), len(model), name)
            self.assertEqual(thawed(snapshot), before, "a snapshot changed")
            check_invariants(self, packed)

    @small_chunks
    @settings(max_examples=100, deadline=None)
    @given(st.lists(ELEMENTS, min_size=1, max_size=60))
    def test_pack(self, elements):
        """pack splits elements into chunks within the count and byte limits, in order."""
        chunks = pack(elements)
        self.assertEqual([e for chunk in chunks for e in quicklist.unpack(chunk)], elements)
        for chunk in chunks:
            count = chunk.stop - chunk.start
            self.assertLessEqual(count, quicklist.LIMIT)
            self.assertTrue(count == 1 or len(chunk.blob) <= quicklist.CHUNK_BYTES)


def check_invariants(case, packed):
    """Only end chunks are open (plain lists); no chunk is empty; the length is right."""
    chunks = list(packed._chunks)
    for position, chunk in enumerate(chunks):
        case.assertTrue(quicklist.length(chunk) > 0, chunks)
        if chunk.__class__ is list:
            case.assertIn(position, (0, len(chunks) - 1), chunks)
        else:
            case.assertIsInstance(chunk, Packed)
    case.assertEqual(sum(map(quicklist.length, chunks)), len(packed))


class BehaviourTests(SynchronousTestCase):
    """Chunks are packed, opened and searched as the module docstring says."""

    def test_uniform_chunks(self):
        """Elements of one length are packed without offsets; mixed lengths get offsets."""
        packed = PackedDeque([b"%03d" % n for n in range(1000)])
        inner = list(packed._chunks)[1:-1]
        self.assertTrue(inner)
        self.assertTrue(all(chunk.offsets is None and chunk.size == 3 for chunk in inner))
        mixed = PackedDeque([b"%d" % n for n in range(1000)])
        self.assertTrue(any(chunk.__class__ is Packed and chunk.offsets is not None
                            for chunk in mixed._chunks))

    def test_big_element_alone(self):
        """An element larger than CHUNK_BYTES is a chunk of its own (its blob itself)."""
        big = b"x" * (quicklist.CHUNK_BYTES * 2)
        chunks = pack([b"a", big, b"b"])
        self.assertEqual([quicklist.unpack(chunk) for chunk in chunks], [[b"a"], [big], [b"b"]])

    def test_alternating_at_chunk_edge(self):
        """Pushes and pops alternating at a chunk boundary keep the chunk count bounded."""
        packed = PackedDeque([b"%05d" % n for n in range(quicklist.LIMIT * 4)])
        for _ in range(quicklist.LIMIT + 1):
            packed.pop()
        for n in range(1000):
            if n % 2:
                packed.pop()
            else:
                packed.append(b"xxxxx")
        self.assertLessEqual(len(packed._chunks), 6)

    def test_uniform_search_alignment(self):
        """A match straddling two elements of a uniform chunk is not a match."""
        packed = PackedDeque([b"ab", b"cd"] * quicklist.LIMIT)
        self.assertNotIn(b"bc", packed)
        self.assertEqual(packed.index(b"cd"), 1)

    def test_memory(self):
        """100,000 16-byte elements take under 20 bytes each (CPython: tracemalloc)."""
        if sys.implementation.name != "cpython":
            raise self.skipTest("tracemalloc counts CPython's allocations")
        import tracemalloc
        elements = [b"m%015d" % n for n in range(100000)]
        tracemalloc.start()
        try:
            before = tracemalloc.get_traced_memory()[0]
            packed = PackedDeque()
            for start in range(0, len(elements), 100):
                packed.extend(tuple(elements[start:start + 100]))
            used = tracemalloc.get_traced_memory()[0] - before
        finally:
            tracemalloc.stop()
        self.assertEqual(len(packed), 100000)
        self.assertLess(used / 100000, 20)
