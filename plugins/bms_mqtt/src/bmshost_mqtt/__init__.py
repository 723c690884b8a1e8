"""bmshost_mqtt."""
