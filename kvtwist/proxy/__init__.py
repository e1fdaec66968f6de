"""kvproxy: the cache, command classes, the store in front of a backend, and its service.

Imports every layer below it, and client.
"""
