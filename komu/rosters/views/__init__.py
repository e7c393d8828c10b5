"""Views of komu.rosters, one module per sub-domain (imports, board, school, transfers)."""
