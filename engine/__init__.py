"""floorflow: a declarative YAML workflow engine for the factory floor.

The modules at this level are the core: the step contract (``step``, ``context``, ``outcome``), the
compiled flow (``flow``), records and events (``record``, ``events``), and what every room shares
(``diagnostics``, ``inputs``, ``yamlload``, ``files``, ``registry``, ``sampling``, ``resources``,
``extras``), with ``testing`` and ``contract`` for step authors. The rooms follow a unit's data:
``recipe`` (read and check), ``run`` (a station), ``store`` (the record), ``report`` (what people read),
``simulate`` (a whole line) and ``cli`` (the command). Imports run one way, from ``cli`` down to the
core; docs/architecture.md draws the house and tests/test_layout.py holds it to that.
"""

__version__ = "0.1.0"
