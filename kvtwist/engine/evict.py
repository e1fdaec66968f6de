"""maxmemory and eviction, as Redis's evict.c: the policies, sampling, and the OOM refusal.

The data's size is the estimate ``store.databases.meter.used`` (see keyspace.Meter): each
key counts its key and value lengths plus a fixed overhead. Before every command, while it
is over ``maxmemory``, keys are evicted by ``maxmemory-policy`` until it is not; if nothing
can be evicted (``noeviction``, or no key with an expiry under a ``volatile-*`` policy),
commands flagged ``denyoom`` (those that can grow the data) get Redis's OOM error and the
others run. An eviction is a DEL logged to the journal like any other (a restart does not
bring the key back), told to CLIENT TRACKING clients, sent as an ``evicted`` keyspace
notification, and counted in INFO's ``evicted_keys``.

Policies (each picks the best of ``maxmemory-samples`` random keys, as Redis's
approximated algorithms do): ``allkeys-lru`` / ``volatile-lru`` (least recently used, from
the access times OBJECT IDLETIME reports), ``allkeys-random`` / ``volatile-random``,
``volatile-ttl`` (nearest expiry), ``allkeys-lfu`` / ``volatile-lfu`` (least frequently
used: Redis's 8-bit logarithmic access counter, see ``lfu_touch``). Cost: O(samples) per
key evicted.

Under an LFU policy a key's entry in ``keyspace.access`` holds its LFU state instead of
its access time, encoded as a negative float (Redis likewise reuses the object's 24 LRU
bits): ``-(1 + (counter << 16 | minutes))``. Switching between LRU and LFU leaves the
other kind of data in place until keys are accessed again, as Redis warns.
"""

from __future__ import annotations

import random

from kvtwist.engine.events import EVICTED
from kvtwist.engine.table import define_config, integer_parameter

INT_MAX = 2 ** 31 - 1

OOM = "OOM command not allowed when used memory > 'maxmemory'."
POLICIES = ("volatile-lru", "volatile-lfu", "volatile-random", "volatile-ttl", "allkeys-lru",
            "allkeys-lfu", "allkeys-random", "noeviction")
LFU_INIT_VAL = 5
# The most keys one command's eviction may remove: a bound on the pause it causes.
_MAX_EVICTIONS = 10000
# Draws of the scan order per sample before giving up on finding an expiring key.
_VOLATILE_TRIES = 16


class Evictor:
    """Evicts keys of a store by its policy until its data fits in ``maxmemory``."""

    def __init__(self, store) -> None:
        self.store = store
        self.policy = "noeviction"
        self.samples = 5
        self.evicted = 0
        self.tenacity = 10  # maxmemory-eviction-tenacity

    def over(self) -> bool:
        """Whether the memory counted for eviction (the data, and what clients hold in
        buffers as the serve layer measures it) is over ``maxmemory``. O(1)."""
        store = self.store
        return store.databases.meter.used + clients_memory(store) > store.maxmemory

    def make_room(self) -> bool:
        """Evict until the data and the clients' buffers fit; return whether they do now,
        or whether eviction ran out of its time (maxmemory-eviction-tenacity: it goes on
        before the next command, as Redis's does in a timer, and this one runs).
        O(evictions x samples)."""
        store = self.store
        meter, limit = store.databases.meter, store.maxmemory - clients_memory(store)
        if self.policy == "noeviction":
            return meter.used <= limit
        clock = store.clock
        deadline = None if self.tenacity >= 100 else clock.seconds() + time_limit(
            self.tenacity)
        current, store.current = store.current, None  # evictions are nobody's writes
        try:
            for count in range(_MAX_EVICTIONS):
                if meter.used <= limit:
                    return True
                if deadline is not None and not count & 15 and clock.seconds() > deadline:
                    return True  # EVICT_RUNNING: not a failure
                victim = self._choose()
                if victim is None:
                    return False
                keyspace, key = victim
                if keyspace.delete(key):
                    self.evicted += 1
                    notifier = getattr(store, "notifier", None)
                    if notifier is not None:
                        notifier.notify(EVICTED, "evicted", key, keyspace.index)
            return meter.used <= limit
        finally:
            store.current = current

    def _choose(self):
        """Return ``(keyspace, key)`` to evict by the policy, or None when none qualifies."""
        candidates = [keyspace for keyspace in self.store.databases
                      if len(keyspace.expires if self.policy.startswith("volatile")
                             else keyspace.data)]
        if not candidates:
            return None
        best = None
        for _ in range(self.samples):
            keyspace = candidates[random.randrange(len(candidates))]
            key = self._sample(keyspace)
            if key is None:
                continue
            score = self._score(keyspace, key)
            if best is None or score < best[0]:
                best = (score, keyspace, key)
        return None if best is None else best[1:]

    def _sample(self, keyspace):
        if not self.policy.startswith("volatile"):
            return keyspace.random_key()
        expires = keyspace.expires
        for _ in range(_VOLATILE_TRIES):
            key = keyspace.random_key()
            if key is None:
                return None
            if key in expires:
                return key
        # Few keys expire: walk the expiring keys from a random start instead (O(n) at worst).
        keys = list(expires)
        return keys[random.randrange(len(keys))] if keys else None

    def _score(self, keyspace, key) -> float:
        """Lower is evicted first: last access time (LRU), access frequency (LFU), expiry
        time (TTL), or random."""
        if self.policy.endswith("lfu"):
            return lfu_counter(keyspace, key, self.store)
        if self.policy.endswith("lru"):
            access = getattr(keyspace, "access", None)
            if access is not None:
                return access.get(key, getattr(keyspace, "access_epoch", 0.0))
            return 0.0
        if self.policy == "volatile-ttl":
            return keyspace.expires.get(key, 0)
        return random.random()


def clients_memory(store) -> int:
    """What clients hold in query and output buffers: ``store.clients_memory()``, the serve
    layer's measure (refreshed at most every few ms), or 0 without one."""
    measure = getattr(store, "clients_memory", None)
    return measure() if measure is not None else 0


def time_limit(tenacity: int) -> float:
    """evictionTimeLimitUs: seconds one command's eviction may take (50 us per step up to
    10, then 15 % more per step)."""
    if tenacity <= 10:
        return 50e-6 * tenacity
    return 500e-6 * 1.15 ** (tenacity - 10)


def evictor_for(store) -> Evictor:
    """Return the store's Evictor, made on first use."""
    evictor = store.evictor
    if evictor is None:
        evictor = store.evictor = Evictor(store)
    return evictor


def parse_memory(text: str) -> int:
    """Parse a Redis memory size: ``100``, ``1k`` (1000), ``1kb`` (1024), ``mb``, ``gb``..."""
    value = text.strip().lower()
    units = (("gb", 1024 ** 3), ("mb", 1024 ** 2), ("kb", 1024), ("g", 1000 ** 3),
             ("m", 1000 ** 2), ("k", 1000), ("b", 1))
    number, multiplier = value, 1
    for suffix, factor in units:
        if value.endswith(suffix):
            number, multiplier = value[:-len(suffix)], factor
            break
    if not number.isdigit():
        raise ValueError("argument must be a memory value")
    return int(number) * multiplier


def _set_maxmemory(store, value: int) -> None:
    store.maxmemory = value
    evictor = evictor_for(store)
    if value and evictor.over():
        evictor.make_room()


def _parse_policy(text: str) -> str:
    policy = text.lower()
    if policy not in POLICIES:
        raise ValueError("argument(s) must be one of the following: " + ", ".join(POLICIES))
    return policy


def _set_policy(store, value: str) -> None:
    evictor = evictor_for(store)
    evictor.policy = value
    # Keyspace.lfu: the Evictor (holding the store's LFU parameters) under an LFU policy.
    lfu = evictor if value.endswith("lfu") else False
    for keyspace in store.databases:
        keyspace.lfu = lfu


# -- LFU (Redis's evict.c LFU functions) ----------------------------------------------------


def _minutes(keyspace) -> int:
    return int(keyspace.clock.seconds() // 60) & 65535


def _decode(keyspace, key):
    # (counter, minutes) of a key: a new key, or one stamped by LRU, starts at LFU_INIT_VAL.
    stamp = keyspace.access.get(key)
    if stamp is None or stamp >= 0:
        return LFU_INIT_VAL, _minutes(keyspace)
    packed = int(-stamp) - 1
    return packed >> 16, packed & 65535


def _decayed(keyspace, counter: int, minutes: int, store) -> int:
    # LFUDecrAndReturn: the counter less one per lfu-decay-time minutes elapsed.
    decay = getattr(store, "lfu_decay_time", 1) if store is not None else 1
    now = _minutes(keyspace)
    elapsed = now - minutes if now >= minutes else 65535 - minutes + now
    periods = elapsed // decay if decay else 0
    return 0 if periods > counter else counter - periods


def lfu_counter(keyspace, key, store=None) -> int:
    """OBJECT FREQ: the key's access counter, decayed to now (not stored). O(1)."""
    counter, minutes = _decode(keyspace, key)
    return _decayed(keyspace, counter, minutes, store)


def lfu_touch(keyspace, key, store=None) -> None:
    """updateLFU: decay the key's counter, then increment it with probability
    1 / ((counter - LFU_INIT_VAL) x lfu-log-factor + 1), saturating at 255. A key seen for
    the first time starts at LFU_INIT_VAL. O(1)."""
    stamp = keyspace.access.get(key)
    if stamp is None or stamp >= 0:
        counter = LFU_INIT_VAL
    else:
        counter = lfu_counter(keyspace, key, store)
        if counter < 255:
            factor = getattr(store, "lfu_log_factor", 10) if store is not None else 10
            if random.random() < 1.0 / (max(counter - LFU_INIT_VAL, 0) * factor + 1):
                counter += 1
    lfu_set(keyspace, key, counter)


def lfu_set(keyspace, key, counter: int) -> None:
    """Stamp ``key`` with the LFU ``counter`` (0-255) as of now (RESTORE ... FREQ). O(1)."""
    keyspace.access[key] = -float(1 + (counter << 16 | _minutes(keyspace)))


def _setter(attribute: str):
    return lambda store, value: setattr(store, attribute, value)


def _parse_samples(text: str) -> int:
    value = int(text)
    if not 1 <= value <= 64:
        raise ValueError("argument must be between 1 and 64 inclusive")
    return value


def _set_samples(store, value: int) -> None:
    evictor_for(store).samples = value


define_config("maxmemory", "0", parse_memory, _set_maxmemory)
define_config("maxmemory-policy", "noeviction", _parse_policy, _set_policy)
define_config("maxmemory-samples", "5", _parse_samples, _set_samples)
define_config("lfu-log-factor", "10", integer_parameter(0, INT_MAX), _setter("lfu_log_factor"),
              show=str)
define_config("lfu-decay-time", "1", integer_parameter(0, INT_MAX), _setter("lfu_decay_time"),
              show=str)
define_config("maxmemory-eviction-tenacity", "10", integer_parameter(0, 100),
              lambda store, value: setattr(evictor_for(store), "tenacity", value), show=str)
