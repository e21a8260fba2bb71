"""The failed-payments workbench: parked entries, their codec, the Redis store, parker and index."""
