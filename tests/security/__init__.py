"""The malicious-run-directory suite: a run handed over by someone hostile must not run code (docs/security.md)."""
