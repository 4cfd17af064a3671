"""Data: build each task's splits (prepare), encode features (features), tokenize each distinct text once (textbank), read and write tables (tableio)."""
