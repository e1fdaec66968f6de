"""Tests for kvtwist.engine.info: the INFO command's sections and their counts."""

from __future__ import annotations

from twisted.trial.unittest import SynchronousTestCase

from kvtwist.engine.store import NullJournal, Store
from tests.helpers import SessionMixin


class InfoTests(SessionMixin, SynchronousTestCase):
    def test_sections(self):
        """INFO has each of Redis 7's default sections in its format with live counts."""
        self.call("set", "a", "1", "ex", "10")
        self.call("set", "b", "2")
        self.store.port = 6399
        self.clock.advance(5)
        text = self.call("info")
        self.assertIsInstance(text, bytes)
        titles = [line for line in text.split(b"\r\n") if line.startswith(b"#")]
        self.assertEqual(titles, [b"# Server", b"# Clients", b"# Memory", b"# Persistence",
                                  b"# Stats", b"# Replication", b"# CPU", b"# Modules",
                                  b"# Errorstats", b"# Cluster", b"# Keyspace", b"# Journal"])
        for line in (b"redis_version:7.0.0", b"tcp_port:6399", b"uptime_in_seconds:5",
                     b"connected_clients:1", b"total_connections_received:1",
                     b"total_commands_processed:2", b"db0:keys=2,expires=1,avg_ttl=5000",
                     b"journal_appended:2", b"role:master", b"aof_enabled:0",
                     b"cluster_enabled:0", b"evicted_keys:0"):
            self.assertIn(line + b"\r\n", text)
        self.assertTrue(text.endswith(b"\r\n"))
        self.assertRegex(text, rb"used_cpu_user:[0-9]+\.[0-9]{6}\r\n")
        self.assertRegex(text, rb"used_memory:[1-9][0-9]*\r\n")
        for repr_text in (b":True", b":False", b":None"):
            self.assertNotIn(repr_text, self.call("info", "everything"))

    def test_commands_counted_after_running(self):
        """INFO does not count itself, and CONFIG RESETSTAT then INFO shows 1, as in Redis."""
        self.call("ping")
        self.assertIn(b"total_commands_processed:1\r\n", self.call("info", "stats"))
        self.call("config", "resetstat")
        self.assertIn(b"total_commands_processed:1\r\n", self.call("info", "stats"))
        self.assertEqual(self.store.commands_processed, 2)

    def test_tcp_port_from_config(self):
        """tcp_port comes from the store's config port (as tap passes it), else store.port."""
        self.assertIn(b"tcp_port:0\r\n", self.call("info", "server"))
        store = Store(self.clock, config={"port": "7001"})
        store.port = 6399
        text = store.new_session().execute([b"info", b"server"])
        self.assertIn(b"tcp_port:7001\r\n", text)
        self.assertNotIn(b"tcp_port:6399", text)

    def test_section_choice(self):
        """Sections are chosen case-insensitively, several at once, in Redis's order;
        default leaves out commandstats and latencystats, all and everything add them."""
        self.call("set", "k", "v")
        self.assertEqual(self.call("info", "KEYSPACE"),
                         b"# Keyspace\r\ndb0:keys=1,expires=0,avg_ttl=0\r\n")
        self.assertEqual(self.call("info", "nosuch"), b"")
        text = self.call("info", "keyspace", "cpu")
        self.assertTrue(text.startswith(b"# CPU\r\n"))
        self.assertIn(b"\r\n\r\n# Keyspace\r\n", text)
        self.assertNotIn(b"rejected_calls", self.call("info", "default"))
        for each in ("all", "everything"):
            self.assertIn(b"cmdstat_set:calls=1,", self.call("info", each))
            self.assertIn(b"# Latencystats", self.call("info", each))
        self.assertEqual(self.call("info", "cpu", "all").count(b"used_cpu_user_children"), 1)

    def test_empty_databases_left_out(self):
        """Keyspace lists only databases holding keys."""
        self.assertEqual(self.call("info", "keyspace"), b"# Keyspace\r\n")

    def test_stats_fields(self):
        """keyspace hits and misses, expired keys, error replies, command and error stats."""
        self.call("set", "a", "1", "px", "10")
        self.call("get", "a")
        self.call("mget", "a", "b", "c")
        self.clock.advance(1)
        self.call("get", "a")
        self.call("incr", "x")
        self.call("set", "s", "t")
        self.call("incr", "s")
        self.call("get")
        text = self.call("info", "everything")
        for line in (b"keyspace_hits:2", b"keyspace_misses:3", b"expired_keys:1",
                     b"total_error_replies:2", b"errorstat_ERR:count=2",
                     b"cmdstat_incr:calls=2,", b"rejected_calls=0,failed_calls=1",
                     b"cmdstat_get:calls=2,"):
            self.assertIn(line, text)
        self.assertRegex(text, rb"cmdstat_get:calls=2,usec=[0-9]+,usec_per_call=[0-9.]+,"
                               rb"rejected_calls=1,failed_calls=0\r\n")
        self.assertRegex(text, rb"latency_percentiles_usec_get:p50=[0-9.]+,p99=[0-9.]+,"
                               rb"p99\.9=[0-9.]+\r\n")

    def test_memory(self):
        """used_memory grows with the data; RSS comes from the store's injected provider."""
        empty = self.call("info", "memory")
        self.assertIn(b"used_memory:0\r\n", empty)
        self.assertIn(b"used_memory_rss:0\r\n", empty)
        self.call("set", "k", "v" * 10000)
        self.store.rss_provider = lambda: 5 * 1024 * 1024
        text = self.call("info", "memory")
        used = int(text.split(b"used_memory:")[1].split(b"\r\n")[0])
        self.assertGreater(used, 10000)
        self.assertIn(b"used_memory_rss:5242880\r\nused_memory_rss_human:5.00M\r\n", text)

    def test_memory_lazyfree_fields(self):
        """INFO memory has Redis's mem_not_counted_for_evict and lazyfree fields, all 0: kvstore
        frees every value at once and keeps no replication or AOF buffers."""
        self.call("set", "k", "v")
        self.call("unlink", "k")
        text = self.call("info", "memory")
        for line in (b"mem_not_counted_for_evict:0", b"lazyfree_pending_objects:0",
                     b"lazyfreed_objects:0"):
            self.assertIn(b"\r\n" + line + b"\r\n", text)

    def test_no_migrate_sockets(self):
        """INFO stats has migrate_cached_sockets:0: kvstore has no MIGRATE, so it never caches
        a connection to another server (unit/dump waits for Redis's to reach 0)."""
        self.assertIn(b"\r\nmigrate_cached_sockets:0\r\n", self.call("info", "stats"))

    def test_memory_is_the_maxmemory_figure(self):
        """used_memory is the figure maxmemory compares with, typed values' sizes included."""
        self.call("hset", "h", *["f%d" % i for i in range(2000)])
        text = self.call("info", "memory")
        used = int(text.split(b"used_memory:")[1].split(b"\r\n")[0])
        self.assertEqual(used, self.store.databases.meter.used)
        self.assertGreater(used, 1000 * 10)

    def test_instantaneous_ops(self):
        """instantaneous_ops_per_sec averages the rates sampled by store.stats.sample."""
        stats = self.store.stats
        stats.sample(0)
        self.clock.advance(0.1)
        stats.sample(100)
        self.clock.advance(0.1)
        stats.sample(300)
        self.assertIn(b"instantaneous_ops_per_sec:1500\r\n", self.call("info", "stats"))

    def test_journal_info(self):
        """The Journal section shows journal.info() in Redis's value style."""
        class Journal(NullJournal):
            def info(self):
                return {"fsync": "always", "journal_bytes": 42, "compacting": False,
                        "failure": None, "last_commit": 12.5, "last_load_seconds": 0.25}
        self.store.set_journal(Journal())
        text = self.call("info", "journal")
        self.assertEqual(text, b"# Journal\r\njournal_compacting:0\r\njournal_failure:\r\n"
                               b"journal_fsync:always\r\njournal_bytes:42\r\n"
                               b"journal_last_commit:12\r\njournal_last_load_ms:250\r\n")
        self.assertIn(b"aof_enabled:1\r\n", self.call("info", "persistence"))


class DifferentialInfoTests(SynchronousTestCase):
    def test_field_names(self):
        """Every field kvstore prints in Redis's sections is one redis-server prints there."""
        from twisted.internet.task import Clock

        from tests.redisref import RawConnection, start_redis_or_skip

        server = start_redis_or_skip()
        self.addCleanup(server.stop)
        redis = RawConnection(server.port)
        self.addCleanup(redis.close)
        redis.call([b"set", b"k", b"v"])
        redis.call([b"get", b"k"])
        session = Store(Clock()).new_session()
        session.execute([b"set", b"k", b"v"])
        session.execute([b"get", b"k"])

        def fields(text: bytes) -> dict:
            out, section = {}, None
            for line in text.split(b"\r\n"):
                if line.startswith(b"# "):
                    section = line[2:]
                elif line:
                    out.setdefault(section, set()).add(line.split(b":", 1)[0])
            return out

        theirs = fields(redis.call([b"info", b"everything"]).split(b"\r\n", 1)[1])
        ours = fields(session.execute([b"info", b"everything"]))
        own = {b"kvtwist_version", b"kvtwist_value_types", b"python_implementation",
               b"kvtwist_data_estimate", b"acl_access_denied_auth"}  # the last: Redis 7.2
        for section, names in ours.items():
            if section == b"Journal":
                continue
            self.assertIn(section, theirs)
            if section in (b"Commandstats", b"Latencystats", b"Errorstats"):
                self.assertEqual(names, theirs[section] & names, section)
                continue
            self.assertEqual(names - own - theirs[section], set(), section)


class ValueTypesTests(SessionMixin, SynchronousTestCase):
    """INFO server names the value types kvstore holds (kvproxy reads it)."""

    def test_value_types(self):
        """Every registered type is listed after string, so kvproxy re-reads MGET's nils."""
        text = self.call("info", "server")
        line = text.split(b"kvtwist_value_types:")[1].split(b"\r\n")[0]
        # (Test-only types other tests register may follow.)
        self.assertEqual(line.split(b",")[:5], [b"string", b"hash", b"list", b"set", b"zset"])
