"""Requeue, retry and cancel: exactly once, with a ledger, recovery and an audit trail."""
