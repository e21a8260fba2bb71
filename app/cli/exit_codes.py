"""Exit codes that scripts can rely on."""

OK = 0
FAILED = 1  # the operation ran and failed (broker refused, some items failed)
USAGE = 2  # bad command line or bad configuration
UNAVAILABLE = 3  # RabbitMQ or Redis could not be reached
LOGIN_REFUSED = 4  # RabbitMQ or Redis was reached and refused the login (user or password)
INTERRUPTED = 130  # Ctrl+C (SIGINT): 128 + 2
TERMINATED = 143  # SIGTERM: 128 + 15
