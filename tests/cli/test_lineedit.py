"""Tests for kvtwist.cli.lineedit: TAB completion, HELP text and where history is kept."""

from __future__ import annotations

import os

from twisted.trial import unittest

from kvtwist.cli import lineedit


class FakeReadline:
    """Just enough of the readline module for the completer."""

    def __init__(self, line):
        self.line = line

    def get_line_buffer(self):
        return self.line

    def get_begidx(self):
        return self.line.rfind(" ") + 1


def completions(line):
    """Return every completion the completer offers for the last word of line."""
    completer = lineedit.Completer(FakeReadline(line))
    text = line[line.rfind(" ") + 1:]
    found = []
    while True:
        match = completer.complete(text, len(found))
        if match is None:
            return found
        found.append(match)


class CompletionTests(unittest.SynchronousTestCase):
    """TAB completes command names, also after HELP."""

    def test_first_word(self):
        """A prefix of the first word completes to the matching commands, in the user's case."""
        self.assertEqual(completions("PIN"), ["PING "])
        self.assertEqual(completions("pin"), ["ping "])
        self.assertEqual(completions("mse"), ["mset ", "msetnx "])
        self.assertEqual(completions("zzz"), [])

    def test_after_help(self):
        """The word after HELP completes to command names too; other arguments do not."""
        self.assertEqual(completions("help exis"), ["exists "])
        self.assertEqual(completions("get pin"), [])

    def test_help_text(self):
        """HELP alone lists the commands; HELP name shows the synopsis; unknown names say so."""
        self.assertIn("set", lineedit.help_text([]))
        self.assertIn("SET key value", lineedit.help_text(["set"]))
        self.assertEqual(lineedit.help_text(["nope"]), "No help for nope\n")

    def test_history_path(self):
        """History lives in $KVTWIST_HISTFILE when set, else ~/.kvtwist_history."""
        self.patch(os, "environ", {"KVTWIST_HISTFILE": "/tmp/h", "HOME": "/home/u"})
        self.assertEqual(lineedit.history_path(), "/tmp/h")
        self.patch(os, "environ", {"HOME": "/home/u"})
        self.assertEqual(lineedit.history_path(), "/home/u/.kvtwist_history")
