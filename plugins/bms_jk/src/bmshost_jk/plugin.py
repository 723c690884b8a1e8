"""Hook implementations of bmshost_jk (being built)."""
