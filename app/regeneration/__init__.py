"""Regeneration: batches at a regeneration plant that turn received waste carbon back into carbon."""
