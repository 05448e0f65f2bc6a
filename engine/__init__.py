"""floorflow: a declarative YAML workflow engine for the factory floor."""

__version__ = "0.1.0"
