"""bmshost_jk."""
