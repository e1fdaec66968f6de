"""Geospatial commands, as Redis 7.0's geo.c: GEOADD, GEOPOS, GEODIST, GEOHASH.

A geo index is a sorted set whose scores are 52-bit geohashes (Redis's interleaved
latitude/longitude bits over latitudes -85.05112878..85.05112878), so every sorted-set
command works on it. GEOADD runs ZADD with the encoded scores (it is counted as GEOADD in
commandstats, and sends ZADD's ``zadd`` keyspace event, as Redis does). The area searches
(GEORADIUS*, GEOSEARCH*) are not implemented.
"""

from __future__ import annotations

import math

from kvtwist.engine import events
from kvtwist.engine.t_zset import NOT_FLOAT, _zadd
from kvtwist.engine.table import SYNTAX, register
from kvtwist.engine.types import ZSET
from kvtwist.engine.zsetscore import parse_score
from kvtwist.engine.zsettype import OP_ADD, ZSet
from kvtwist.wire.replies import NIL_ARRAY, CommandError, Double

LAT_MIN, LAT_MAX = -85.05112878, 85.05112878
LONG_MIN, LONG_MAX = -180.0, 180.0
STEP = 26  # bits per coordinate: 52 in all
EARTH_RADIUS = 6372797.560856  # metres, as geohash_helper.c
D_R = math.pi / 180.0
UNITS = {b"m": 1.0, b"km": 1000.0, b"ft": 0.3048, b"mi": 1609.34}
BAD_UNIT = "ERR unsupported unit provided. please use M, KM, FT, MI"
ALPHABET = b"0123456789bcdefghjkmnpqrstuvwxyz"


def _spread(value: int) -> int:
    # interleave64's half: the low 32 bits of ``value`` at the even bit positions.
    value &= 0xFFFFFFFF
    value = (value | (value << 16)) & 0x0000FFFF0000FFFF
    value = (value | (value << 8)) & 0x00FF00FF00FF00FF
    value = (value | (value << 4)) & 0x0F0F0F0F0F0F0F0F
    value = (value | (value << 2)) & 0x3333333333333333
    return (value | (value << 1)) & 0x5555555555555555


def _squash(value: int) -> int:
    # deinterleave64's half: the even bits of ``value`` packed into 32 bits.
    value &= 0x5555555555555555
    value = (value | (value >> 1)) & 0x3333333333333333
    value = (value | (value >> 2)) & 0x0F0F0F0F0F0F0F0F
    value = (value | (value >> 4)) & 0x00FF00FF00FF00FF
    value = (value | (value >> 8)) & 0x0000FFFF0000FFFF
    return (value | (value >> 16)) & 0x00000000FFFFFFFF


def encode(longitude: float, latitude: float, lat_min: float = LAT_MIN,
           lat_max: float = LAT_MAX) -> int:
    """Return the 52-bit geohash of a point (geohashEncode at step 26)."""
    lat_offset = (latitude - lat_min) / (lat_max - lat_min) * (1 << STEP)
    long_offset = (longitude - LONG_MIN) / (LONG_MAX - LONG_MIN) * (1 << STEP)
    return _spread(int(lat_offset)) | (_spread(int(long_offset)) << 1)


def decode(bits: int) -> tuple:
    """Return the (longitude, latitude) centre of a 52-bit geohash's cell, clamped."""
    lat_cell, long_cell = _squash(bits), _squash(bits >> 1)
    lat_scale, long_scale = LAT_MAX - LAT_MIN, LONG_MAX - LONG_MIN
    size = float(1 << STEP)
    lat_lo = LAT_MIN + (lat_cell * 1.0 / size) * lat_scale
    lat_hi = LAT_MIN + ((lat_cell + 1) * 1.0 / size) * lat_scale
    long_lo = LONG_MIN + (long_cell * 1.0 / size) * long_scale
    long_hi = LONG_MIN + ((long_cell + 1) * 1.0 / size) * long_scale
    longitude = min(max((long_lo + long_hi) / 2, LONG_MIN), LONG_MAX)
    latitude = min(max((lat_lo + lat_hi) / 2, LAT_MIN), LAT_MAX)
    return longitude, latitude


def _score_bits(score: float) -> int:
    # decodeGeohash's (uint64_t) cast of the score, as x86-64 does it (a plain ZADD may have
    # stored any score): truncation, modulo 2**64; out of range, 0.
    if score != score or score >= 2.0 ** 64 or score <= -(2.0 ** 63):
        return 0
    return int(score) & 0xFFFFFFFFFFFFFFFF


def distance(lon1: float, lat1: float, lon2: float, lat2: float) -> float:
    """Return the haversine distance in metres (geohashGetDistance)."""
    lon1r, lon2r = lon1 * D_R, lon2 * D_R
    v = math.sin((lon2r - lon1r) / 2)
    if v == 0.0:
        return EARTH_RADIUS * abs(lat2 * D_R - lat1 * D_R)
    lat1r, lat2r = lat1 * D_R, lat2 * D_R
    u = math.sin((lat2r - lat1r) / 2)
    a = u * u + math.cos(lat1r) * math.cos(lat2r) * v * v
    return 2.0 * EARTH_RADIUS * math.asin(math.sqrt(a))


def human(value: float) -> bytes:
    """Redis's LD_STR_HUMAN text of a coordinate: 17 decimals, trailing zeros dropped."""
    text = b"%.17f" % value
    text = text.rstrip(b"0").rstrip(b".")
    return b"0" if text == b"-0" else text


def fixed4(value: float) -> bytes:
    """fixedpoint_d2string(value, 4): the distance rounded half to even at 4 places."""
    if value == 0:
        return b"0.0000"
    scaled = int(round(value * 10000.0))  # llrint, in the default rounding mode
    sign = b"-" if scaled < 0 else b""
    digits = b"%05d" % abs(scaled)
    return sign + digits[:-4] + b"." + digits[-4:]


def _long_lat(raw_long: bytes, raw_lat: bytes) -> tuple:
    longitude, latitude = parse_score(raw_long), parse_score(raw_lat)
    if longitude is None or latitude is None:
        raise CommandError(NOT_FLOAT)
    if not (LONG_MIN <= longitude <= LONG_MAX and LAT_MIN <= latitude <= LAT_MAX):
        raise CommandError("ERR invalid longitude,latitude pair %f,%f" % (longitude, latitude))
    return longitude, latitude


@register("geoadd", -5, "write denyoom", 1, 1, 1)
def cmd_geoadd(session, argv):
    """GEOADD key [NX|XX] [CH] longitude latitude member [...]: ZADD of the points' geohashes.
    O(k log n) for k points."""
    index, nx, xx = 2, False, False
    while index < len(argv):
        option = argv[index].lower()
        if option == b"nx":
            nx = True
        elif option == b"xx":
            xx = True
        elif option != b"ch":
            break
        index += 1
    if (len(argv) - index) % 3 or (nx and xx):
        raise CommandError(SYNTAX)
    zadd = [b"zadd"] + argv[1:index]
    for position in range(index, len(argv), 3):
        longitude, latitude = _long_lat(argv[position], argv[position + 1])
        zadd += [b"%d" % encode(longitude, latitude), argv[position + 2]]
    return _zadd(session, zadd, False)


def _scores(session, key: bytes):
    zset = session.keyspace.get_typed(key, ZSet)
    return zset.scores if zset is not None else {}


@register("geopos", -2, "readonly", 1, 1, 1)
def cmd_geopos(session, argv):
    """GEOPOS key member [...]: each member's [longitude, latitude] or nil. O(k)."""
    scores = _scores(session, argv[1])
    reply = []
    for member in argv[2:]:
        score = scores.get(member)
        if score is None:
            reply.append(NIL_ARRAY)
            continue
        longitude, latitude = decode(_score_bits(score))
        reply.append([Double(human(longitude)), Double(human(latitude))])
    return reply


@register("geodist", -4, "readonly", 1, 1, 1)
def cmd_geodist(session, argv):
    """GEODIST key member1 member2 [M|KM|FT|MI]: their distance to 4 places, or nil. O(1)."""
    to_meter = 1.0
    if len(argv) == 5:
        to_meter = UNITS.get(argv[4].lower())
        if to_meter is None:
            raise CommandError(BAD_UNIT)
    elif len(argv) > 5:
        raise CommandError(SYNTAX)
    scores = _scores(session, argv[1])
    first, second = scores.get(argv[2]), scores.get(argv[3])
    if first is None or second is None:
        return None
    lon1, lat1 = decode(_score_bits(first))
    lon2, lat2 = decode(_score_bits(second))
    return fixed4(distance(lon1, lat1, lon2, lat2) / to_meter)


@register("geohash", -2, "readonly", 1, 1, 1)
def cmd_geohash(session, argv):
    """GEOHASH key member [...]: each member's 11-character standard geohash or nil. O(k)."""
    scores = _scores(session, argv[1])
    reply = []
    for member in argv[2:]:
        score = scores.get(member)
        if score is None:
            reply.append(None)
            continue
        longitude, latitude = decode(_score_bits(score))
        bits = encode(longitude, latitude, -90.0, 90.0)
        text = bytes(ALPHABET[(bits >> (52 - (i + 1) * 5)) & 0x1F] for i in range(10))
        reply.append(text + b"0")
    return reply


# -- keyspace events: GEOADD is ZADD's "zadd"; the readers' lookups are reads ("keymiss") --

events.declare(b"geoadd", ((ZSET, OP_ADD), events.ZSET, "zadd"))
events.declare_reads(b"geopos", b"geodist", b"geohash")
