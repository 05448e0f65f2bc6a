"""Running units through a station: the runner, its slots, each stage's attempts and the guards.

``runner.StationRunner`` deals units to slots (``slots``), each slot drives one unit's model through
the flow's ``transitions`` machine (``machine``), where it is on its route (``unitstate``) and the run-time
guards (``guards``) decide each move, and ``stagerunner`` runs one stage: its attempts (``attempt``),
the engine's judgement of measurements (``measure``), the record. People answer manual checks through
``operator`` (or an ``answers`` file); the runner's events (``engine.events``) go to subscribers such as the live
``console``; ``signals`` and ``runlog`` are how a station stops and what it logs. This room reads a
recipe's compiled flow and writes through the store's ``History``; it never imports ``cli``.
"""
