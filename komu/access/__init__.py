"""The one access layer: every read and write of the domain asks here who may do what, and where.

Not a Django app (no models): capabilities per role (roles.py) and the scope each role reaches (scope.py).
"""
