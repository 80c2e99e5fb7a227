"""Data: sources -> canonical rows -> veRL parquet / TRL dataset.

Public API: `sources.load_examples`, `example.Example` / `make_example`, `prompt.DEFAULT_INSTRUCTION` /
`build_prompt`, `rows` (the row format's one home: `row_schema`, `example_to_row`, `read_rows`,
`check_row`, `open_parquet`), `writer.write_rows_parquet` / `ParquetChunkWriter`,
`build.build_recipe` / `build_from_examples`, `recipe.load_recipe`, `trl_view.to_trl_dataset`,
`inspect.inspect_parquet`. Submodules are imported on use, so image workers start light.
"""
