"""Line editing for ``kvtwist cli``: the command catalogue behind HELP and TAB, and history."""

from __future__ import annotations

import os

# name, arguments, summary: what completion offers and HELP prints.
COMMANDS = [
    ("APPEND", "key value", "Append a value to a key"),
    ("AUTH", "[username] password", "Authenticate to the server"),
    ("CLIENT", "subcommand [arguments]", "Inspect and name client connections"),
    ("COMMAND", "[subcommand]", "Get details about the server's commands"),
    ("CONFIG", "GET parameter", "Read configuration parameters"),
    ("DBSIZE", "", "Return the number of keys"),
    ("DECR", "key", "Decrement the integer value of a key by one"),
    ("DECRBY", "key decrement", "Decrement the integer value of a key by a number"),
    ("DEL", "key [key ...]", "Delete keys"),
    ("DUMP", "", "Show every key and value"),
    ("ECHO", "message", "Echo the given string"),
    ("EXISTS", "key [key ...]", "Count how many of the keys exist"),
    ("EXPIRE", "key seconds", "Set a key's time to live in seconds"),
    ("EXPIREAT", "key unix-time-seconds", "Set the expiration of a key as a UNIX timestamp"),
    ("FLUSHALL", "", "Remove all keys"),
    ("FLUSHDB", "", "Remove all keys of the current database"),
    ("GET", "key", "Get the value of a key"),
    ("GETDEL", "key", "Get the value of a key and delete it"),
    ("GETSET", "key value", "Set a key and return its old value"),
    ("HELP", "[command]", "Show help for the client or for one command"),
    ("INCR", "key", "Increment the integer value of a key by one"),
    ("INCRBY", "key increment", "Increment the integer value of a key by a number"),
    ("INFO", "[section]", "Get information and statistics about the server"),
    ("KEYS", "pattern", "Find all keys matching the given pattern"),
    ("MGET", "key [key ...]", "Get the values of several keys"),
    ("MONITOR", "", "Watch every command the server processes"),
    ("MSET", "key value [key value ...]", "Set several keys to several values"),
    ("MSETNX", "key value [key value ...]", "Set several keys only if none exists"),
    ("PERSIST", "key", "Remove the expiration from a key"),
    ("PEXPIRE", "key milliseconds", "Set a key's time to live in milliseconds"),
    ("PING", "[message]", "Ping the server"),
    ("PSUBSCRIBE", "pattern [pattern ...]", "Listen for messages on channels matching patterns"),
    ("PTTL", "key", "Get the time to live of a key in milliseconds"),
    ("PUBLISH", "channel message", "Post a message to a channel"),
    ("PUNSUBSCRIBE", "[pattern ...]", "Stop listening on patterns"),
    ("QUIT", "", "Close the connection"),
    ("RENAME", "key newkey", "Rename a key"),
    ("SAVE", "", "Write a snapshot now"),
    ("SCAN", "cursor [MATCH pattern] [COUNT count]", "Incrementally iterate the keys"),
    ("SELECT", "index", "Change the selected database"),
    ("SET", "key value [NX|XX] [GET] [EX seconds|PX milliseconds|KEEPTTL]",
     "Set the string value of a key"),
    ("SETNX", "key value", "Set a key only if it does not exist"),
    ("STRLEN", "key", "Get the length of a key's value"),
    ("SUBSCRIBE", "channel [channel ...]", "Listen for messages on channels"),
    ("TIME", "", "Return the server time"),
    ("TTL", "key", "Get the time to live of a key in seconds"),
    ("TYPE", "key", "Determine the type stored at a key"),
    ("UNSUBSCRIBE", "[channel ...]", "Stop listening on channels"),
]
_BY_NAME = dict((name, (args, summary)) for name, args, summary in COMMANDS)
COMMAND_NAMES = [name for name, _, _ in COMMANDS]


def help_text(words: list) -> str:
    """Return HELP's text: the client's usage, or one command's synopsis."""
    if not words:
        return ("kvtwist cli %s\n"
                "To get help about a command: \"help <command>\" (e.g. \"help set\").\n"
                "Commands: %s\n"
                "Type \"quit\" or \"exit\" to leave; TAB completes command names.\n"
                % (_version(), " ".join(name.lower() for name in COMMAND_NAMES)))
    name = words[0].upper()
    if name not in _BY_NAME:
        return "No help for %s\n" % (words[0],)
    args, summary = _BY_NAME[name]
    return "\n  %s %s\n  summary: %s\n\n" % (name, args, summary)


def _version() -> str:
    from kvtwist import __version__

    return __version__


class Completer:
    """readline completion: command names for the first word, and after HELP."""

    def __init__(self, readline_module) -> None:
        self.readline = readline_module
        self.matches: list = []

    def complete(self, text: str, state: int):
        """Return the state-th completion of text, or None when there are no more."""
        if state == 0:
            try:
                line = self.readline.get_line_buffer()[:self.readline.get_begidx()]
            except Exception:
                # PyPy's pyrepl cannot always say where the word begins;
                # then every word completes to command names.
                line = ""
            words = line.split()
            if not words or (len(words) == 1 and words[0].upper() == "HELP"):
                lower = text[:1].islower()
                upper = text.upper()
                self.matches = [
                    (name.lower() if lower else name) + " "
                    for name in COMMAND_NAMES if name.startswith(upper)]
            else:
                self.matches = []
        if state < len(self.matches):
            return self.matches[state]
        return None


def history_path() -> str:
    """Where history is kept: $KVTWIST_HISTFILE, else ~/.kvtwist_history."""
    return os.environ.get("KVTWIST_HISTFILE") or os.path.join(
        os.path.expanduser("~"), ".kvtwist_history")


def setup_readline(histfile: str):
    """Load readline with completion and the history in histfile; None when unavailable."""
    try:
        import readline
    except ImportError:
        return None
    completer = Completer(readline)
    readline.set_completer(completer.complete)
    readline.set_completer_delims(" \t")
    if "libedit" in (readline.__doc__ or ""):
        readline.parse_and_bind("bind ^I rl_complete")
    else:
        readline.parse_and_bind("tab: complete")
    readline.set_history_length(1000)
    try:
        readline.read_history_file(histfile)
    except (OSError, IOError):
        pass
    except Exception:
        # PyPy's pyrepl refuses terminals it cannot drive (TERM=dumb): no
        # line editing then, but the prompt still works.
        return None
    return readline
