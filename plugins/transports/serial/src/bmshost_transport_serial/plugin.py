"""Hook implementations of bmshost_transport_serial (being built)."""
