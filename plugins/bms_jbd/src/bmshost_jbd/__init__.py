"""bmshost_jbd."""
