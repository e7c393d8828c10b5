"""Writes of komu.rosters, one module per sub-domain; each write is atomic and audited."""
