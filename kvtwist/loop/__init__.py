"""Reactor glue: the kvepoll reactor, end-of-turn calls, replies written straight to sockets.

Imports nothing of kvtwist outside loop, so storage and everything above may use it.
"""
