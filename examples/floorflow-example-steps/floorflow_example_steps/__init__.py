"""Example step types for floorflow, one per module: ``example.cosmetic_grade`` and ``example.device_id_check``.

floorflow finds them through the ``floorflow.steps`` entry points in pyproject.toml; nothing here
registers itself.
"""
