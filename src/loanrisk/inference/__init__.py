"""Scoring: backends (oneDAL, XGBoost), the scorer, reason codes, the hot-swapping cache."""
