"""`make bench`: cold start, request cost, AWS calls, login throughput and the PIN-letter workflow,
each measured beside a baseline taken in the same run (see bench/__main__.py)."""
