"""The REST API under /api/v1/ (Django REST framework): one read-only ViewSet per model over
the selectors and FilterSets the pages use, plus the computed lists (a pool's next free
addresses) and the one write an operator may make (acknowledging an alert)."""
