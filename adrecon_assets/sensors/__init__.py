"""Sensors: launch days when the lake closes them, rerun days whose lake files changed."""
