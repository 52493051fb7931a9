"""How a secret setting reaches a resource (contract 1: every URL and key is a secret)."""

import dagster as dg


def secret(variable: str, value: str | None, default: str = "") -> str:
    """`dg.EnvVar(variable)` when the setting has a value of its own, else `default`: the
    resource then reads the value when it runs and the UI shows only the variable's name."""
    return dg.EnvVar(variable) if value and value != default else default
