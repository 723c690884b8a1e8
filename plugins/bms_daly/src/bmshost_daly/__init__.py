"""bmshost_daly."""
