"""The failed-payments workbench: parked entries, their codec, the Redis store (its layout and
Lua scripts), the parker, the entry columns, queries and the in-memory index."""
