"""Everything that runs inside a party's own process, on that party's own data."""
