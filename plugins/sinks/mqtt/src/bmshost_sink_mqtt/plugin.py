"""Hook implementations of bmshost_sink_mqtt (being built)."""
