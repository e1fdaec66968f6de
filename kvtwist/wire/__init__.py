"""Wire formats, pure: RESP2/3 requests and replies, inline text, JSON lines, reply values.

Imports nothing of kvtwist outside wire.
"""
