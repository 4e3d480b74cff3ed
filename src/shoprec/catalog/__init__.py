"""The catalog edge: loading products, events and judgments from files (CSV, TSV, JSONL,
Parquet), writing them back atomically, and the seeded synthetic storefront.

Import names from the module that owns them: :mod:`shoprec.catalog.loaders` and
:mod:`shoprec.catalog.synthetic`.
"""
