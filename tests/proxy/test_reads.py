"""Tests for kvtwist.proxy.reads: cached reads, coalescing, per-turn batches, re-reads, fences."""

from __future__ import annotations

from twisted.internet.defer import Deferred, fail
from twisted.trial.unittest import SynchronousTestCase

from kvtwist.client import ClientDisconnected, RequestTimeout
from kvtwist.engine.store import Store
from kvtwist.proxy.store import BackendUnavailable, ProxyStore
from kvtwist.wire.replies import OK, Error
from kvtwist.proxy.cache import MISSING
from tests.procs import start_kvproxy
from tests.proxy.fakes import FakeListener, PipelineBackend, ProxyCase, result_of
from tests.redisref import RawConnection, start_redis_or_skip


class ProxyReadTests(ProxyCase):
    """GET and MGET through the cache."""

    cache_options = {"ttl": 60, "miss_ttl": 5}

    def test_missThenHit(self) -> None:
        """A GET miss asks the backend once; the next GET is answered from the cache."""
        d = self.session.execute([b"GET", b"k"])
        self.clock.advance(0)
        self.assertEqual(self.backend.sent[0][0], [b"GET", b"k"])
        self.backend.answer(0, b"v")
        self.assertEqual(result_of(d), b"v")
        self.assertEqual(self.session.execute([b"get", b"k"]), b"v")
        self.assertEqual(len(self.backend.sent), 1)

    def test_nilIsCachedBriefly(self) -> None:
        """A nil GET reply is cached for the miss TTL only."""
        d = self.session.execute([b"GET", b"k"])
        self.clock.advance(0)
        self.backend.answer(0, None)
        self.assertIsNone(result_of(d))
        self.assertIsNone(self.session.execute([b"GET", b"k"]))
        self.clock.advance(5)
        self.assertIsInstance(self.session.execute([b"GET", b"k"]), Deferred)

    def test_errorReplyNotCached(self) -> None:
        """A WRONGTYPE error is relayed and not cached."""
        d = self.session.execute([b"GET", b"k"])
        self.clock.advance(0)
        self.backend.answer(0, Error("WRONGTYPE Operation against a key"))
        self.assertEqual(result_of(d), Error("WRONGTYPE Operation against a key"))
        self.assertNotIn(b"k", self.cache)

    def test_concurrentMissesCoalesce(self) -> None:
        """Concurrent misses on one key make one backend request and all get its reply."""
        d1 = self.session.execute([b"GET", b"k"])
        d2 = self.proxy.new_session().execute([b"GET", b"k"])
        self.clock.advance(0)
        self.assertEqual(len(self.backend.sent), 1)
        self.backend.answer(0, b"v")
        self.assertEqual((result_of(d1), result_of(d2)), (b"v", b"v"))
        self.assertEqual(self.proxy.reads.coalesced, 1)

    def test_coalescedFailureAnswersEveryWaiter(self) -> None:
        """A failed fetch gives its client and a joined one the same error reply; nothing cached."""
        d1 = self.session.execute([b"GET", b"k"])
        d2 = self.proxy.new_session().execute([b"GET", b"k"])
        self.clock.advance(0)
        self.backend.sent[0][1].errback(RequestTimeout("no reply to GET within 5 seconds"))
        expected = Error("ERR backend timeout: no reply to GET within 5 seconds")
        self.assertEqual((result_of(d1), result_of(d2)), (expected, expected))
        self.assertEqual(self.proxy.backend_errors, 1)
        self.assertNotIn(b"k", self.cache)
        self.assertIsNone(self.cache.pending(b"k"))

    def test_coalescedErrorReplyAnswersEveryWaiter(self) -> None:
        """An error reply to a fetch reaches its client and every joined client."""
        d1 = self.session.execute([b"GET", b"k"])
        d2 = self.session.execute([b"GET", b"k"])
        d3 = self.proxy.new_session().execute([b"GET", b"k"])
        self.clock.advance(0)
        self.backend.answer(0, Error("WRONGTYPE Operation against a key"))
        wrong = Error("WRONGTYPE Operation against a key")
        self.assertEqual([result_of(d) for d in (d1, d2, d3)], [wrong, wrong, wrong])
        self.assertEqual(self.proxy.reads.coalesced, 2)
        self.assertIsNone(self.cache.pending(b"k"))

    def test_fetchedValueThenHitWithoutBackend(self) -> None:
        """After a fetch completes its placeholder is gone and the next GET is a hit."""
        d = self.session.execute([b"GET", b"k"])
        self.clock.advance(0)
        self.backend.answer(0, b"v")
        self.assertEqual(result_of(d), b"v")
        self.assertIsNone(self.cache.pending(b"k"))
        self.assertEqual(self.session.execute([b"GET", b"k"]), b"v")
        self.assertEqual(len(self.backend.sent), 1)

    def test_invalidationDuringFetch(self) -> None:
        """A fetch raced by an invalidation answers its waiter but caches nothing."""
        d = self.session.execute([b"GET", b"k"])
        self.clock.advance(0)
        self.cache.invalidate(b"k")
        self.backend.answer(0, b"stale")
        self.assertEqual(result_of(d), b"stale")
        self.assertNotIn(b"k", self.cache)

    def test_readAfterInvalidationDoesNotJoinOldFetch(self) -> None:
        """A GET after an invalidation makes its own fetch instead of joining the old one."""
        self.session.execute([b"GET", b"k"])
        self.clock.advance(0)
        self.cache.invalidate(b"k")
        d = self.session.execute([b"GET", b"k"])
        self.clock.advance(0)
        self.assertEqual(len(self.backend.sent), 2)
        self.backend.answer(0, b"old")
        self.backend.answer(1, b"new")
        self.assertEqual(result_of(d), b"new")
        self.assertEqual(self.cache.get(b"k"), b"new")

    def test_mgetFetchesOnlyMissing(self) -> None:
        """MGET takes cached keys from the cache and asks for the rest in one MGET."""
        self.cache.put(b"a", b"1")
        d = self.session.execute([b"MGET", b"a", b"b", b"c", b"b"])
        self.assertEqual(self.backend.sent[0][0], [b"MGET", b"b", b"c"])
        self.backend.answer(0, [b"2", None])
        self.assertEqual(result_of(d), [b"1", b"2", None, b"2"])
        self.assertEqual(self.cache.get(b"b"), b"2")
        self.assertNotIn(b"c", self.cache)

    def test_mgetAllCached(self) -> None:
        """An MGET of cached keys needs no backend request."""
        self.cache.put(b"a", b"1")
        self.cache.put(b"b", None)
        self.assertEqual(self.session.execute([b"MGET", b"a", b"b"]), [b"1", None])
        self.assertEqual(self.backend.sent, [])

    def test_mgetError(self) -> None:
        """An MGET error reply is relayed and nothing is cached."""
        d = self.session.execute([b"MGET", b"a"])
        self.backend.answer(0, Error("ERR boom"))
        self.assertEqual(result_of(d), Error("ERR boom"))
        self.assertEqual(len(self.cache), 0)

    def test_noCachingWhileListenerDown(self) -> None:
        """While invalidations are not flowing, GETs are forwarded and nothing is cached."""
        self.proxy.listener.caching = False
        d = self.session.execute([b"GET", b"k"])
        self.clock.advance(0)
        self.backend.answer(0, b"v")
        self.assertEqual(result_of(d), b"v")
        self.assertNotIn(b"k", self.cache)


class ProxyBatchTests(ProxyCase):
    """The GET misses of one reactor turn are fetched together at its end."""

    cache_options = {"ttl": 60, "miss_ttl": 5}

    def setUp(self) -> None:
        ProxyCase.setUp(self)
        self.one = self.session
        self.two = self.proxy.new_session()
        # A strings-only backend (an old kvstore) gets a turn's misses as one MGET; any
        # other gets one pipelined GET each (the tests that say so set it False).
        self.backend.strings_only = True

    def test_missesOfOneTurnAreOneMget(self) -> None:
        """Misses from several clients in one turn go to the backend as one MGET."""
        d1 = self.one.execute([b"GET", b"a"])
        d2 = self.two.execute([b"GET", b"b"])
        d3 = self.one.execute([b"GET", b"c"])
        self.assertEqual(self.backend.sent, [])
        self.clock.advance(0)
        self.assertEqual([argv for argv, _ in self.backend.sent], [[b"MGET", b"a", b"b", b"c"]])
        self.backend.answer(0, [b"1", b"2", b"3"])
        self.assertEqual([result_of(d) for d in (d1, d2, d3)], [b"1", b"2", b"3"])
        self.assertEqual([self.cache.get(key) for key in (b"a", b"b", b"c")],
                         [b"1", b"2", b"3"])
        self.assertEqual((self.proxy.reads.fetches, self.proxy.reads.fetched_keys), (1, 3))

    def test_nextTurnIsAnotherBatch(self) -> None:
        """Misses after the batch was sent wait for the next turn's batch."""
        self.one.execute([b"GET", b"a"])
        self.clock.advance(0)
        self.one.execute([b"GET", b"b"])
        self.two.execute([b"GET", b"c"])
        self.clock.advance(0)
        self.assertEqual([argv for argv, _ in self.backend.sent],
                         [[b"GET", b"a"], [b"MGET", b"b", b"c"]])

    def test_missAfterWriteWaitsForTurnEnd(self) -> None:
        """A write sends the misses before it; a miss after it goes at the end of the turn."""
        self.one.execute([b"GET", b"a"])
        self.two.execute([b"SET", b"x", b"1"])
        self.one.execute([b"GET", b"b"])
        self.assertEqual([argv for argv, _ in self.backend.sent],
                         [[b"GET", b"a"], [b"SET", b"x", b"1"]])
        self.clock.advance(0)
        self.assertEqual([argv for argv, _ in self.backend.sent][2:], [[b"GET", b"b"]])
        self.clock.advance(0)
        self.assertEqual(len(self.backend.sent), 3)
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_usesReactorTurnEnd(self) -> None:
        """With a reactor that calls at the end of its turn, the batch goes out through that."""
        ends = []
        self.clock.callAtTurnEnd = ends.append
        proxy = ProxyStore(self.clock, self.cache, self.backend, FakeListener())
        session = proxy.new_session()
        session.execute([b"GET", b"a"])
        session.execute([b"GET", b"b"])
        self.assertEqual((len(ends), self.clock.getDelayedCalls()), (1, []))
        ends.pop()()
        self.assertEqual([argv for argv, _ in self.backend.sent], [[b"MGET", b"a", b"b"]])

    def test_sameKeyTwiceInOneTurnIsFetchedOnce(self) -> None:
        """Concurrent misses on one key put it in the batch once; every waiter gets it."""
        d1 = self.one.execute([b"GET", b"a"])
        d2 = self.two.execute([b"GET", b"a"])
        d3 = self.two.execute([b"GET", b"b"])
        self.clock.advance(0)
        self.assertEqual(self.backend.sent[0][0], [b"MGET", b"a", b"b"])
        self.backend.answer(0, [b"1", b"2"])
        self.assertEqual([result_of(d) for d in (d1, d2, d3)], [b"1", b"1", b"2"])
        self.assertEqual(self.proxy.reads.coalesced, 1)

    def test_joinWhileBatchInFlight(self) -> None:
        """A miss on a key whose batch is in flight joins it instead of a new request."""
        d1 = self.one.execute([b"GET", b"a"])
        self.two.execute([b"GET", b"b"])
        self.clock.advance(0)
        d2 = self.two.execute([b"GET", b"a"])
        self.clock.advance(0)
        self.assertEqual(len(self.backend.sent), 1)
        self.backend.answer(0, [b"1", b"2"])
        self.assertEqual((result_of(d1), result_of(d2)), (b"1", b"1"))

    def test_missesInFrontOfOtherTypesArePipelinedGets(self) -> None:
        """In front of a backend holding other types a turn's misses go as one GET each,
        whose nil is cached and whose WRONGTYPE is relayed, with no re-read."""
        self.backend.strings_only = False
        d1 = self.one.execute([b"GET", b"list"])
        d2 = self.two.execute([b"GET", b"gone"])
        d3 = self.two.execute([b"GET", b"k"])
        self.clock.advance(0)
        self.assertEqual([argv for argv, _ in self.backend.sent],
                         [[b"GET", b"list"], [b"GET", b"gone"], [b"GET", b"k"]])
        wrong = Error("WRONGTYPE Operation against a key holding the wrong kind of value")
        self.backend.answer(0, wrong)
        self.backend.answer(1, None)
        self.backend.answer(2, b"v")
        self.assertEqual([result_of(d) for d in (d1, d2, d3)], [wrong, None, b"v"])
        self.assertNotIn(b"list", self.cache)
        self.assertIsNone(self.cache.get(b"gone"))
        self.assertIsNone(self.cache.pending(b"list"))
        self.assertEqual((self.proxy.reads.fetches, self.proxy.reads.rereads), (3, 0))
        self.assertEqual(self.proxy.reads._unfenced, {})

    def test_nilFromStringsOnlyBackendIsAMiss(self) -> None:
        """From a backend holding strings only, an MGET nil is cached as a miss with no GET."""
        self.backend.strings_only = True
        d1 = self.one.execute([b"GET", b"gone"])
        d2 = self.two.execute([b"GET", b"none"])
        d3 = self.two.execute([b"MGET", b"k", b"also-gone"])
        self.clock.advance(0)
        self.assertEqual([argv for argv, _ in self.backend.sent],
                         [[b"MGET", b"k", b"also-gone"], [b"MGET", b"gone", b"none"]])
        self.backend.answer(0, [b"v", None])
        self.backend.answer(1, [None, None])
        self.assertEqual([result_of(d) for d in (d1, d2, d3)], [None, None, [b"v", None]])
        self.assertEqual(len(self.backend.sent), 2)
        self.assertEqual([self.cache.get(key) for key in (b"gone", b"none", b"k", b"also-gone")],
                         [None, None, b"v", None])
        self.assertEqual(self.proxy.reads.rereads, 0)

    def test_missDuringRereadJoinsIt(self) -> None:
        """While a key is re-read (its MGET was refused), a miss on that key joins the re-read."""
        self.one.execute([b"GET", b"a"])
        self.one.execute([b"GET", b"b"])
        self.clock.advance(0)
        self.backend.answer(0, Error("NOPERM no MGET for you"))
        d = self.two.execute([b"GET", b"a"])
        self.clock.advance(0)
        self.assertEqual(len(self.backend.sent), 3)
        self.backend.answer(1, b"late")
        self.assertEqual(result_of(d), b"late")

    def test_invalidationDuringBatchKeepsValueOut(self) -> None:
        """An invalidation while the batch is in flight keeps that key's value out of the cache."""
        d1 = self.one.execute([b"GET", b"a"])
        d2 = self.two.execute([b"GET", b"b"])
        self.clock.advance(0)
        self.cache.invalidate(b"a")
        self.backend.answer(0, [b"stale", b"2"])
        self.assertEqual((result_of(d1), result_of(d2)), (b"stale", b"2"))
        self.assertNotIn(b"a", self.cache)
        self.assertEqual(self.cache.get(b"b"), b"2")

    def test_invalidationDuringRereadKeepsValueOut(self) -> None:
        """An invalidation while a key is re-read keeps the re-read's answer out of the cache."""
        self.one.execute([b"GET", b"a"])
        self.one.execute([b"GET", b"b"])
        self.clock.advance(0)
        self.backend.answer(0, Error("NOPERM no MGET for you"))
        self.cache.invalidate(b"a")
        self.backend.answer(1, None)
        self.assertNotIn(b"a", self.cache)

    def test_failureReachesEveryWaiter(self) -> None:
        """A failed batch gives every waiting client the error and caches nothing."""
        waiting = [self.one.execute([b"GET", b"a"]), self.two.execute([b"GET", b"a"]),
                   self.two.execute([b"GET", b"b"])]
        self.clock.advance(0)
        self.backend.fail(0, ClientDisconnected("connection lost"))
        expected = Error("ERR backend connection lost: connection lost")
        self.assertEqual([result_of(d) for d in waiting], [expected] * 3)
        self.assertEqual(len(self.cache), 0)
        self.assertIsNone(self.cache.pending(b"a"))
        self.assertEqual(self.proxy.backend_errors, 1)

    def test_timeoutReachesEveryWaiter(self) -> None:
        """A timed-out batch answers every waiting client with a backend timeout error."""
        waiting = [self.one.execute([b"GET", b"a"]), self.two.execute([b"GET", b"b"])]
        self.clock.advance(0)
        self.backend.fail(0, RequestTimeout("no reply to MGET within 5 seconds"))
        for d in waiting:
            self.assertTrue(result_of(d).message.startswith("ERR backend timeout"))

    def test_unavailableBackendFailsAtOnce(self) -> None:
        """A backend that fails the batch synchronously still answers every waiter."""
        self.backend.request = lambda argv, **options: fail(
            BackendUnavailable("cannot connect to x"))
        waiting = [self.one.execute([b"GET", b"a"]), self.two.execute([b"GET", b"b"])]
        self.clock.advance(0)
        for d in waiting:
            self.assertTrue(result_of(d).message.startswith("ERR backend unavailable"))
        self.assertIsNone(self.cache.pending(b"b"))

    def test_mgetErrorReplyFallsBackToGets(self) -> None:
        """An error reply to the batch's MGET makes each key ask with its own GET."""
        d1 = self.one.execute([b"GET", b"a"])
        d2 = self.two.execute([b"GET", b"b"])
        self.clock.advance(0)
        self.backend.answer(0, Error("NOPERM no MGET for you"))
        self.assertEqual([argv for argv, _ in self.backend.sent[1:]],
                         [[b"GET", b"a"], [b"GET", b"b"]])
        self.backend.answer(1, b"1")
        self.backend.answer(2, Error("NOPERM no GET either"))
        self.assertEqual((result_of(d1), result_of(d2)), (b"1", Error("NOPERM no GET either")))
        self.assertEqual(self.cache.get(b"a"), b"1")

    def test_malformedReplyIsAnError(self) -> None:
        """A batch reply of the wrong length answers every waiter with an error."""
        waiting = [self.one.execute([b"GET", b"a"]), self.two.execute([b"GET", b"b"])]
        self.clock.advance(0)
        self.backend.answer(0, [b"only one"])
        expected = Error("ERR backend sent a malformed MGET reply")
        self.assertEqual([result_of(d) for d in waiting], [expected, expected])
        self.assertIsNone(self.cache.pending(b"a"))

    def test_writeSendsPendingBatchFirst(self) -> None:
        """A write sends the misses read before it first, so they do not see it."""
        self.one.execute([b"GET", b"a"])
        self.one.execute([b"GET", b"b"])
        self.two.execute([b"SET", b"a", b"new"])
        self.one.execute([b"GET", b"c"])
        self.clock.advance(0)
        self.assertEqual([argv for argv, _ in self.backend.sent],
                         [[b"MGET", b"a", b"b"], [b"SET", b"a", b"new"], [b"GET", b"c"]])
        self.backend.answer(0, [b"old", b"2"])
        self.assertNotIn(b"a", self.cache)
        self.assertEqual(self.proxy.reads.fences, 0)

    def test_fenceAnswersTheNil(self) -> None:
        """A write to a key whose GET joined a client's MGET is fenced by a GET sent before
        it, which answers the MGET's nil; no GET goes after the write."""
        self.backend.strings_only = False
        self.one.execute([b"MGET", b"a", b"b"])
        first = self.two.execute([b"GET", b"a"])
        self.clock.advance(0)
        self.two.execute([b"DEL", b"x", b"a"])
        self.assertEqual([argv for argv, _ in self.backend.sent][1:],
                         [[b"GET", b"a"], [b"DEL", b"x", b"a"]])
        self.backend.answer(0, [None, b"2"])
        self.assertNoResult(first)
        wrong = Error("WRONGTYPE Operation against a key holding the wrong kind of value")
        self.backend.answer(1, wrong)
        self.assertEqual(result_of(first), wrong)
        self.assertEqual(len(self.backend.sent), 3)
        self.assertEqual(self.proxy.reads._unfenced, {})

    def test_flushFencesEveryTrackedFetch(self) -> None:
        """A write that may touch every key (a script) fences every fetch of a client's
        MGET in flight."""
        self.backend.strings_only = False
        self.one.execute([b"MGET", b"a", b"b"])
        self.one.execute([b"EVAL", b"return 1", b"0"])
        self.assertEqual(sorted(argv[1] for argv, _ in self.backend.sent[1:3]), [b"a", b"b"])
        self.assertEqual(self.backend.sent[3][0], [b"EVAL", b"return 1", b"0"])

    def test_stringsOnlyBackendNeedsNoFence(self) -> None:
        """In front of a strings-only backend an MGET nil is final, so writes need no fence."""
        self.backend.strings_only = True
        self.one.execute([b"GET", b"a"])
        self.one.execute([b"GET", b"b"])
        self.clock.advance(0)
        self.two.execute([b"SET", b"a", b"new"])
        self.assertEqual([argv for argv, _ in self.backend.sent],
                         [[b"MGET", b"a", b"b"], [b"SET", b"a", b"new"]])
        self.assertEqual(self.proxy.reads._unfenced, {})

    def pipeline(self, *requests):
        """Run ``requests`` (argvs) in one session over a PipelineBackend; return the replies."""
        self.backend = PipelineBackend(Store(self.clock))
        self.proxy = ProxyStore(self.clock, self.cache, self.backend, FakeListener())
        session = self.proxy.new_session()
        pending = [session.execute(argv) for argv in requests]
        self.clock.advance(0)
        while self.backend.deliver():
            self.clock.advance(0)
        return [result_of(d) if isinstance(d, Deferred) else d for d in pending]

    def test_pipelinedMissesCostOneRequestEach(self) -> None:
        """N pipelined GET misses cost N backend requests, one GET each, not an MGET plus
        re-reads."""
        keys = [b"l"] + [b"k%d" % (index,) for index in range(5)]
        replies = self.pipeline([b"RPUSH", b"l", b"x"], *[[b"GET", key] for key in keys])
        wrong = Error("WRONGTYPE Operation against a key holding the wrong kind of value")
        self.assertEqual(replies, [1, wrong] + [None] * 5)
        self.assertEqual(self.backend.sent, [[b"RPUSH", b"l", b"x"]]
                         + [[b"GET", key] for key in keys])
        self.assertEqual((self.proxy.reads.rereads, self.proxy.reads.fetched_keys), (0, 6))

    def test_rereadIsNotOvertakenByLaterWrite(self) -> None:
        """A GET whose batched MGET answered nil is not answered by a write pipelined after it."""
        replies = self.pipeline([b"GET", b"a"], [b"GET", b"b"], [b"SET", b"a", b"new"],
                                [b"GET", b"a"])
        self.assertEqual(replies, [None, None, OK, b"new"])

    def test_rereadAfterInvalidationIsNotOvertaken(self) -> None:
        """A nil's re-read still goes before a later write when an invalidation voided the fetch."""
        self.backend = PipelineBackend(Store(self.clock))
        self.proxy = ProxyStore(self.clock, self.cache, self.backend, FakeListener())
        session = self.proxy.new_session()
        first = session.execute([b"GET", b"a"])
        session.execute([b"GET", b"b"])
        self.clock.advance(0)
        self.cache.invalidate(b"a")  # someone else's write, announced by the backend
        session.execute([b"SET", b"a", b"new"])
        while self.backend.deliver():
            self.clock.advance(0)
        self.assertIsNone(result_of(first))

    def test_clientMgetJoinerIsNotOvertakenByLaterWrite(self) -> None:
        """A GET that joined a client's MGET fetch, then wrote the key, reads the old state."""
        self.backend = PipelineBackend(Store(self.clock))
        self.proxy = ProxyStore(self.clock, self.cache, self.backend, FakeListener())
        reader = self.proxy.new_session().execute([b"MGET", b"a", b"b"])
        session = self.proxy.new_session()
        joined = session.execute([b"GET", b"a"])
        session.execute([b"SET", b"a", b"new"])
        self.clock.advance(0)
        while self.backend.deliver():
            self.clock.advance(0)
        self.assertEqual((result_of(reader), result_of(joined)), ([None, None], None))

    def test_getJoiningClientMgetIsAnswered(self) -> None:
        """A GET that joins a client MGET's fetch gets GET's answer, even for a nil."""
        self.backend.strings_only = False
        m = self.one.execute([b"MGET", b"a", b"b"])
        d1 = self.two.execute([b"GET", b"a"])
        d2 = self.two.execute([b"GET", b"b"])
        self.clock.advance(0)
        self.assertEqual(len(self.backend.sent), 1)
        self.backend.answer(0, [b"1", None])
        self.assertEqual((result_of(m), result_of(d1)), ([b"1", None], b"1"))
        self.assertEqual(self.backend.sent[1][0], [b"GET", b"b"])
        self.backend.answer(1, Error("WRONGTYPE Operation against a key"))
        self.assertEqual(result_of(d2), Error("WRONGTYPE Operation against a key"))

    def test_info(self) -> None:
        """INFO counts fetch requests, the keys they carried and the re-reads."""
        self.one.execute([b"GET", b"a"])
        self.two.execute([b"GET", b"b"])
        self.clock.advance(0)
        self.backend.answer(0, Error("NOPERM no MGET for you"))
        text = self.one.execute([b"INFO", b"proxy"]).decode()
        for line in ("backend_fetches:3", "backend_fetched_keys:2", "backend_rereads:2",
                     "cache_misses:2"):
            self.assertIn(line + "\r\n", text)


class TtlBoundTests(ProxyCase):
    """A fetched value is cached no longer than its key lives on the backend: its client
    is answered at once, and the value is cached once PTTL of its key says for how long."""

    cache_options = {"ttl": 60, "miss_ttl": 5}

    def setUp(self) -> None:
        ProxyCase.setUp(self)
        self.backend.manual_ttls = True

    def miss(self, key: bytes = b"k"):
        d = self.session.execute([b"GET", key])
        self.clock.advance(0)
        return d

    def sent(self) -> list:
        return [argv for argv, _ in self.backend.sent]

    def test_aValueIsAnsweredThenItsPttlAsked(self) -> None:
        """A GET miss answering a value answers its client at once and asks PTTL of the
        key; nothing is cached until the PTTL comes."""
        d = self.miss()
        self.assertEqual(self.sent(), [[b"GET", b"k"]])
        self.backend.answer(0, b"v")
        self.assertEqual(result_of(d), b"v")
        self.assertEqual(self.sent(), [[b"GET", b"k"], [b"PTTL", b"k"]])
        self.assertNotIn(b"k", self.cache)
        self.assertEqual(self.proxy.reads.ttl_checks, 1)

    def test_infoCountsTtlChecks(self) -> None:
        """INFO's backend_ttl_checks counts the PTTLs asked before caching a fetched value."""
        self.miss()
        self.backend.answer(0, b"v")
        text = self.session.execute([b"INFO", b"proxy"]).decode()
        self.assertIn("backend_ttl_checks:1\r\n", text)

    def test_aNilAsksNoPttl(self) -> None:
        """A nil is cached at once for the miss TTL: absence does not expire."""
        d = self.miss()
        self.backend.answer(0, None)
        self.assertIsNone(result_of(d))
        self.assertEqual(self.sent(), [[b"GET", b"k"]])
        self.assertIn(b"k", self.cache)

    def test_valueLivesNoLongerThanItsKey(self) -> None:
        """A value whose key has 150 ms left is a hit for 150 ms, then fetched again."""
        d = self.miss()
        self.backend.answer(0, b"v")
        self.assertEqual(result_of(d), b"v")
        self.backend.answer(1, 150)
        self.clock.advance(0.149)
        self.assertEqual(self.session.execute([b"GET", b"k"]), b"v")
        self.clock.advance(0.001)
        self.assertIsInstance(self.session.execute([b"GET", b"k"]), Deferred)

    def test_ttlCountsFromThePttlsSend(self) -> None:
        """The key's TTL is counted from when the PTTL was sent, not from its reply."""
        self.miss()
        self.backend.answer(0, b"v")
        self.clock.advance(0.05)
        self.backend.answer(1, 100)
        self.clock.advance(0.049)
        self.assertEqual(self.session.execute([b"GET", b"k"]), b"v")
        self.clock.advance(0.001)
        self.assertIsInstance(self.session.execute([b"GET", b"k"]), Deferred)

    def test_keyWithoutTtlKeepsTheCacheTtl(self) -> None:
        """PTTL -1 (no expiry) leaves the value cached for the cache's TTL."""
        self.miss()
        self.backend.answer(0, b"v")
        self.backend.answer(1, -1)
        self.clock.advance(59.9)
        self.assertEqual(self.session.execute([b"GET", b"k"]), b"v")

    def test_goneOrUnknownIsNotCached(self) -> None:
        """A value whose PTTL says the key is gone (-2) or due (0), or whose PTTL the
        backend refuses (an ACL, say), is not cached."""
        for index, ttl in enumerate((-2, 0, Error("NOPERM no permissions"))):
            key = b"k%d" % (index,)
            d = self.miss(key)
            self.backend.answer(2 * index, b"v")
            self.assertEqual(result_of(d), b"v")
            self.backend.answer(2 * index + 1, ttl)
            self.assertNotIn(key, self.cache)

    def test_aMissWhileThePttlIsOutWaitsForIt(self) -> None:
        """A GET of the key while its PTTL is out joins it: answered with the value if
        the key lives, else by a fetch of its own."""
        self.miss()
        self.backend.answer(0, b"v")
        joined = self.session.execute([b"GET", b"k"])
        self.clock.advance(0)
        self.assertEqual(len(self.backend.sent), 2)  # no fetch: it joined the PTTL
        self.backend.answer(1, 500)
        self.assertEqual(result_of(joined), b"v")
        self.cache.invalidate(b"k")
        self.miss()
        self.backend.answer(2, b"v2")
        late = self.session.execute([b"GET", b"k"])
        self.clock.advance(0)
        self.backend.answer(3, -2)  # expired meanwhile
        self.assertEqual(self.sent()[4], [b"GET", b"k"])
        self.backend.answer(4, None)
        self.assertIsNone(result_of(late))

    def test_anInvalidationWhileThePttlIsOutKeepsItOut(self) -> None:
        """A key invalidated while its PTTL is out is not cached."""
        self.miss()
        self.backend.answer(0, b"v")
        self.cache.invalidate(b"k")
        self.backend.answer(1, -1)
        self.assertNotIn(b"k", self.cache)

    def test_batchedMissesBoundEachKey(self) -> None:
        """A turn's MGET of misses asks PTTL of each key that had a value; each value's
        life is bounded by its own key's."""
        d1 = self.session.execute([b"GET", b"a"])
        d2 = self.proxy.new_session().execute([b"GET", b"b"])
        d3 = self.proxy.new_session().execute([b"GET", b"c"])
        self.backend.strings_only = True
        self.clock.advance(0)
        self.backend.answer(0, [b"1", b"2", None])
        self.assertEqual((result_of(d1), result_of(d2), result_of(d3)), (b"1", b"2", None))
        self.assertEqual(self.sent()[1:], [[b"PTTL", b"a"], [b"PTTL", b"b"]])
        self.backend.answer(1, -1)
        self.backend.answer(2, 200)
        self.clock.advance(0.2)
        self.assertEqual(self.cache.get(b"a"), b"1")
        self.assertIs(self.cache.get(b"b"), MISSING)

    def test_clientMgetBoundsEachKey(self) -> None:
        """A client's MGET asks PTTL of its fetched keys that had a value, and bounds each."""
        d = self.session.execute([b"MGET", b"a", b"b"])
        self.backend.answer(0, [b"1", b"2"])
        self.assertEqual(result_of(d), [b"1", b"2"])
        self.assertEqual(self.sent()[1:], [[b"PTTL", b"a"], [b"PTTL", b"b"]])
        self.backend.answer(1, 100)
        self.backend.answer(2, -1)
        self.clock.advance(0.1)
        self.assertIs(self.cache.get(b"a"), MISSING)
        self.assertEqual(self.cache.get(b"b"), b"2")

    def test_expireThroughTheProxyDropsTheCachedValue(self) -> None:
        """EXPIRE, PEXPIRE, SET ... PX, GETEX and PEXPIREAT through kvproxy drop the cached
        value of their key when sent (tracking also invalidates it)."""
        for argv in ([b"EXPIRE", b"k", b"1"], [b"PEXPIRE", b"k", b"100"],
                     [b"SET", b"k", b"v", b"PX", b"100"], [b"GETEX", b"k", b"PX", b"100"],
                     [b"PEXPIREAT", b"k", b"1"]):
            self.cache.put(b"k", b"v")
            self.session.execute(argv)
            self.assertNotIn(b"k", self.cache, argv)


class RedisExpiryTests(SynchronousTestCase):
    """Through a real ``twistd kvproxy`` in front of redis-server."""

    def test_getAfterTheKeysTtlIsNil(self) -> None:
        """With 100,000 other keys carrying a TTL (so redis-server's active expiry is slow
        to find the one that expired, and sends no invalidation), a GET through kvproxy
        after a key's TTL answers nil, as a direct GET would."""
        server = start_redis_or_skip()
        self.addCleanup(server.stop)
        direct = RawConnection(server.port)
        self.addCleanup(direct.close)
        direct.call([b"EVAL", b"for i = 1, 100000 do redis.call('SET', 'ttl:' .. i, 'v', "
                     b"'EX', 3600) end return 1", b"0"])
        proxy = start_kvproxy(server.port)
        self.addCleanup(proxy.stop)
        proxy.wait_for_line("invalidation tracking on")
        client = RawConnection(proxy.port)
        self.addCleanup(client.close)
        stale = 0
        for attempt in range(10):
            key = b"x%d" % (attempt,)
            self.assertEqual(client.call([b"SET", key, b"somevalue", b"PX", b"100"]), b"+OK\r\n")
            self.assertEqual(client.call([b"GET", key]), b"$9\r\nsomevalue\r\n")  # cached
            # Wait 150 ms on the server's clock (BLPOP's timeout), touching no key of ours.
            self.assertEqual(direct.call([b"BLPOP", b"nothing", b"0.15"]), b"*-1\r\n")
            if client.call([b"GET", key]) != b"$-1\r\n":
                stale += 1
        self.assertEqual(stale, 0)
