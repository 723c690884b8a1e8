"""bmshost_transport_serial."""
