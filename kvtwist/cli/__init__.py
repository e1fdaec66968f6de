"""The ``kvtwist`` console script: cli (like redis-cli), demo, check and export.

Imports every layer below it, and client.
"""
