"""The live flow views: plots, headline bar, connection indicator, go-to-time."""
