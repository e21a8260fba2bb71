"""Qt-free asyncio services: AMQP, Redis, aggregation, configuration."""
