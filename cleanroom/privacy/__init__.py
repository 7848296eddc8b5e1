"""Differential privacy: noise calibration and sampling (OpenDP), and the budget across runs."""
