"""Tests of the runner's command line."""

from __future__ import annotations

from twisted.trial.unittest import SynchronousTestCase

from tests.redis_suite.cli import EXPECTED, parse_args
from tests.redis_suite.runner import FILES, MODES


class ParseArgsTests(SynchronousTestCase):
    def test_defaults(self):
        """By default every file runs in both modes, two at a time, against expected.txt."""
        args = parse_args([])
        self.assertEqual(args.files, FILES)
        self.assertEqual(args.modes, MODES)
        self.assertEqual((args.jobs, args.ports, args.expected), (2, (16100, 16199), EXPECTED))
        self.assertIsNone(args.kvstore_args)

    def test_subsets(self):
        """--files takes names with or without unit/, comma or space separated; --modes too."""
        args = parse_args(["--files", "type/string, unit/quit other", "--modes", "multidb",
                           "--ports", "17000-17009"])
        self.assertEqual(args.files, ["unit/type/string", "unit/quit", "unit/other"])
        self.assertEqual(args.modes, ["multidb"])
        self.assertEqual(args.ports, (17000, 17009))

    def test_unknown_mode(self):
        """An unknown mode is a usage error."""
        self.assertRaises(SystemExit, parse_args, ["--modes", "cluster"])
