"""bmshost_transport_can."""
