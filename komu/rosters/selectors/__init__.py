"""Reads of komu.rosters, one module per sub-domain; reads of personal data are audited here."""
