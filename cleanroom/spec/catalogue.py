"""The shared catalogue a recommender models: a public CSV file that the spec pins by its hash."""

from __future__ import annotations

import hashlib
from pathlib import Path

import polars as pl

from cleanroom.errors import ConfigurationError
from cleanroom.spec.models import CollaborationSpec


def load_catalogue(spec_path: Path, spec: CollaborationSpec) -> list[str]:
    """The catalogue's GTINs in file order, after checking the file against the hash the spec pins."""
    analysis = spec.joint_recommender
    assert analysis is not None
    field = f"{spec_path}: analyses[{spec.analyses.index(analysis)}].catalogue"
    path = Path(spec_path).parent / analysis.catalogue.location
    try:
        payload = path.read_bytes()
    except OSError as exc:
        raise ConfigurationError(
            f"catalogue file {path} cannot be read",
            where=f"{field}.location",
            fix="give the path of the agreed catalogue CSV, relative to the spec file",
        ) from exc
    if hashlib.sha256(payload).hexdigest() != analysis.catalogue.sha256:
        raise ConfigurationError(
            "the catalogue file differs from the one the spec pins",
            where=f"{field}.sha256",
            fix=f"agree on the catalogue again and pin its hash (sha256sum {path.name})",
        )
    try:
        ids = pl.read_csv(payload, columns=["product_id"], schema_overrides={"product_id": pl.String})[
            "product_id"
        ]
    except (pl.exceptions.PolarsError, ValueError) as exc:
        raise ConfigurationError(
            "the catalogue is not a CSV with a product_id column",
            where=f"{field}.location",
            fix="export it with a header row and one product id (SKU or GTIN) per line",
        ) from exc
    if ids.null_count() or ids.n_unique() != ids.len() or ids.len() < 2:
        raise ConfigurationError(
            "the catalogue needs at least two distinct product ids and no empty line",
            where=f"{field}.location",
            fix="remove duplicates and empty lines",
        )
    return ids.to_list()
