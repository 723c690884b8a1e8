"""Hook implementations of bmshost_transport_ble (being built)."""
