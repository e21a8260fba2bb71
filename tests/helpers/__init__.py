"""Kits shared by tests: brokers, dead-letter flows, frames, subprocess helpers."""
