"""Wiring: the qasync loop, start-up and shutdown, controllers, the CLI."""
