"""Hashes through a real client: redis-py against a real ``twistd kvstore``, used as RQ uses
it (job hashes written with ``hset(mapping=...)`` in a MULTI pipeline, read back with
``hgetall``, worker counters kept with ``hincrby``), and still there after a restart."""

from __future__ import annotations

import shutil
import tempfile

from twisted.trial.unittest import SynchronousTestCase

from tests.procs import start_kvstore

try:
    import redis
except ImportError:  # pragma: no cover - redis-py is a test dependency
    redis = None


class HashClientTests(SynchronousTestCase):
    """redis-py's hash calls work against kvstore, in RESP2 and RESP3."""

    def setUp(self) -> None:
        if redis is None:
            self.skipTest("redis-py is not installed")
        self.data = tempfile.mkdtemp(prefix="kvtwist-hash-")
        self.addCleanup(shutil.rmtree, self.data, True)
        self.server = start_kvstore(self.data)
        self.addCleanup(lambda: self.server.stop())  # the current one: tests restart it

    def client(self, **kwargs):
        """Return a redis-py client of the running kvstore, closed at cleanup."""
        client = redis.Redis(host="127.0.0.1", port=self.server.port, **kwargs)
        self.addCleanup(client.close)
        return client

    def test_rq_like_job_hashes(self) -> None:
        """Job hashes written in a transaction read back whole; counters count; all persist."""
        r = self.client()
        job = {"status": "queued", "origin": "default", "data": b"\x80\x04\x95payload\x00",
               "created_at": "2026-12-04T17:24:58.000000Z", "timeout": 180}
        with r.pipeline() as pipe:  # MULTI/EXEC, as RQ's Job.save
            pipe.hset("rq:job:1", mapping=job)
            pipe.expire("rq:job:1", 500)
            pipe.execute()
        stored = r.hgetall("rq:job:1")
        self.assertEqual(stored[b"status"], b"queued")
        self.assertEqual(stored[b"data"], job["data"])
        self.assertEqual(stored[b"timeout"], b"180")
        self.assertEqual(r.hset("rq:job:1", "status", "finished"), 0)
        self.assertEqual(r.hget("rq:job:1", "status"), b"finished")
        self.assertEqual(r.hmget("rq:job:1", ["origin", "nope"]), [b"default", None])
        for _ in range(3):
            r.hincrby("rq:worker:w1", "successful_job_count", 1)
        self.assertEqual(r.hincrbyfloat("rq:worker:w1", "total_working_time", 0.25), 0.25)
        self.assertEqual(r.hincrby("rq:worker:w1", "failed_job_count", 0), 0)
        self.assertEqual(r.hlen("rq:worker:w1"), 3)
        self.assertTrue(r.hexists("rq:worker:w1", "failed_job_count"))
        self.assertEqual(r.hdel("rq:worker:w1", "failed_job_count", "nope"), 1)
        self.assertEqual(r.type("rq:job:1"), b"hash")
        self.assertGreater(r.ttl("rq:job:1"), 0)
        # A restart: every acknowledged write is still there.
        self.server.stop()
        self.server = start_kvstore(self.data)
        r = self.client()
        self.assertEqual(r.hgetall("rq:worker:w1"),
                         {b"successful_job_count": b"3", b"total_working_time": b"0.25"})
        self.assertEqual(r.hget("rq:job:1", "status"), b"finished")
        self.assertGreater(r.ttl("rq:job:1"), 0)

    def test_convenience_calls(self) -> None:
        """hkeys, hvals, hstrlen, hsetnx, hrandfield and hscan_iter answer as redis-py expects."""
        r = self.client(decode_responses=True)
        fields = {"f%d" % i: str(i) for i in range(2000)}
        r.hset("big", mapping=fields)
        self.assertEqual(dict(r.hscan_iter("big", count=100)), fields)
        self.assertEqual(dict(r.hscan_iter("big", match="f1?")),
                         {"f%d" % i: str(i) for i in range(10, 20)})
        self.assertEqual(sorted(r.hkeys("big")), sorted(fields))
        self.assertEqual(len(r.hvals("big")), 2000)
        self.assertEqual(r.hstrlen("big", "f1999"), 4)
        self.assertFalse(r.hsetnx("big", "f1", "x"))
        self.assertTrue(r.hsetnx("big", "new", "x"))
        self.assertIn(r.hrandfield("big"), set(fields) | {"new"})
        pairs = r.hrandfield("big", 5, withvalues=True)
        self.assertEqual(len(pairs), 10)
        self.assertRaises(redis.ResponseError, r.hincrby, "big", "new", 1)

    def test_resp3_map(self) -> None:
        """With RESP3 (HELLO 3), HGETALL is a map and HRANDFIELD WITHVALUES pairs."""
        try:
            r = self.client(protocol=3)
        except TypeError:
            self.skipTest("this redis-py speaks RESP2 only")
        r.hset("h", mapping={"a": "1", "b": "2"})
        self.assertEqual(r.hgetall("h"), {b"a": b"1", b"b": b"2"})
        self.assertEqual(r.hgetall("missing"), {})
        self.assertEqual(sorted(r.hrandfield("h", 2, withvalues=True)),
                         [[b"a", b"1"], [b"b", b"2"]])
