"""kvtwist: a durable key-value server and caching proxy built on Twisted."""

__version__ = "0.1.0"
