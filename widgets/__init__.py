"""Pure Qt views of PayOps Console: they take plain data and emit intent signals."""
