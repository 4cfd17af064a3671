"""shopmtl-reviews: a plugin task on its own data, shipped as Parquet splits in the wheel."""
