"""Preprocessing: fitted with sklearn (as the reference), frozen to JSON, served with numpy."""
