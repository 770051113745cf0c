"""PIN code letters: ordering, the print workflow's tasks, the print provider's reports, and blocking."""
