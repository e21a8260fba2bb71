"""The demo: a simulated payment flow and its topology. Not production code."""
