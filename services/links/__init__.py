"""Connections to RabbitMQ and Redis: reconnect with backoff, link status, URL redaction."""
