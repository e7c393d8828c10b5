"""照会・回答: a board's survey form, each school's answer through its approval chain, and the aggregate."""
