"""Built-in control stages: CVL, CCL/DCL, SoC, derived values, history, alarms, disconnect."""
