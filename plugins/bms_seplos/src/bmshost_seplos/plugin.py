"""Hook implementations of bmshost_seplos (being built)."""
