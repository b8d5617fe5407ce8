"""Monitoring in production: the prediction log (and, built on it, drift and outcomes)."""
