"""The operator screen: a local web page with one tile per socket of a running station.

``board`` keeps what each tile shows from the runner's events; ``operator`` asks manual checks and
failures to confirm on the tile of the socket that asks; ``app`` is the page, its pushed updates
(Server-Sent Events) and what the operator posts (sign-in, scans, answers); ``server`` serves it
beside the sockets. The page's script and style are in ``static/``, shipped in the package.
"""
