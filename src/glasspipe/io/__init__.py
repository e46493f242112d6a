"""Reading and writing the files that pass between stages (GSD, Parquet, JSON), always atomically."""
