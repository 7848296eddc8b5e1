"""Keys, age encryption for recipients and Ed25519 signatures."""
