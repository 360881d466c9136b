"""Background work: the idempotent sweep functions and their queue/scheduler wiring."""
