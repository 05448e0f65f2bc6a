"""What people read of the records: exports (JSON, CSV, JUnit XML, HTML) and terminal views of units.

``export`` writes a store's records in each format, atomically; ``html`` is the one self-contained
HTML report; ``text`` is how every format writes times, values, limits and yields; ``unitview`` is
the terminal's view of one unit or a table of many; ``mirror`` keeps each unit's record as a JSON
file while a station runs (``--json-out``), a subscriber to the runner's events. This room reads
records (``engine.record``, ``engine.store``) and never runs a unit.
"""
