"""Benchmarks of asgi-ws-deny (``make bench``): in process, on every server variant, memory.

Never imported by the package; the reliability tests reuse its load client (`bench.load`).
"""
