"""The ``floorflow`` command: one module per verb group, each taking argv apart and handing it to a room.

``commands`` builds the parser and dispatches (``validate``, ``graph`` and ``steps`` live there, being a
few lines each); ``run`` puts a station together for ``floorflow run``; ``records`` holds the store's
verbs (``units``, ``recipe release``, ``export``); ``simulate`` runs ``floorflow simulate``; ``shared``
is what they all use: the exit codes (one meaning per code under every verb), the usage error, the
warning about units a dead station left. A verb imports the rooms it needs when it runs, so
``floorflow validate`` never loads the runner. Nothing outside this room imports it, and verbs do not
import each other.
"""

from engine.cli.commands import main

__all__ = ["main"]
