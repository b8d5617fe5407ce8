"""Loan data: ingestion, the built-in sample, expansion, splitting, and datasets on storage."""
