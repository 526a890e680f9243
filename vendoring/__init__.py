"""The vendoring proof: the core copied into a framework and run inside its own test suite.

``make vendoring-proof`` runs `vendoring.proof`; `vendoring.outcomes_plugin` is the pytest plugin
it loads into the framework's suite to record each test's outcome.
"""
