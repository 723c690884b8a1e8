"""Hook implementations of bmshost_sink_venus (being built)."""
