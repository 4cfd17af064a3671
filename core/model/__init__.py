"""Model: the shared text encoder, the multi-task model around it, and batching that encodes each distinct text once."""
