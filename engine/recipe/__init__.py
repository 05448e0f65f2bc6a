"""Recipes, from text to a checked flow: everything ``floorflow validate`` and ``graph`` do.

A recipe is read (``load``: YAML with positions from ``engine.yamlload``, the JSON Schema in ``schema``
and ``schemawalk``, ``extends:`` confined by ``tree`` and merged by ``merge``), its ``with:`` mappings
turned into step parameters (``params``), compiled into an immutable ``engine.flow.Flow``
(``compile``), and checked: the route rules (``rules``, with the route walk in ``routewalk``) and
the image feature rules (``features``). ``check`` runs these in order and is what the verbs call;
``graph`` draws a flow; ``schemagen`` keeps the schema's step-parameter part in step with the step
types. This room imports only the engine's core (the top-level modules), never ``run``, ``store``,
``report``, ``simulate`` or ``cli``.
"""
