"""Controllers: turn widget intents into service calls and push service data to views."""
