"""The "needs attention" panel (issue 20): what waits for a user's decision or is broken, each
with what to do, decided from the status card (`rules.py`, pure)."""
