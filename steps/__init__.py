"""The step types shipped with floorflow, one module each.

They are registered through the ``floorflow.steps`` entry-point group (see ``pyproject.toml``);
the engine never imports this package directly.
"""
