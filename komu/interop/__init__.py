"""Interchange with outside systems (学齢簿 extracts, …): pure parsers, no ORM.

Each module turns untrusted bytes into typed rows plus Japanese issues; the owning app applies the rows
through its services, so an import is validated and audited exactly like a form.
"""
