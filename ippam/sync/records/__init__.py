"""From Kubernetes objects (plain dicts) to database rows (plain tuples), one module per kind.

No database access here: every function takes one object as the API returned it and gives
back the rows it becomes, with whatever was malformed recorded as a problem on the row.
Nothing here raises on bad input; a sync never stops because one object is odd.

Import from the submodule that owns the kind (ippam.sync.records.pods, ...); this package
re-exports nothing.
"""
