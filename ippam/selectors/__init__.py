"""Reads for the dashboard: every query a page runs lives here, never in a view.

Each selector takes keyword-only filters and returns querysets or plain dataclasses with
everything a template needs, so that a template never triggers a query per row: related
rows come from select_related/prefetch_related, one aggregate, or one extra query per
*page* whose results are attached to the rows (the `attach_*` helpers).

One module per thing a page shows; callers import from the module, never from here
(`from ippam.selectors.pools import pool_list_with_usage`):

- clusters: clusters and the freshness of their data (the sync bar)
- pools: the pool list with usage, one pool, a page of its allocations
- pool_map: a pool's address plan and its allocation map (cells or heat map)
- nads, nodes: the NAD and node lists and detail pages
- findings: leak findings and the context each row shows
- failures: attachment failures and their CNI errors in plain words
- search: the search box
- overview: the overview page's totals and recent alerts
- shared: cluster scoping, sort parameters, pods and nodes fetched once per page
"""
