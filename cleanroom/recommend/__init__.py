"""The joint recommendation model: data (MovieLens-100K, demo retail), plaintext matrix factorization
(the reference and the per-party baselines), evaluation. The secure training is in `cleanroom.secure`."""
