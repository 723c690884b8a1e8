"""bmshost_sink_mqtt."""
