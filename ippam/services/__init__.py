"""Writes the web layer asks for that span more than one domain call.

Each service owns its transaction; views call one service and render what it returns.
(The single-object writes stay beside their domain: ippam.nads.nad_create,
ippam.leaks.reclaim_plan, ippam.leaks.alert_acknowledge.)
"""
