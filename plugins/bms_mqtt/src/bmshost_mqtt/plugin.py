"""Hook implementations of bmshost_mqtt (being built)."""
