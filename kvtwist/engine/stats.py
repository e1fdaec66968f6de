"""What INFO's commandstats, errorstats, latencystats and stats sections count.

``Session.execute`` calls ``store.stats.called`` once per command with the nanoseconds the
handler took (time.perf_counter_ns: a duration, not a timestamp; timestamps come from the
store's injected clock). It also feeds the slow log and the latency monitor
(kvtwist.engine.slowlog) when a command is over their thresholds.
"""

from __future__ import annotations

import collections

from kvtwist.engine.slowlog import LatencyMonitor, SlowLog
from kvtwist.engine.table import SUBCOMMANDS
from kvtwist.wire.replies import Error

INFINITY = float("inf")
MAX_ERROR_CODES = 128  # Redis's ERROR_STATS_NUMBER: more distinct codes are not tracked
BUCKETS = 64  # latency histogram: bucket b holds durations in [2**(b-1), 2**b) nanoseconds
OPS_SAMPLES = 16  # STATS_METRIC_SAMPLES


class CommandStat:
    """Calls, time, rejections, failures and a latency histogram of one command."""

    __slots__ = ("name", "calls", "nanos", "rejected", "failed", "histogram", "key", "keys",
                 "subs", "fast")

    def __init__(self, name: bytes, command, container: bool = False) -> None:
        self.name = name
        self.calls = 0
        self.nanos = 0
        self.rejected = 0
        self.failed = 0
        self.histogram = [0] * BUCKETS
        self.fast = command is not None and "fast" in command.flags
        # readonly commands with keys count keyspace hits and misses: one key's position,
        # or the slice of several
        self.key = self.keys = None
        if (command is not None and "readonly" in command.flags and command.first_key > 0
                and not container):
            first, last = command.first_key, command.last_key
            if first == last:
                self.key = first
            else:
                self.keys = slice(first, None if last < 0 else last + 1, command.step)
        self.subs = {} if container else None


class Stats:
    """The store's statistics, the slow log and the latency monitor."""

    def __init__(self, clock) -> None:
        self.clock = clock
        self.commands: dict = {}  # Command -> CommandStat
        self.errors: dict = {}  # error code ("ERR", "WRONGTYPE") -> count
        self.error_replies = 0
        self.hits = 0
        self.misses = 0
        self.slowlog = SlowLog()
        self.latency = LatencyMonitor()
        self.slow_after = 10000000  # ns (slowlog-log-slower-than); INFINITY: off
        self.latency_after = INFINITY  # ns (latency-monitor-threshold); INFINITY: off
        self.threshold = self.slow_after  # the lower of the two: one test per command
        self.tracking = True  # latency-tracking
        self.percentiles = (50.0, 99.0, 99.9)  # latency-tracking-info-percentiles
        self.ops = collections.deque(maxlen=OPS_SAMPLES)  # per-second rates, newest last
        self._last_sample = None  # (time, total_commands_processed)

    def set_thresholds(self, slow_us: int = None, latency_ms: int = None) -> None:
        """Set slowlog-log-slower-than (us, negative: off) or latency-monitor-threshold (ms)."""
        if slow_us is not None:
            self.slow_after = INFINITY if slow_us < 0 else slow_us * 1000
        if latency_ms is not None:
            self.latency_after = INFINITY if latency_ms <= 0 else latency_ms * 1000000
        self.threshold = min(self.slow_after, self.latency_after)

    def called(self, session, command, argv, reply, elapsed: int) -> None:
        """Count one executed command (O(keys) for reads: each key's hit or miss)."""
        stat = self.commands.get(command)
        if stat is None or stat.subs is not None:
            stat = self._stat(command, argv)
        stat.calls += 1
        stat.nanos += elapsed
        if reply.__class__ is Error:
            stat.failed += 1
            self.error(reply)
        # After the handler: a read removed its expired keys, so membership is a hit.
        key = stat.key
        if key is not None:
            if key >= len(argv):  # a command whose key is optional (DUMP): no lookup
                pass
            elif argv[key] in session.keyspace.data:
                self.hits += 1
            else:
                self.misses += 1
        elif stat.keys is not None:
            data = session.keyspace.data
            for key in argv[stat.keys]:
                if key in data:
                    self.hits += 1
                else:
                    self.misses += 1
        if self.tracking:
            # below 64 for any duration under 292 years
            stat.histogram[elapsed.bit_length()] += 1
        if elapsed >= self.threshold:
            self._slow(session, command, stat, argv, elapsed)

    def _stat(self, command, argv) -> CommandStat:
        stat = self.commands.get(command)
        if stat is None:
            stat = self.commands[command] = CommandStat(
                command.name, command, command.name in SUBCOMMANDS)
        return stat if stat.subs is None else self._sub(stat, command, argv)

    def _sub(self, stat: CommandStat, command, argv) -> CommandStat:
        name = argv[1].lower() if len(argv) > 1 else b""
        sub = stat.subs.get(name)
        if sub is None:
            if name not in SUBCOMMANDS[command.name]:
                return stat
            sub = stat.subs[name] = CommandStat(command.name + b"|" + name, command)
        return sub

    def _slow(self, session, command, stat, argv, elapsed: int) -> None:
        now = int(self.clock.seconds())
        usec = elapsed // 1000
        if elapsed >= self.latency_after:
            self.latency.add(b"fast-command" if stat.fast else b"command", usec // 1000, now)
        if elapsed >= self.slow_after and command.name != b"exec":
            self.slowlog.push(session, argv, usec, now)

    def rejected(self, command, reply: Error) -> Error:
        """Count a command refused before it ran (arity, MISCONF, unknown); return ``reply``."""
        if command is not None:
            stat = self.commands.get(command)
            if stat is None:
                stat = self.commands[command] = CommandStat(
                    command.name, command, command.name in SUBCOMMANDS)
            stat.rejected += 1
        self.error(reply)
        return reply

    def error(self, reply: Error) -> None:
        """Count one error reply under its code (the message's first word)."""
        self.error_replies += 1
        code = reply.message.split(" ", 1)[0]
        errors = self.errors
        if code in errors:
            errors[code] += 1
        elif len(errors) < MAX_ERROR_CODES:
            errors[code] = 1

    def sample(self, processed: int) -> None:
        """Record the command rate since the last sample (call it about every 100 ms)."""
        now = self.clock.seconds()
        last = self._last_sample
        self._last_sample = (now, processed)
        if last is not None and now > last[0]:
            self.ops.append((processed - last[1]) / (now - last[0]))

    def ops_per_sec(self) -> int:
        """Return the average command rate over the last samples, as Redis's instantaneous."""
        return int(sum(self.ops) / len(self.ops)) if self.ops else 0

    def reset(self) -> None:
        """Forget every counter CONFIG RESETSTAT resets (not the slow log or latency events)."""
        self.commands.clear()
        self.errors.clear()
        self.error_replies = self.hits = self.misses = 0
        self.ops.clear()

    def percentile_line(self, stat: CommandStat) -> str:
        """Return ``p50=..,p99=..,p99.9=..`` for a command: each bucket's upper bound in us.

        O(BUCKETS x percentiles)."""
        total = sum(stat.histogram)
        if not total:
            return ""
        out = []
        for percentile in self.percentiles:
            wanted = max(1, -(-total * percentile // 100))
            seen = 0
            value = 0
            for bucket, count in enumerate(stat.histogram):
                seen += count
                if seen >= wanted:
                    value = (1 << bucket) / 1000.0
                    break
            out.append("p%s=%.3f" % (_trim(percentile), value))
        return ",".join(out)


def _trim(number: float) -> str:
    text = "%f" % number
    return text.rstrip("0").rstrip(".") if "." in text else text

