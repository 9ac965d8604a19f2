"""pytest fixtures for simcluster (being built; see issue 3)."""
