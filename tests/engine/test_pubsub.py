"""Tests for kvtwist.engine.pubsub: channels, patterns, shard channels, PUBSUB, the context."""

from __future__ import annotations

import shutil
import tempfile

from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.trial.unittest import SynchronousTestCase


from kvtwist.engine.store import Store
from kvtwist.serve.factory import KVFactory
from kvtwist.wire.replies import OK, Error, Push, Status
from tests.pubsubref import kvstore_transcript, redis_transcript
from tests.redisref import start_redis_or_skip

CONTEXT = ("ERR Can't execute '%s': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / "
           "RESET are allowed in this context")


class SessionTests(SynchronousTestCase):
    """Sessions with their pushes captured, as the front end would deliver them."""

    def setUp(self) -> None:
        self.store = Store(Clock())
        self.sub, self.pushed = self.session()
        self.pub, _ = self.session()

    def session(self):
        session = self.store.new_session()
        pushed = []
        session.push = pushed.append
        return session, pushed

    def test_psubscribeCountsChannelsAndPatterns(self) -> None:
        """(P)SUBSCRIBE confirmations count channels plus patterns; each one is a push."""
        self.assertEqual(self.sub.execute([b"SUBSCRIBE", b"a", b"b"]), [b"subscribe", b"b", 2])
        self.assertEqual(self.pushed, [[b"subscribe", b"a", 1]])
        reply = self.sub.execute([b"PSUBSCRIBE", b"n*"])
        self.assertEqual(reply, [b"psubscribe", b"n*", 3])
        self.assertIs(reply.__class__, Push)
        self.assertEqual(self.sub.execute([b"PSUBSCRIBE", b"n*"]), [b"psubscribe", b"n*", 3])
        self.assertEqual(self.sub.execute([b"PUNSUBSCRIBE", b"zz"]), [b"punsubscribe", b"zz", 3])
        self.assertEqual(self.sub.execute([b"UNSUBSCRIBE", b"a"]), [b"unsubscribe", b"a", 2])

    def test_publishReachesChannelThenPatterns(self) -> None:
        """PUBLISH sends message then pmessage, and counts every delivery."""
        self.sub.execute([b"SUBSCRIBE", b"news"])
        self.sub.execute([b"PSUBSCRIBE", b"n*", b"x"])
        other, got = self.session()
        other.execute([b"PSUBSCRIBE", b"n[aeiou]ws"])
        del self.pushed[:]
        self.assertEqual(self.pub.execute([b"PUBLISH", b"news", b"hi"]), 3)
        self.assertEqual(self.pushed, [[b"message", b"news", b"hi"],
                                       [b"pmessage", b"n*", b"news", b"hi"]])
        self.assertEqual(got[-1], [b"pmessage", b"n[aeiou]ws", b"news", b"hi"])
        self.assertEqual(self.pub.execute([b"PUBLISH", b"nothing-here", b"x"]), 1)
        self.assertEqual(self.pub.execute([b"PUBLISH", b"zzz", b"x"]), 0)

    def test_patternMatchedOncePerPublish(self) -> None:
        """A pattern is matched once per PUBLISH whatever its number of subscribers."""
        for _ in range(3):
            self.session()[0].execute([b"PSUBSCRIBE", b"p*"])
        glob, members = self.store.pubsub.patterns[b"p*"]
        calls = []

        def counting(channel):
            calls.append(channel)
            return glob.matches(channel)

        self.store.pubsub.patterns[b"p*"] = (_Counted(counting), members)
        self.assertEqual(self.pub.execute([b"PUBLISH", b"pq", b"m"]), 3)
        self.assertEqual(calls, [b"pq"])

    def test_subscribedContextRESP2(self) -> None:
        """A RESP2 subscribed session may only (un)subscribe, PING, QUIT and RESET."""
        self.sub.execute([b"SUBSCRIBE", b"a"])
        self.assertEqual(self.sub.execute([b"GET", b"k"]), Error(CONTEXT % "get"))
        self.assertEqual(self.sub.execute([b"pubsub", b"NUMSUB", b"a"]),
                         Error(CONTEXT % "pubsub|numsub"))
        self.assertEqual(self.sub.execute([b"PING"]), [b"pong", b""])
        self.assertEqual(self.sub.execute([b"PING", b"x"]), [b"pong", b"x"])
        self.assertEqual(self.sub.execute([b"GET"]),
                         Error("ERR wrong number of arguments for 'get' command"))
        self.assertIsInstance(self.sub.execute([b"NOSUCH"]), Error)
        self.assertEqual(self.sub.execute([b"UNSUBSCRIBE"]), [b"unsubscribe", b"a", 0])
        self.assertIsNone(self.sub.execute([b"GET", b"k"]))
        self.assertEqual(self.sub.execute([b"PING"]), Status(b"PONG"))

    def test_noContextInRESP3(self) -> None:
        """A RESP3 subscribed session runs any command, and PING answers PONG."""
        self.sub.execute([b"HELLO", b"3"])
        self.sub.execute([b"SUBSCRIBE", b"a"])
        self.assertIsNone(self.sub.execute([b"GET", b"k"]))
        self.assertEqual(self.sub.execute([b"PING"]), Status(b"PONG"))

    def test_resetLeavesEverything(self) -> None:
        """RESET drops channels, patterns and shard channels and leaves the context."""
        self.sub.execute([b"SUBSCRIBE", b"a"])
        self.sub.execute([b"PSUBSCRIBE", b"p*"])
        self.sub.execute([b"SSUBSCRIBE", b"s"])
        self.assertEqual(self.sub.execute([b"RESET"]), Status(b"RESET"))
        self.assertIsNone(self.sub.execute([b"GET", b"k"]))
        self.assertEqual(self.pub.execute([b"PUBSUB", b"NUMSUB", b"a"]), [b"a", 0])
        self.assertEqual(self.pub.execute([b"PUBSUB", b"NUMPAT"]), 0)
        self.assertEqual(self.pub.execute([b"PUBSUB", b"SHARDCHANNELS"]), [])
        self.assertEqual(self.pub.execute([b"PUBLISH", b"a", b"x"]), 0)

    def test_closedConnectionLeaves(self) -> None:
        """A session dropped by the store counts no more in NUMSUB and NUMPAT."""
        self.sub.execute([b"SUBSCRIBE", b"a"])
        self.sub.execute([b"PSUBSCRIBE", b"p*"])
        self.store.drop_session(self.sub)
        self.assertEqual(self.pub.execute([b"PUBSUB", b"NUMSUB", b"a"]), [b"a", 0])
        self.assertEqual(self.pub.execute([b"PUBSUB", b"NUMPAT"]), 0)
        self.assertEqual(self.store.pubsub.clients, {})

    def test_pubsubIntrospection(self) -> None:
        """PUBSUB CHANNELS, NUMSUB and NUMPAT report active subscriptions only."""
        self.sub.execute([b"SUBSCRIBE", b"news.a", b"news.b", b"other"])
        other, _ = self.session()
        other.execute([b"SUBSCRIBE", b"news.a"])
        other.execute([b"PSUBSCRIBE", b"x*", b"y*"])
        self.sub.execute([b"PSUBSCRIBE", b"x*"])
        run = self.pub.execute
        self.assertEqual(sorted(run([b"PUBSUB", b"CHANNELS"])), [b"news.a", b"news.b", b"other"])
        self.assertEqual(sorted(run([b"PUBSUB", b"channels", b"news.*"])),
                         [b"news.a", b"news.b"])
        self.assertEqual(run([b"PUBSUB", b"NUMSUB", b"news.a", b"nope"]),
                         [b"news.a", 2, b"nope", 0])
        self.assertEqual(run([b"PUBSUB", b"NUMSUB"]), [])
        self.assertEqual(run([b"PUBSUB", b"NUMPAT"]), 2)
        self.assertEqual(run([b"PUBSUB", b"NUMPAT", b"x"]),
                         Error("ERR wrong number of arguments for 'pubsub|numpat' command"))
        self.assertEqual(run([b"PUBSUB", b"CHANNELS", b"a", b"b"]),
                         Error("ERR unknown subcommand or wrong number of arguments for "
                               "'CHANNELS'. Try PUBSUB HELP."))
        self.assertEqual(run([b"PUBSUB", b"FOO"]),
                         Error("ERR unknown subcommand 'FOO'. Try PUBSUB HELP."))
        self.assertEqual(run([b"PUBSUB", b"HELP"])[0], Status(
            b"PUBSUB <subcommand> [<arg> [value] [opt] ...]. Subcommands are:"))

    def test_shardChannels(self) -> None:
        """SSUBSCRIBE counts shard channels only, and SPUBLISH sends smessage."""
        self.sub.execute([b"SUBSCRIBE", b"a"])
        self.assertEqual(self.sub.execute([b"SSUBSCRIBE", b"s"]), [b"ssubscribe", b"s", 1])
        self.assertEqual(self.pub.execute([b"SPUBLISH", b"s", b"m"]), 1)
        self.assertEqual(self.pushed[-1], [b"smessage", b"s", b"m"])
        self.assertEqual(self.pub.execute([b"PUBLISH", b"s", b"m"]), 0)
        self.assertEqual(self.pub.execute([b"PUBSUB", b"SHARDNUMSUB", b"s"]), [b"s", 1])
        self.assertEqual(self.pub.execute([b"PUBSUB", b"SHARDCHANNELS", b"s*"]), [b"s"])
        self.assertEqual(self.sub.execute([b"SUNSUBSCRIBE"]), [b"sunsubscribe", b"s", 0])
        self.assertEqual(self.sub.execute([b"SUNSUBSCRIBE"]), [b"sunsubscribe", None, 0])
        self.assertEqual(self.sub.execute([b"PUNSUBSCRIBE"]), [b"punsubscribe", None, 1])

    def test_quitAllowed(self) -> None:
        """QUIT works in the subscribed context."""
        self.sub.execute([b"SUBSCRIBE", b"a"])
        self.assertEqual(self.sub.execute([b"QUIT"]), OK)


class _Counted:
    """A stand-in Glob whose ``matches`` is given."""

    def __init__(self, matches) -> None:
        self.matches = matches


class WireTests(SynchronousTestCase):
    """Pub/sub served through the real front end: exact bytes."""

    def setUp(self) -> None:
        self.store = Store(Clock())
        self.factory = KVFactory(self.store)

    def connect(self):
        protocol = self.factory.buildProtocol(None)
        transport = StringTransport()
        protocol.makeConnection(transport)
        return protocol, transport

    def test_subscribeSeveral(self) -> None:
        """SUBSCRIBE a b answers once per channel, in order."""
        protocol, transport = self.connect()
        protocol.dataReceived(b"*3\r\n$9\r\nSUBSCRIBE\r\n$1\r\na\r\n$1\r\nb\r\n")
        self.assertEqual(transport.value(),
                         b"*3\r\n$9\r\nsubscribe\r\n$1\r\na\r\n:1\r\n"
                         b"*3\r\n$9\r\nsubscribe\r\n$1\r\nb\r\n:2\r\n")

    def test_publish(self) -> None:
        """PUBLISH delivers a message to each subscriber and counts them."""
        protocol, transport = self.connect()
        protocol.dataReceived(b"*2\r\n$9\r\nSUBSCRIBE\r\n$2\r\nch\r\n")
        transport.clear()
        publisher, out = self.connect()
        publisher.dataReceived(b"*3\r\n$7\r\nPUBLISH\r\n$2\r\nch\r\n$2\r\nhi\r\n")
        self.assertEqual(out.value(), b":1\r\n")
        self.assertEqual(transport.value(), b"*3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$2\r\nhi\r\n")

    def test_unsubscribeAll(self) -> None:
        """UNSUBSCRIBE without channels leaves every channel; with none it answers nil."""
        protocol, transport = self.connect()
        protocol.dataReceived(b"*3\r\n$9\r\nSUBSCRIBE\r\n$1\r\na\r\n$1\r\nb\r\n")
        transport.clear()
        protocol.dataReceived(b"*1\r\n$11\r\nUNSUBSCRIBE\r\n")
        self.assertEqual(transport.value(),
                         b"*3\r\n$11\r\nunsubscribe\r\n$1\r\na\r\n:1\r\n"
                         b"*3\r\n$11\r\nunsubscribe\r\n$1\r\nb\r\n:0\r\n")
        transport.clear()
        protocol.dataReceived(b"*1\r\n$11\r\nUNSUBSCRIBE\r\n")
        self.assertEqual(transport.value(), b"*3\r\n$11\r\nunsubscribe\r\n$-1\r\n:0\r\n")

    def test_resp3Pushes(self) -> None:
        """In RESP3 every confirmation and message is a push (>)."""
        protocol, transport = self.connect()
        protocol.dataReceived(b"*2\r\n$5\r\nHELLO\r\n$1\r\n3\r\n")
        transport.clear()
        protocol.dataReceived(b"*3\r\n$10\r\nPSUBSCRIBE\r\n$2\r\np*\r\n$1\r\nq\r\n")
        self.assertEqual(transport.value(),
                         b">3\r\n$10\r\npsubscribe\r\n$2\r\np*\r\n:1\r\n"
                         b">3\r\n$10\r\npsubscribe\r\n$1\r\nq\r\n:2\r\n")
        transport.clear()
        protocol.dataReceived(b"*3\r\n$7\r\nPUBLISH\r\n$2\r\npa\r\n$1\r\nm\r\n")
        self.assertEqual(transport.value(),
                         b">4\r\n$8\r\npmessage\r\n$2\r\np*\r\n$2\r\npa\r\n$1\r\nm\r\n:1\r\n")


# -- against a real redis-server -------------------------------------------------------

SCRIPT = [
    (0, [b"SUBSCRIBE", b"a", b"b"]),
    (0, [b"PSUBSCRIBE", b"a*", b"h?llo", b"x[a-c]"]),
    (0, [b"GET", b"k"]),
    (0, [b"pubsub", b"numpat"]),
    (0, [b"SET", b"k", b"v"]),
    (0, [b"GET"]),
    (1, [b"PUBLISH", b"a", b"one"]),
    (1, [b"PUBLISH", b"hello", b"two"]),
    (1, [b"PUBLISH", b"xb", b""]),
    (1, [b"PUBSUB", b"NUMSUB", b"a", b"b", b"c"]),
    (1, [b"PUBSUB", b"NUMPAT"]),
    (1, [b"PUBSUB", b"CHANNELS", b"[a]"]),
    (1, [b"PUBSUB", b"NUMPAT", b"x"]),
    (1, [b"PUBSUB", b"channels", b"x", b"y"]),
    (1, [b"PUBSUB", b"nope"]),
    (1, [b"PUBSUB"]),
    (0, [b"UNSUBSCRIBE", b"a", b"zz"]),
    (0, [b"PUNSUBSCRIBE", b"h?llo", b"zz"]),
    (0, [b"UNSUBSCRIBE", b"b"]),
    (0, [b"PUNSUBSCRIBE", b"a*"]),
    (0, [b"PUNSUBSCRIBE", b"x[a-c]"]),
    (0, [b"PUNSUBSCRIBE"]),
    (0, [b"UNSUBSCRIBE"]),
    (0, [b"GET", b"k"]),
    (0, [b"SSUBSCRIBE", b"s1", b"s2"]),
    (1, [b"SPUBLISH", b"s1", b"m"]),
    (1, [b"PUBSUB", b"SHARDNUMSUB", b"s1", b"s3"]),
    (0, [b"SUNSUBSCRIBE", b"s1"]),
    (0, [b"SUNSUBSCRIBE", b"s2"]),
    (0, [b"SUNSUBSCRIBE"]),
    (0, [b"SUBSCRIBE", b"a"]),
    (0, [b"RESET"]),
    (1, [b"PUBLISH", b"a", b"after-reset"]),
    (2, [b"HELLO", b"3"]),
    (2, [b"SUBSCRIBE", b"a"]),
    (2, [b"PSUBSCRIBE", b"*"]),
    (2, [b"GET", b"k"]),
    (1, [b"PUBLISH", b"a", b"resp3"]),
    (2, [b"PUBLISH", b"self", b"to-me"]),
    (2, [b"UNSUBSCRIBE", b"nope"]),
    (2, [b"PUNSUBSCRIBE"]),
    (2, [b"PUNSUBSCRIBE"]),
    (2, [b"UNSUBSCRIBE"]),
    (2, [b"SSUBSCRIBE", b"s"]),
    (1, [b"SPUBLISH", b"s", b"sm"]),
    (2, [b"SUNSUBSCRIBE"]),
    (2, [b"HELLO", b"2"]),
]


def _strip_hello(transcript: list) -> list:
    # HELLO's map names the server and its version: not part of what is compared.
    return [(step, conn, b"<hello>" if SCRIPT[step][1][0] == b"HELLO" and conn == 2 else data)
            for step, conn, data in transcript]


class DifferentialTests(SynchronousTestCase):
    """The same pub/sub script gives kvstore and redis-server the same bytes, RESP2 and RESP3."""

    def test_script(self) -> None:
        """Every step's replies and pushes on every connection are byte for byte Redis's."""
        server = start_redis_or_skip()
        self.addCleanup(server.stop)
        expected = _strip_hello(redis_transcript(server.port, 3, SCRIPT))
        got = _strip_hello(kvstore_transcript(3, SCRIPT))
        for want, have in zip(expected, got):
            self.assertEqual(have, want, SCRIPT[want[0]])


# -- end to end ------------------------------------------------------------------------


class ProcessTests(SynchronousTestCase):
    """A real kvstore process and redis-py's PubSub."""

    def test_redis_py_pubsub(self) -> None:
        """redis-py psubscribes, gets pmessages and keyspace notifications, and unsubscribes."""
        import redis

        from tests.procs import start_kvstore

        data = tempfile.mkdtemp(prefix="kvtwist-pubsub-")
        self.addCleanup(shutil.rmtree, data, True)
        proc = start_kvstore(data)
        self.addCleanup(proc.stop)
        for protocol in (2, 3):
            r = redis.Redis(port=proc.port, protocol=protocol, socket_timeout=10)
            self.addCleanup(r.close)
            self.assertTrue(r.config_set("notify-keyspace-events", "KEA"))
            self.assertEqual(r.config_get("notify-keyspace-events"),
                             {"notify-keyspace-events": "AKE"})
            p = r.pubsub()
            self.addCleanup(p.close)
            p.psubscribe("news.*", "__keyevent@0__:*")
            p.subscribe("plain")
            kinds = [p.get_message(timeout=10)["type"] for _ in range(3)]
            self.assertEqual(kinds, ["psubscribe", "psubscribe", "subscribe"])
            self.assertEqual(r.publish("news.today", "hello"), 1)
            self.assertEqual(r.publish("plain", "x"), 1)
            r.set("k%d" % protocol, "v", ex=100)
            got = [p.get_message(timeout=10) for _ in range(4)]
            self.assertEqual([(m["type"], m["channel"], m["data"]) for m in got], [
                ("pmessage", b"news.today", b"hello"), ("message", b"plain", b"x"),
                ("pmessage", b"__keyevent@0__:set", b"k%d" % protocol),
                ("pmessage", b"__keyevent@0__:expire", b"k%d" % protocol)])
            self.assertEqual(r.pubsub_numpat(), 2)
            p.punsubscribe()
            p.unsubscribe()
            kinds = sorted(p.get_message(timeout=10)["type"] for _ in range(3))
            self.assertEqual(kinds, ["punsubscribe", "punsubscribe", "unsubscribe"])
            self.assertEqual(r.pubsub_numpat(), 0)
            r.config_set("notify-keyspace-events", "")


