"""SLOWLOG and LATENCY: the slow log and the latency monitor, as Redis 7.0 keeps them.

Both are fed by kvtwist.engine.stats after each command (``store.stats``); their thresholds
are the configuration parameters slowlog-log-slower-than, slowlog-max-len and
latency-monitor-threshold (kvtwist.engine.config).
"""

from __future__ import annotations

import collections

from kvtwist.engine.monitor import REDACTING, redacted
from kvtwist.engine.table import TABLE, register, sub_dispatch, subcommands
from kvtwist.wire.replies import OK, CommandError, Pairs, Status

MAX_ARGC = 32  # SLOWLOG_ENTRY_MAX_ARGC
MAX_STRING = 128  # SLOWLOG_ENTRY_MAX_STRING
LATENCY_TS_LEN = 160  # samples kept per latency event


def _help(container: bytes, lines) -> list:
    lines = ([b"%s <subcommand> [<arg> [value] [opt] ...]. Subcommands are:" % container]
             + [line.encode() for line in lines] + [b"HELP", b"    Prints this help."])
    return [Status(line) for line in lines]


class SlowLog:
    """The newest-first list of commands slower than the threshold, at most ``max_len``."""

    def __init__(self) -> None:
        self.entries = collections.deque()
        self.max_len = 128
        self.next_id = 0

    def push(self, session, argv, duration_us: int, now: int) -> None:
        """Log one command; O(len(argv)) for its (truncated) arguments."""
        if argv and argv[0].lower() in REDACTING:  # passwords never reach the log
            argv = redacted(argv)
        argc = len(argv)
        kept = argv[:MAX_ARGC]
        logged = [arg if len(arg) <= MAX_STRING
                  else arg[:MAX_STRING] + b"... (%d more bytes)" % (len(arg) - MAX_STRING,)
                  for arg in kept]
        if argc > MAX_ARGC:
            logged[-1] = b"... (%d more arguments)" % (argc - MAX_ARGC + 1,)
        peer = getattr(session, "peer", "") or ""
        self.entries.appendleft([self.next_id, now, duration_us, logged,
                                 peer.encode("utf-8", "replace"), session.name or b""])
        self.next_id += 1
        self.trim()

    def trim(self) -> None:
        """Drop the oldest entries beyond ``max_len`` (after CONFIG SET slowlog-max-len)."""
        entries = self.entries
        while len(entries) > self.max_len:
            entries.pop()


class LatencyMonitor:
    """Per event ("command", "fast-command"): up to 160 one-per-second samples and the max."""

    def __init__(self) -> None:
        self.events: dict = {}  # name (bytes) -> [deque of [time, ms], max ms]

    def add(self, event: bytes, latency_ms: int, now: int) -> None:
        """Record a sample; one sample per second is kept (the largest), as Redis does."""
        series = self.events.get(event)
        if series is None:
            series = self.events[event] = [collections.deque(maxlen=LATENCY_TS_LEN), 0]
        if latency_ms > series[1]:
            series[1] = latency_ms
        samples = series[0]
        if samples and samples[-1][0] == now:
            if latency_ms > samples[-1][1]:
                samples[-1][1] = latency_ms
            return
        samples.append([now, latency_ms])


# -- SLOWLOG ------------------------------------------------------------------------


def _slowlog_get(session, argv):
    entries = session.store.stats.slowlog.entries
    count = 10
    if len(argv) == 3:
        try:
            count = int(argv[2])
            if b"%d" % count != argv[2] or count < -1:
                raise ValueError(argv[2])
        except ValueError:
            raise CommandError("ERR count should be greater than or equal to -1")
        if count == -1:
            count = len(entries)
    return [list(entry) for entry in list(entries)[:count]]


def _slowlog_reset(session, argv):
    session.store.stats.slowlog.entries.clear()
    return OK


SLOWLOG_SUBCOMMANDS = subcommands("slowlog")
SLOWLOG_SUBCOMMANDS.update({
    b"get": (-2, _slowlog_get),
    b"len": (2, lambda session, argv: len(session.store.stats.slowlog.entries)),
    b"reset": (2, _slowlog_reset),
    b"help": (2, lambda session, argv: _help(b"SLOWLOG", [
        "GET [<count>]",
        "    Return top <count> entries from the slowlog (default: 10, -1 mean all).",
        "    Entries are made of:",
        "    id, timestamp, time in microseconds, arguments array, client IP and port,",
        "    client name", "LEN", "    Return the length of the slowlog.", "RESET",
        "    Reset the slowlog."])),
})


@register("slowlog", -2, "admin random loading stale", 0, 0, 0)
def cmd_slowlog(session, argv):
    if len(argv) > 3 and argv[1].lower() == b"get":
        raise CommandError("ERR unknown subcommand or wrong number of arguments for '%s'. "
                           "Try SLOWLOG HELP." % (argv[1].decode("utf-8", "replace"),))
    return sub_dispatch(SLOWLOG_SUBCOMMANDS, argv, session)


# -- LATENCY ------------------------------------------------------------------------


def _latency_latest(session, argv):
    return [[event, series[0][-1][0], series[0][-1][1], series[1]]
            for event, series in session.store.stats.latency.events.items()]


def _latency_history(session, argv):
    series = session.store.stats.latency.events.get(argv[2])
    return [] if series is None else [list(sample) for sample in series[0]]


def _latency_reset(session, argv):
    events = session.store.stats.latency.events
    if len(argv) == 2:
        count = len(events)
        events.clear()
        return count
    count = 0
    for name in argv[2:]:
        for event in [each for each in events if each.lower() == name.lower()]:
            del events[event]
            count += 1
    return count


def _latency_doctor(session, argv):
    """A short report: each event's sample count, latest and highest latency (O(events))."""
    events = session.store.stats.latency.events
    if not events:
        text = ("Dave, no latency spike was observed during the lifetime of this Redis "
                "instance, not in the slightest bit. I honestly think you ought to sit down "
                "calmly, take a stress pill, and think things over.\n")
    else:
        text = "Dave, I have observed latency spikes in this Redis instance.\n\n"
        for number, (event, series) in enumerate(sorted(events.items()), 1):
            samples = series[0]
            average = sum(sample[1] for sample in samples) // len(samples)
            text += ("%d. %s: %d latency spikes (average %dms, mean deviation 0ms, period "
                     "0 sec). Worst all time event %dms.\n" % (
                         number, event.decode("utf-8", "replace"), len(samples), average,
                         series[1]))
    return text.encode()


def _cdf(stat) -> Pairs:
    # Redis's fillCommandCDF: calls, then cumulative counts by bucket bound in microseconds
    # (kvtwist's buckets are powers of two nanoseconds; below 1024 ns they all count as 1 us).
    histogram, seen = [], 0
    for bucket, count in enumerate(stat.histogram):
        if count:
            seen += count
            bound = 1 << max(0, bucket - 10)
            if histogram and histogram[-1][0] == bound:
                histogram[-1] = (bound, seen)
            else:
                histogram.append((bound, seen))
    return Pairs([(b"calls", stat.calls), (b"histogram_usec", Pairs(histogram))])


def _latency_histogram(session, argv):
    """LATENCY HISTOGRAM [command ...]: O(commands x 64 buckets)."""
    commands = session.store.stats.commands
    wanted = []
    if len(argv) == 2:
        for stat in commands.values():
            wanted.extend(stat.subs.values() if stat.subs is not None else [stat])
    else:
        seen = set()
        for raw in argv[2:]:
            name, _, sub = raw.lower().partition(b"|")
            command = TABLE.get(name)
            stat = commands.get(command) if command is not None else None
            if stat is None:
                continue
            if stat.subs is None:
                found = [] if sub else [stat]
            elif sub:
                found = [stat.subs[sub]] if sub in stat.subs else []
            else:
                found = list(stat.subs.values())
            for each in found:
                if each.name not in seen:
                    seen.add(each.name)
                    wanted.append(each)
    return Pairs([(stat.name, _cdf(stat)) for stat in wanted if any(stat.histogram)])


LATENCY_SUBCOMMANDS = subcommands("latency")
LATENCY_SUBCOMMANDS.update({
    b"latest": (2, _latency_latest),
    b"history": (3, _latency_history),
    b"reset": (-2, _latency_reset),
    b"doctor": (2, _latency_doctor),
    b"histogram": (-2, _latency_histogram),
    b"help": (2, lambda session, argv: _help(b"LATENCY", [
        "DOCTOR", "    Return a human readable latency analysis report.",
        "HISTORY <event>", "    Return time-latency samples for the <event> class.",
        "LATEST", "    Return the latest latency samples for all events.",
        "RESET [<event> ...]", "    Reset latency data of one or more <event> classes.",
        "    (default: reset all data for all event classes)", "HISTOGRAM [COMMAND ...]",
        "    Return a cumulative distribution of latencies in the format of a histogram for "
        "the specified command names.",
        "    If no commands are specified then all histograms are replied."])),
})


@register("latency", -2, "admin noscript loading stale", 0, 0, 0)
def cmd_latency(session, argv):
    return sub_dispatch(LATENCY_SUBCOMMANDS, argv, session)
