"""bmshost_seplos."""
