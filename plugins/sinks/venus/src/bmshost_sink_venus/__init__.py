"""bmshost_sink_venus."""
