"""Parquet tables with glasspipe metadata (config excerpt, versions, units) in the schema metadata."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from glasspipe.io.atomic import atomic_path, json_default

METADATA_KEY = b"glasspipe"


def write_table(df: pd.DataFrame, path: str | Path, metadata: dict | None = None) -> None:
    """Write ``df`` to Parquet at ``path`` atomically, with ``metadata`` (JSON) under the key 'glasspipe'."""
    table = pa.Table.from_pandas(df, preserve_index=False)
    existing = table.schema.metadata or {}
    payload = json.dumps(metadata or {}, sort_keys=True, default=json_default).encode()
    table = table.replace_schema_metadata({**existing, METADATA_KEY: payload})
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp)


def read_table(path: str | Path) -> pd.DataFrame:
    """Read a Parquet table; a missing or corrupt file raises an error naming it."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"table {path} does not exist; run the stage that writes it first")
    try:
        return pq.read_table(path).to_pandas()
    except (pa.ArrowInvalid, OSError) as err:
        raise ValueError(f"table {path} is not a readable Parquet file ({err}); delete it and rerun") from err


def read_metadata(path: str | Path) -> dict:
    """The 'glasspipe' metadata dict of a Parquet file written by write_table ({} if absent)."""
    meta = pq.read_schema(path).metadata or {}
    return json.loads(meta.get(METADATA_KEY, b"{}"))
