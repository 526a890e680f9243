"""Standalone reproductions of the server deviations the conformance matrix records."""
