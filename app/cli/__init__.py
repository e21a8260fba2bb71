"""The ``payops`` command line: console, demo, dlq, collect, snapshot."""
