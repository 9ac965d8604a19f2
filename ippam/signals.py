"""Signals between parts of the domain that must not import each other.

``sync_finished`` is sent with ``cluster=`` after every successful full sync. Leak detection
listens (connected in ippam.apps.IppamConfig.ready), so ippam.sync never imports
ippam.leaks and the leak rules, which read synced rows, can import what they like.
"""

from __future__ import annotations

from django.dispatch import Signal

sync_finished = Signal()
