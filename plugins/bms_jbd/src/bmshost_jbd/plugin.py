"""Hook implementations of bmshost_jbd (being built)."""
