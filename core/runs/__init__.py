"""Runs: the run directory as a transaction -- checkpoints, resume, carry-over, and :func:`assemble_model`."""
