"""The soak test's figures: latencies, incidents and violations, summed up around the kill."""

from __future__ import annotations

import heapq
from array import array
from collections import Counter

PATHS = ("proxy", "direct")
MAX_INCIDENTS = 100000  # incidents kept for the summary; more are only counted
EXAMPLES = 20  # violations quoted per run
SLOWEST = 10  # slowest small requests quoted
BIG_TIMELINE = 200  # big requests listed with their times


def percentile(ordered, fraction: float) -> float:
    """Nearest-rank percentile of an ascending sequence (0.0 when empty)."""
    if not ordered:
        return 0.0
    rank = max(1, int(-(-fraction * len(ordered) // 1)))
    return ordered[min(rank, len(ordered)) - 1]


def overlaps(start: float, end: float, window) -> bool:
    """Whether [start, end] meets the closed interval ``window`` (None: no window)."""
    return window is not None and end >= window[0] and start <= window[1]


class Figures:
    """What the clients of a run report, as it happens.

    Small requests' latencies are kept per path as two arrays (send time, seconds):
    16 bytes a request. Incidents are errors replies, lost connections and refused
    connects: ``(kind, start, end, client, path, detail)``.
    """

    def __init__(self) -> None:
        self.replies = dict((path, 0) for path in PATHS)
        self.bytes_in = 0
        self.bytes_out = 0
        self.connects = 0
        self.acks = 0
        self.sent_at = dict((path, array("d")) for path in PATHS)
        self.seconds = dict((path, array("d")) for path in PATHS)
        self.kinds = dict((path, array("B")) for path in PATHS)  # index into kind_names
        self.kind_names = []  # "<op> <role>": which command, sent by which kind of client
        self._kind_index = {}
        self.big_ops = []  # (op, path, sent_at, seconds)
        self.lags = array("d")  # how late each of the load generator's ticks ran
        self.lag_at = array("d")  # when each was due
        self.incidents = []
        self.dropped_incidents = 0
        self.violations = Counter()
        self.examples = []
        self.kill_at = None
        self.first_ack = {}  # path -> when the first write sent after the kill was acked

    def latency(self, path: str, sent_at: float, seconds: float, kind: str = "") -> None:
        index = self._kind_index.get(kind)
        if index is None:
            index = self._kind_index[kind] = len(self.kind_names)
            self.kind_names.append(kind)
        self.sent_at[path].append(sent_at)
        self.seconds[path].append(seconds)
        self.kinds[path].append(index)

    def incident(self, kind: str, start: float, end: float, client, detail="") -> None:
        if len(self.incidents) < MAX_INCIDENTS:
            self.incidents.append((kind, start, end, client.cid, client.path, str(detail)))
        else:
            self.dropped_incidents += 1

    def error(self, start: float, end: float, client, op: str, message: str) -> None:
        self.incident("error", start, end, client, "%s: %s" % (op, message))

    def acknowledged(self, client, sent_at: float, now: float) -> None:
        self.acks += 1
        if (self.kill_at is not None and sent_at > self.kill_at
                and client.path not in self.first_ack):
            self.first_ack[client.path] = now

    def violation(self, kind: str, detail: str) -> None:
        self.violations[kind] += 1
        if len(self.examples) < EXAMPLES:
            self.examples.append("%s: %s" % (kind, detail))

    def recovered_at(self):
        """When writes were acknowledged again on every path after the kill, or None."""
        if self.kill_at is None or any(path not in self.first_ack for path in PATHS):
            return None
        return max(self.first_ack.values())

    def summary(self, started: float, warmup: float, window) -> dict:
        """Sum up: latencies (ms) of small requests sent after ``started + warmup``
        outside ``window`` (start, end) and within it, incidents inside and outside it.

        O(n log n) in the number of small requests.
        """
        result = {"replies": dict(self.replies), "bytes_in": self.bytes_in,
                  "bytes_out": self.bytes_out, "connects": self.connects,
                  "acknowledged_writes": self.acks}
        cutoff = started + warmup
        outside_all = []
        by_kind = {}
        for path in PATHS:
            outside, inside, early = [], [], []
            for sent_at, seconds, kind in zip(self.sent_at[path], self.seconds[path],
                                              self.kinds[path]):
                if sent_at < cutoff:
                    early.append(seconds)
                elif overlaps(sent_at, sent_at + seconds, window):
                    inside.append(seconds)
                else:
                    outside.append(seconds)
                    by_kind.setdefault("%s %s" % (path, self.kind_names[kind]),
                                       []).append(seconds)
            outside_all += outside
            result["small_" + path] = _latencies(outside)
            result["small_%s_kill_window" % (path,)] = _latencies(inside)
            result["small_%s_warmup" % (path,)] = _latencies(early)
        result["small"] = _latencies(outside_all)
        result["small_by_kind"] = dict((kind, _latencies(seconds))
                                       for kind, seconds in by_kind.items())
        slowest = heapq.nlargest(SLOWEST, (
            (seconds, sent_at, path) for path in PATHS
            for sent_at, seconds in zip(self.sent_at[path], self.seconds[path])
            if sent_at >= cutoff and not overlaps(sent_at, sent_at + seconds, window)))
        result["small_slowest"] = ["%.1f ms at +%.2f s (%s)"
                                   % (seconds * 1000, sent_at - started, path)
                                   for seconds, sent_at, path in slowest]
        result["small_by_second"] = by_second(
            ((sent_at, seconds) for path in PATHS
             for sent_at, seconds in zip(self.sent_at[path], self.seconds[path])), started)
        for op in ("SET", "GET"):
            for path in PATHS:
                result["big_%s_%s" % (op, path)] = _latencies(
                    [seconds for kind, where, _, seconds in self.big_ops
                     if kind == op and where == path])
        result["big_ops_timeline"] = ["%s %s at +%.2f s: %.0f ms" % (
            op, path, sent_at - started, seconds * 1000)
            for op, path, sent_at, seconds in self.big_ops[:BIG_TIMELINE]]
        counts = Counter()
        outside_examples = []
        for kind, start, end, cid, path, detail in self.incidents:
            where = "in_window" if overlaps(start, end, window) else "outside"
            counts["%s_%s" % (kind, where)] += 1
            if where == "outside" and len(outside_examples) < EXAMPLES:
                outside_examples.append("%s at +%.2f s, client %d (%s): %s"
                                        % (kind, start - started, cid, path, detail))
        result["load_generator_timer_lag"] = _latencies(self.lags)
        result["load_generator_worst_lags"] = [
            "%.0f ms at +%.2f s" % (lag * 1000, due - started)
            for lag, due in heapq.nlargest(SLOWEST, zip(self.lags, self.lag_at))]
        result["incidents"] = dict(counts)
        result["incidents_dropped"] = self.dropped_incidents
        result["incidents_outside_examples"] = outside_examples
        result["violations"] = dict(self.violations)
        result["violation_examples"] = list(self.examples)
        return result


def by_second(samples, started: float) -> list:
    """Small requests per whole second of the run, by send time: one line a second with
    their count, p99 and maximum in ms. Shows whether slow requests cluster (a start-up,
    the restart after the kill) or spread over the run. O(n log n) in the samples."""
    buckets = {}
    for sent_at, seconds in samples:
        buckets.setdefault(int(sent_at - started), []).append(seconds)
    lines = []
    for second in sorted(buckets):
        ordered = sorted(buckets[second])
        lines.append("+%d s: %d, p99 %.1f, max %.1f" % (
            second, len(ordered), percentile(ordered, 0.99) * 1000, ordered[-1] * 1000))
    return lines


def _latencies(seconds: list) -> dict:
    ordered = sorted(seconds)
    return {"count": len(ordered), "p50_ms": round(percentile(ordered, 0.50) * 1000, 2),
            "p99_ms": round(percentile(ordered, 0.99) * 1000, 2),
            "max_ms": round((ordered[-1] if ordered else 0.0) * 1000, 2)}
