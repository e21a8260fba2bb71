"""The live flow: tap, decoder, per-second aggregation, the child process, history and recorder."""
