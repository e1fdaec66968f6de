"""Pub/sub as Redis 7.0's pubsub.c: channels, patterns, shard channels and PUBSUB.

A session subscribed to anything is *in the subscribed context*: in RESP2 it may then run
only (P|S)SUBSCRIBE, (P|S)UNSUBSCRIBE, PING (answered ``["pong", message]``), QUIT and
RESET, as in Redis; RESP3 has no such limit. The check costs nothing to other sessions: a
subscribed session gets its own ``execute`` (an instance attribute wrapping the class's),
removed when its last subscription goes.
"""

from __future__ import annotations

from kvtwist.engine.glob import compile_glob
from kvtwist.engine.table import _LOOKUP, register, sub_dispatch
from kvtwist.wire.replies import CommandError, Error, Push, Status

# The commands a RESP2 session may run while subscribed (Redis's processCommand).
_ALLOWED = frozenset([b"subscribe", b"ssubscribe", b"psubscribe", b"unsubscribe",
                      b"sunsubscribe", b"punsubscribe", b"ping", b"quit", b"exit", b"reset"])
# Commands Redis 7 knows as containers: an error names them "container|subcommand".
_CONTAINERS = frozenset([b"client", b"config", b"pubsub", b"command", b"object", b"memory",
                         b"slowlog", b"latency", b"script", b"function", b"acl", b"cluster",
                         b"module", b"xinfo", b"xgroup"])

_CONTEXT = ("ERR Can't execute '%s': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT "
            "/ RESET are allowed in this context")


class _Subscriptions:
    """One session's subscriptions, each kind in the order it subscribed."""

    __slots__ = ("channels", "patterns", "shard")

    def __init__(self) -> None:
        self.channels = {}  # channel -> None (an ordered set)
        self.patterns = {}
        self.shard = {}

    def count(self) -> int:
        """Channels plus patterns: the number Redis reports for (P)(UN)SUBSCRIBE."""
        return len(self.channels) + len(self.patterns)

    def total(self) -> int:
        return len(self.channels) + len(self.patterns) + len(self.shard)


class PubSub:
    """A store's subscriptions: channel, pattern and shard channel to subscribed sessions.

    ``channels``/``shard`` map a channel to ``{session id: session}``; ``patterns`` maps
    a pattern to ``(glob, {session id: session})``; ``clients`` maps a session id to its
    L{_Subscriptions}. A channel or pattern nobody is subscribed to has no entry, so
    PUBSUB CHANNELS lists active ones only and NUMPAT is O(1).
    """

    def __init__(self, store) -> None:
        self.store = store
        self.channels = {}
        self.patterns = {}
        self.shard = {}
        self.clients = {}

    # -- subscriptions ---------------------------------------------------------------

    def _state(self, session) -> _Subscriptions:
        state = self.clients.get(session.id)
        if state is None:
            state = self.clients[session.id] = _Subscriptions()
            # The subscribed context: this client alone pays for the check.
            session.execute = _guard(session, session.execute)
        return state

    def _settle(self, session, state: _Subscriptions) -> None:
        # Leaving the subscribed context once nothing is left, as Redis clears CLIENT_PUBSUB.
        if not state.total() and self.clients.get(session.id) is state:
            del self.clients[session.id]
            session.__dict__.pop("execute", None)

    def subscribe(self, session, channel: bytes, shard: bool = False) -> int:
        """Subscribe ``session`` to ``channel``; return Redis's count for the reply."""
        state = self._state(session)
        mine, table = (state.shard, self.shard) if shard else (state.channels, self.channels)
        if channel not in mine:
            mine[channel] = None
            table.setdefault(channel, {})[session.id] = session
        return len(state.shard) if shard else state.count()

    def unsubscribe(self, session, channel: bytes, shard: bool = False) -> int:
        """Unsubscribe ``session`` from ``channel``; return Redis's count for the reply."""
        state = self.clients.get(session.id)
        if state is None:
            return 0
        mine, table = (state.shard, self.shard) if shard else (state.channels, self.channels)
        if channel in mine:
            del mine[channel]
            members = table.get(channel)
            if members is not None:
                members.pop(session.id, None)
                if not members:
                    del table[channel]
        count = len(state.shard) if shard else state.count()
        self._settle(session, state)
        return count

    def psubscribe(self, session, pattern: bytes) -> int:
        """Subscribe ``session`` to ``pattern``: O(len(pattern)) to compile it once."""
        state = self._state(session)
        if pattern not in state.patterns:
            state.patterns[pattern] = None
            entry = self.patterns.get(pattern)
            if entry is None:
                entry = self.patterns[pattern] = (compile_glob(pattern), {})
            entry[1][session.id] = session
        return state.count()

    def punsubscribe(self, session, pattern: bytes) -> int:
        """Unsubscribe ``session`` from ``pattern``; return its channels plus patterns."""
        state = self.clients.get(session.id)
        if state is None:
            return 0
        if pattern in state.patterns:
            del state.patterns[pattern]
            entry = self.patterns.get(pattern)
            if entry is not None:
                entry[1].pop(session.id, None)
                if not entry[1]:
                    del self.patterns[pattern]
        count = state.count()
        self._settle(session, state)
        return count

    def subscribed(self, session, kind: str) -> list:
        """Return ``session``'s channels, patterns or shard channels (``kind``), in order."""
        state = self.clients.get(session.id)
        return list(getattr(state, kind)) if state is not None else []

    def leave_all(self, session) -> None:
        """Drop every subscription of ``session`` (RESET, a closed connection): no replies."""
        state = self.clients.get(session.id)
        if state is None:
            return
        for channel in list(state.channels):
            self.unsubscribe(session, channel)
        for channel in list(state.shard):
            self.unsubscribe(session, channel, True)
        for pattern in list(state.patterns):
            self.punsubscribe(session, pattern)

    # -- publishing -------------------------------------------------------------------

    def publish(self, channel: bytes, message: bytes) -> int:
        """Send ``message`` to ``channel``'s subscribers, then to those of each pattern
        matching it; return how many deliveries were made (Redis's receiver count).

        O(N + M) as Redis's: N deliveries, M patterns subscribed to (each matched against
        the channel once, whatever its number of subscribers, at O(len(channel) x widest
        pattern segment), see glob.compile_glob); the message itself is never copied.
        """
        count = 0
        members = self.channels.get(channel)
        if members:
            payload = Push([b"message", channel, message])
            count += _deliver(self, members, payload)
        if self.patterns:
            for pattern, (glob, members) in list(self.patterns.items()):
                if glob.matches(channel):
                    count += _deliver(self, members, Push([b"pmessage", pattern, channel,
                                                           message]))
        return count

    def spublish(self, channel: bytes, message: bytes) -> int:
        """Send ``message`` to the subscribers of shard channel ``channel``: O(N)."""
        members = self.shard.get(channel)
        if not members:
            return 0
        return _deliver(self, members, Push([b"smessage", channel, message]))


def _deliver(pubsub: PubSub, members: dict, payload) -> int:
    clients = pubsub.store.clients
    count = 0
    for session_id, session in list(members.items()):
        if session_id not in clients:  # gone without drop_session telling us
            pubsub.leave_all(session)
            continue
        push = session.push
        if push is not None:
            push(payload)
        count += 1
    return count


def pubsub_for(store) -> PubSub:
    """Return the store's PubSub, creating it on first use."""
    pubsub = getattr(store, "pubsub", None)
    if pubsub is None:
        pubsub = store.pubsub = PubSub(store)
    return pubsub


# -- the subscribed context ---------------------------------------------------------


def _guard(session, execute):
    """Return ``execute`` refusing what Redis refuses to a RESP2 subscribed client."""

    def guarded(argv):
        if session.protocol != 2 or not argv:
            return execute(argv)
        command = _LOOKUP.get(argv[0]) or _LOOKUP.get(argv[0].lower())
        if command is None:
            return execute(argv)
        arity = command.arity
        if (len(argv) != arity) if arity > 0 else (len(argv) < -arity):
            return execute(argv)  # unknown commands and arity errors come first
        name = command.name
        if name == b"ping" and len(argv) <= 2:
            return [b"pong", argv[1] if len(argv) > 1 else b""]
        if name in _ALLOWED:
            return execute(argv)
        if name in _CONTAINERS and len(argv) > 1:
            name = name + b"|" + argv[1].lower()
        if session.multi is not None:
            session.multi.failed = True
        return Error(_CONTEXT % (name.decode("utf-8", "replace"),))

    return guarded


# -- SUBSCRIBE and friends -------------------------------------------------------------


def _confirm(session, kind: bytes, channel, count: int, last: bool):
    # One reply per channel: all but the last go out through push, ahead of the last.
    reply = Push([kind, channel, count])
    if last or session.push is None:
        return reply
    session.push(reply)
    return None


def _subscribe(session, names: list, kind: bytes, join):
    reply = None
    last = len(names) - 1
    for index, name in enumerate(names):
        reply = _confirm(session, kind, name, join(session, name), index == last)
    return reply


def _unsubscribe(session, names: list, kind: bytes, leave, count: int):
    if not names:
        return Push([kind, None, count])
    return _subscribe(session, names, kind, leave)


@register("subscribe", -2, "pubsub noscript loading stale", 0, 0, 0)
def cmd_subscribe(session, argv):
    """SUBSCRIBE channel...: O(number of channels)."""
    return _subscribe(session, argv[1:], b"subscribe", pubsub_for(session.store).subscribe)


@register("unsubscribe", -1, "pubsub noscript loading stale", 0, 0, 0)
def cmd_unsubscribe(session, argv):
    """UNSUBSCRIBE [channel...]: O(number of channels), all of the session's without any."""
    pubsub = pubsub_for(session.store)
    names = argv[1:] or pubsub.subscribed(session, "channels")
    state = pubsub.clients.get(session.id)
    return _unsubscribe(session, names, b"unsubscribe", pubsub.unsubscribe,
                        state.count() if state is not None else 0)


@register("psubscribe", -2, "pubsub noscript loading stale", 0, 0, 0)
def cmd_psubscribe(session, argv):
    """PSUBSCRIBE pattern...: O(total length of the patterns)."""
    return _subscribe(session, argv[1:], b"psubscribe", pubsub_for(session.store).psubscribe)


@register("punsubscribe", -1, "pubsub noscript loading stale", 0, 0, 0)
def cmd_punsubscribe(session, argv):
    """PUNSUBSCRIBE [pattern...]: O(number of patterns), all of the session's without any."""
    pubsub = pubsub_for(session.store)
    names = argv[1:] or pubsub.subscribed(session, "patterns")
    state = pubsub.clients.get(session.id)
    return _unsubscribe(session, names, b"punsubscribe", pubsub.punsubscribe,
                        state.count() if state is not None else 0)


@register("ssubscribe", -2, "pubsub noscript loading stale", 1, -1, 1)
def cmd_ssubscribe(session, argv):
    """SSUBSCRIBE shardchannel...: O(number of channels); one shard here (standalone)."""
    pubsub = pubsub_for(session.store)
    return _subscribe(session, argv[1:], b"ssubscribe",
                      lambda session, name: pubsub.subscribe(session, name, True))


@register("sunsubscribe", -1, "pubsub noscript loading stale", 1, -1, 1)
def cmd_sunsubscribe(session, argv):
    """SUNSUBSCRIBE [shardchannel...]: O(number of channels)."""
    pubsub = pubsub_for(session.store)
    names = argv[1:] or pubsub.subscribed(session, "shard")
    state = pubsub.clients.get(session.id)
    return _unsubscribe(session, names, b"sunsubscribe",
                        lambda session, name: pubsub.unsubscribe(session, name, True),
                        len(state.shard) if state is not None else 0)


@register("publish", 3, "pubsub loading stale fast", 0, 0, 0)
def cmd_publish(session, argv):
    """PUBLISH channel message: O(N + M), see L{PubSub.publish}."""
    return pubsub_for(session.store).publish(argv[1], argv[2])


@register("spublish", 3, "pubsub loading stale fast", 1, 1, 1)
def cmd_spublish(session, argv):
    """SPUBLISH shardchannel message: O(N) subscribers."""
    return pubsub_for(session.store).spublish(argv[1], argv[2])


# -- PUBSUB ----------------------------------------------------------------------------


def _active(table: dict, argv) -> list:
    # O(active channels x match cost), as Redis's PUBSUB CHANNELS.
    if len(argv) > 3:
        raise_syntax(argv)
    if len(argv) == 2:
        return list(table)
    match = compile_glob(argv[2]).matches
    return [channel for channel in table if match(channel)]


def raise_syntax(argv):
    """Raise Redis's addReplySubcommandSyntaxError for a PUBSUB subcommand."""
    raise CommandError("ERR unknown subcommand or wrong number of arguments for '%s'. Try "
                       "PUBSUB HELP." % (argv[1].decode("utf-8", "replace"),))


def _numsub(table: dict, argv) -> list:
    reply = []
    for channel in argv[2:]:
        reply.append(channel)
        reply.append(len(table.get(channel, ())))
    return reply


_HELP = [
    "CHANNELS [<pattern>]",
    "    Return the currently active channels matching a <pattern> (default: '*').",
    "NUMPAT",
    "    Return number of subscriptions to patterns.",
    "NUMSUB [<channel> ...]",
    "    Return the number of subscribers for the specified channels, excluding",
    "    pattern subscriptions(default: no channels).",
    "SHARDCHANNELS [<pattern>]",
    "    Return the currently active shard level channels matching a <pattern> (default: "
    "'*').",
    "SHARDNUMSUB [<shardchannel> ...]",
    "    Return the number of subscribers for the specified shard level channel(s)",
    "HELP",
    "    Prints this help.",
]

PUBSUB_SUBCOMMANDS = {
    b"channels": (-2, lambda session, argv: _active(pubsub_for(session.store).channels, argv)),
    b"numsub": (-2, lambda session, argv: _numsub(pubsub_for(session.store).channels, argv)),
    b"numpat": (2, lambda session, argv: len(pubsub_for(session.store).patterns)),
    b"shardchannels": (-2, lambda session, argv: _active(pubsub_for(session.store).shard,
                                                         argv)),
    b"shardnumsub": (-2, lambda session, argv: _numsub(pubsub_for(session.store).shard, argv)),
    b"help": (2, lambda session, argv: [
        Status(b"PUBSUB <subcommand> [<arg> [value] [opt] ...]. Subcommands are:")]
        + [Status(line.encode()) for line in _HELP]),
}


@register("pubsub", -2, "", 0, 0, 0)
def cmd_pubsub(session, argv):
    """PUBSUB CHANNELS|NUMSUB|NUMPAT|SHARDCHANNELS|SHARDNUMSUB|HELP."""
    return sub_dispatch(PUBSUB_SUBCOMMANDS, argv, session)
