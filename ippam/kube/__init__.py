"""The one door to Kubernetes. Only this package imports the `kubernetes` client.

Everything it returns is plain data (dicts decoded from JSON, dataclasses), never client
models: the typed models cost ~0.3 s per 500 pods and are strict about fields we ignore.
"""
