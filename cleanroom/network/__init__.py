"""How members of a consortium reach each other: addresses, TLS terminators, sandboxes."""
