"""What became of a replayed payment: its outcome after a requeue, retry or cancel.

:mod:`.model` holds the vocabulary (:class:`~.model.Outcome`) and the stored
fields; :mod:`.tracker` settles outcomes in Redis, exactly once, from the flow's
events and from new dead letters. The workbench starts an outcome when an
action completes (``workbench/lua/finish_many.lua``); the flow recorder and the
parker settle them. It sits below both, so each can use it.
"""
