"""The ``kvtwist`` console script: ``cli``, ``demo``, ``check``, ``export`` and ``--version``."""

from __future__ import annotations

import argparse
import os
import sys

from kvtwist import __version__

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 7379


def _port(text: str) -> int:
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError("not a port number: %r" % (text,))
    if not 0 < port < 65536:
        raise argparse.ArgumentTypeError("port out of range: %d" % (port,))
    return port


def build_parser() -> argparse.ArgumentParser:
    """Return the argument parser for every subcommand."""
    parser = argparse.ArgumentParser(
        prog="kvtwist", description="Client tools for kvtwist (kvstore, kvproxy) and Redis.")
    parser.add_argument("--version", action="version", version="kvtwist %s" % (__version__,))
    sub = parser.add_subparsers(dest="subcommand", metavar="COMMAND")

    cli = sub.add_parser(
        "cli", add_help=False, help="interactive prompt, or run one command (like redis-cli)",
        description="Talk RESP to kvstore, kvproxy or redis-server. With a command, run "
                    "it and exit (status 1 on an error reply); with standard input not a "
                    "terminal, run one command a line; otherwise prompt.")
    cli.add_argument("--help", action="help", help="show this help message and exit")
    cli.add_argument("-h", "--host", default=DEFAULT_HOST, help="server host (default %(default)s)")
    cli.add_argument("-p", "--port", type=_port, default=DEFAULT_PORT,
                     help="server port (default %(default)s)")
    cli.add_argument("--tls", action="store_true", help="connect with TLS")
    cli.add_argument("--cacert", metavar="FILE", help="CA bundle to verify the server with")
    cli.add_argument("--insecure", action="store_true",
                     help="with --tls, do not verify the server certificate")
    raw = cli.add_mutually_exclusive_group()
    raw.add_argument("--raw", dest="raw", action="store_const", const=True, default=None,
                     help="print replies raw (the default when stdout is not a terminal)")
    raw.add_argument("--no-raw", dest="raw", action="store_const", const=False,
                     help="print replies formatted, even to a pipe")
    cli.add_argument("command", nargs=argparse.REMAINDER,
                     help="a command and its arguments to run once")

    demo = sub.add_parser(
        "demo", help="play a two-user session (Alice stores, Bob reads)",
        description="Start kvstore on a free loopback port (or use --port) and play out "
                    "a session between two users, printing the transcript.")
    demo.add_argument("-H", "--host", default=DEFAULT_HOST,
                      help="server host, with --port (default %(default)s)")
    demo.add_argument("-p", "--port", type=_port, default=None,
                      help="use the server already listening on this port")

    check = sub.add_parser("check", help="verify a data directory's journal and snapshots")
    check.add_argument("directory")
    check.add_argument("--repair", action="store_true",
                       help="truncate a damaged journal to its longest valid prefix")

    export = sub.add_parser("export", help="write a data directory's contents")
    export.add_argument("directory")
    export.add_argument("--format", choices=("json", "resp"), default="json",
                        help="json lines, or RESP commands for redis-cli --pipe")
    export.add_argument("-o", "--output", metavar="FILE", help="write here instead of stdout")
    return parser


def _check(args) -> int:
    from kvtwist.storage import fsck

    report = fsck.check(args.directory, repair=args.repair)
    for line in report.lines:
        print(line)
    return report.exit_code


def _export(args) -> int:
    from kvtwist.storage import fsck

    try:
        if args.output is None:
            out = sys.stdout.buffer
            count = fsck.export(args.directory, args.format, out)
            out.flush()
        else:
            with open(args.output, "wb") as out:
                count = fsck.export(args.directory, args.format, out)
    except fsck.DataError as exc:
        sys.stderr.write("kvtwist export: %s: corrupt data: %s\n" % (args.directory, exc))
        return 1
    except OSError as exc:
        sys.stderr.write("kvtwist export: %s: %s\n"
                         % (exc.filename or args.directory, exc.strerror or exc))
        return 1
    if args.output is not None:
        sys.stderr.write("kvtwist export: %d pairs written to %s\n" % (count, args.output))
    return 0


def main(argv=None) -> int:
    """Run the ``kvtwist`` command line; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.subcommand is None:
        parser.print_help(sys.stderr)
        return 2
    try:
        if args.subcommand == "cli":
            from kvtwist.cli.repl import run_cli

            return run_cli(args.host, args.port, args.command, tls=args.tls,
                           cafile=args.cacert, insecure=args.insecure, raw=args.raw)
        if args.subcommand == "demo":
            from kvtwist.cli.demo import run_demo

            return run_demo(args.host, args.port)
        if args.subcommand == "check":
            return _check(args)
        return _export(args)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # Output piped to `head`: stop quietly, as command-line tools do; the
        # redirect keeps the interpreter's final flush from complaining.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 1
    except (OSError, ValueError) as exc:
        sys.stderr.write("kvtwist %s: %s\n" % (args.subcommand, exc))
        return 1

