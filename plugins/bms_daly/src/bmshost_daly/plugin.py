"""Hook implementations of bmshost_daly (being built)."""
