"""Fault tests: private servers killed, restarted and filled up; every message counted."""
