"""The JSON-lines dialect: one request object per line in, one JSON reply per line out."""

from __future__ import annotations

import json

from kvtwist.wire.replies import NIL_ARRAY, Double, Error, Pairs, Status, Streamed

__all__ = ["JsonRequestError", "decode_request", "encode_error", "render", "stream_pieces"]


class JsonRequestError(ValueError):
    """A JSON-lines request that cannot become a command; args[0] is the message to send back."""

    def __init__(self, message: str) -> None:
        ValueError.__init__(self, message)
        self.message = message


# Bytes travel as JSON strings: undecodable bytes become lone surrogates
# (surrogateescape), which json writes as \udcXX escapes, so every byte string
# survives a round trip instead of being silently replaced.
_TEXT_ERRORS = "surrogateescape"
_ENCODER = json.JSONEncoder(separators=(",", ":"), ensure_ascii=True, allow_nan=False)
_encode = _ENCODER.encode


def _jsonable(reply):
    cls = reply.__class__
    if cls is bytes:
        return reply.decode("utf-8", _TEXT_ERRORS)
    if reply is None or reply is NIL_ARRAY:
        return None
    if cls is int:
        return reply
    if cls is Status:
        return reply.text.decode("utf-8", _TEXT_ERRORS)
    if cls is Error:
        return {"error": reply.message}
    if isinstance(reply, (list, tuple)):
        return [_jsonable(item) for item in reply]
    if cls is Pairs:
        return {_jsonable(key): _jsonable(value) for key, value in reply.items}
    if cls is Double:  # as its text: a JSON number cannot hold inf
        return reply.text.decode("ascii")
    if isinstance(reply, int):  # bool and other int subclasses: a plain number
        return int(reply)
    if isinstance(reply, (bytearray, memoryview)):
        return bytes(reply).decode("utf-8", _TEXT_ERRORS)
    if cls is Streamed:  # not at the top of a reply (EXEC's array)
        return _jsonable(reply.whole())
    raise TypeError("not a reply: %r" % (reply,))


def render(reply) -> bytes:
    """Return ``reply`` as one compact JSON line ending ``\\n`` (bytes -> string, nil -> null)."""
    return _encode(_jsonable(reply)).encode("ascii") + b"\n"


def stream_pieces(stream: Streamed):
    """Yield ``stream`` as one JSON line, a bytes per slice; joined, ``render`` of its whole.

    Each slice is encoded as a list (an object for Pairs) by json's encoder, its brackets
    cut off: O(bytes of the slice) per piece, in C.
    """
    pairs = stream.pairs
    yield b"{" if pairs else b"["
    first = True
    for piece in stream.slices:
        if pairs:
            body = _encode({key.decode("utf-8", _TEXT_ERRORS): value.decode("utf-8", _TEXT_ERRORS)
                            for key, value in piece})
        else:
            body = _encode([key.decode("utf-8", _TEXT_ERRORS) for key in piece])
        if len(body) > 2:
            yield (body[1:-1] if first else "," + body[1:-1]).encode("ascii")
            first = False
    yield b"}\n" if pairs else b"]\n"


def encode_error(message: str) -> bytes:
    """Return the JSON line ``{"error":message}`` ending in ``\\n``."""
    return _encode({"error": message}).encode("ascii") + b"\n"


def _render_mget(keys: list):
    def render_mget(reply) -> bytes:
        if isinstance(reply, (list, tuple)) and len(reply) == len(keys):
            return render(Pairs(list(zip(keys, reply))))
        return render(reply)  # an error reply, rendered as usual

    return render_mget


def _reject_constant(name: str):
    raise JsonRequestError("ERR invalid JSON: %s is not allowed" % (name,))


def _object(pairs: list) -> dict:
    # json's object_pairs_hook: an object naming a key twice is refused, where plain
    # json.loads would keep the last value. O(len(pairs)).
    request = dict(pairs)
    if len(request) != len(pairs):
        seen = set()
        for key, _ in pairs:
            if key in seen:
                raise JsonRequestError("ERR invalid JSON: duplicate key %r" % (key,))
            seen.add(key)
    return request


def _arg(value, what: str) -> bytes:
    cls = value.__class__
    if cls is str:
        try:
            return value.encode("utf-8", _TEXT_ERRORS)
        except UnicodeEncodeError:
            raise JsonRequestError("ERR %s contains an unpaired surrogate escape" % (what,))
    if cls is int:
        return b"%d" % value
    if cls is float:
        return repr(value).encode("ascii")
    raise JsonRequestError("ERR %s must be a string or a number, not %s" % (what, _kind(value)))


def _kind(value) -> str:
    if value is None:
        return "null"
    if value is True or value is False:
        return "a boolean"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def _field(request: dict, name: str):
    if name not in request:
        raise JsonRequestError('ERR %s request needs a "%s" field'
                               % (request["type"].upper(), name))
    return request[name]


def decode_request(line: bytes):
    """Parse one request line; return ``(argv, render)`` (see ``decode``, which adds the db)."""
    argv, render, _ = decode(line)
    return argv, render


def decode(line: bytes):
    """Parse one request line; return ``(argv, render, db)``.

    ``db`` is the request's optional ``"db"`` field, the database to run this one request
    in (a non-negative integer), or None when absent.

    ``argv`` is the command as a list of bytes; ``render(reply) -> bytes`` turns the
    command's reply into the JSON line to send back.  Raises JsonRequestError (message
    starting with ``ERR``) for invalid JSON (a key named twice in one object included), a
    non-object, or a missing/ill-typed field.
    """
    try:
        text = line.decode("utf-8")
    except UnicodeDecodeError:
        raise JsonRequestError("ERR invalid JSON: request is not valid UTF-8")
    try:
        request = json.loads(text, parse_constant=_reject_constant, object_pairs_hook=_object)
    except JsonRequestError:
        raise
    except RecursionError:
        raise JsonRequestError("ERR invalid JSON: nested too deeply")
    except ValueError as exc:
        raise JsonRequestError("ERR invalid JSON: %s" % (exc,))
    if not isinstance(request, dict):
        raise JsonRequestError("ERR request must be a JSON object, not %s" % (_kind(request),))
    name = request.get("type")
    if name.__class__ is not str or not name:
        raise JsonRequestError('ERR request needs a "type" string naming the command')
    db = request.get("db")
    if db is not None and (db.__class__ is not int or db < 0):
        raise JsonRequestError('ERR "db" must be a database number, not %s'
                               % (_kind(db) if db.__class__ is not int else db,))
    argv, render = _command(request, name)
    return argv, render, db


def _command(request: dict, name: str):
    upper = name.upper()
    if "args" in request:
        args = request["args"]
        if not isinstance(args, list):
            raise JsonRequestError('ERR "args" must be an array, not %s' % (_kind(args),))
        argv = [_arg(name, '"type"')]
        argv.extend(_arg(arg, '"args" item') for arg in args)
        return argv, render
    if upper == "GET":
        return [b"GET", _arg(_field(request, "key"), '"key"')], render
    if upper == "SET":
        key = _arg(_field(request, "key"), '"key"')
        return [b"SET", key, _arg(_field(request, "value"), '"value"')], render
    if upper == "DELETE":
        return [b"GETDEL", _arg(_field(request, "key"), '"key"')], render
    if upper == "AUTH":
        password = _arg(_field(request, "password"), '"password"')
        if "user" in request:
            return [b"AUTH", _arg(request["user"], '"user"'), password], render
        return [b"AUTH", password], render
    if upper == "FLUSH":
        return [b"FLUSHDB"], render
    if upper == "MGET":
        keys = _field(request, "key")
        if not isinstance(keys, list) or not keys:
            raise JsonRequestError('ERR MGET "key" must be a non-empty array of keys')
        argv = [b"MGET"]
        argv.extend(_arg(key, '"key" item') for key in keys)
        return argv, _render_mget(argv[1:])
    if upper == "MSET":
        pairs = _field(request, "value")
        if not isinstance(pairs, dict) or not pairs:
            raise JsonRequestError('ERR MSET "value" must be a non-empty object of key: value')
        argv = [b"MSET"]
        for key, value in pairs.items():
            argv.append(_arg(key, "MSET key"))
            argv.append(_arg(value, "MSET value"))
        return argv, render
    return [_arg(name, '"type"')], render
