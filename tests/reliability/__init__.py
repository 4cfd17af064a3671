"""The reliability suite: faults a hostile but realistic user meets, each with its outcome (docs/reliability.md)."""
