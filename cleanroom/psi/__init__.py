"""Private set intersection (cardinality only) for customer overlap: ECDH-PSI on X25519 with the
RFC 9380 hash-to-curve suite curve25519_XMD:SHA-512_ELL2_NU_, on libsodium. No Prefect, no TF."""
