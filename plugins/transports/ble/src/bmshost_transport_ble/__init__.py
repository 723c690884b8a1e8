"""bmshost_transport_ble."""
