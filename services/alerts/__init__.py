"""Alert rules, the engine that judges them on the flow, and the alert log in Redis."""
