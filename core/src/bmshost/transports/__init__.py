"""Built-in links: in-process simulators and capture replay."""
