"""Chat: messages with per-consultation sequence numbers, idempotent by client id."""
