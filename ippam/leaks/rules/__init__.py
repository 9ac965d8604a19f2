"""Leak rules (docs/design.md §3), one module per thing they judge: allocations, reservations,
overlapping ranges, node slices. common holds Context and Candidate and the grace and
suspicion rules every rule follows; registry lists RULES and runs them (candidates_compute).
"""
