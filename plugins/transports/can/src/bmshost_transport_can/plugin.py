"""Hook implementations of bmshost_transport_can (being built)."""
