"""SQL written once, in one parameter style, given to each driver in the style it declares.

The store's statements mark each parameter with ``?`` (DB-API's ``qmark``). A driver declares its
own style in its module's ``paramstyle``: sqlite3 takes ``qmark``, psycopg ``pyformat`` (``%s``,
where a literal ``%`` must be doubled). ``Dialect`` reads a statement's text once, token by token,
so a ``?`` inside a quoted string, a quoted name or a comment stays what it is, and keeps the
statement in its driver's style for the next time.
"""

from __future__ import annotations

import re

_TOKENS = re.compile(
    r"""
      '(?:[^']|'')*'          # a string
    | "(?:[^"]|"")*"          # a quoted name
    | --[^\n]*                # a comment to the end of the line
    | /\*(?:.*?\*/|.*)        # a comment (unclosed: to the end, and refused)
    | [?]                     # a parameter
    | [^'"?/-]+ | .           # anything else
    """,
    re.VERBOSE | re.DOTALL,
)


class Dialect:
    """Statements in the parameter style of one driver (``qmark``, ``numeric``, ``format``, ``pyformat``)."""

    STYLES = ("qmark", "numeric", "format", "pyformat")

    def __init__(self, paramstyle: str) -> None:
        if paramstyle not in self.STYLES:
            raise ValueError(f"parameter style {paramstyle!r} is not one of {', '.join(self.STYLES)}")
        self.paramstyle = paramstyle
        self._texts: dict[str, str] = {}

    def __call__(self, statement: str) -> str:
        text = self._texts.get(statement)
        if text is None:
            text = self._texts[statement] = self.render(statement)
        return text

    def render(self, statement: str) -> str:
        """The statement with its ``?`` parameters in this driver's style."""
        out: list[str] = []
        number = 0
        for token in _TOKENS.findall(statement):
            if token in ("'", '"') or (token.startswith("/*") and (len(token) < 4 or not token.endswith("*/"))):
                # a quote or comment left open would hide the parameters after it
                raise ValueError(f"unclosed {token[:2]!r} in the statement: {statement}")
            if token == "?":
                number += 1
                token = {"qmark": "?", "numeric": f":{number}"}.get(self.paramstyle, "%s")
            elif self.paramstyle in ("format", "pyformat"):
                token = token.replace("%", "%%")  # the driver reads every % as a parameter's mark, quoted too
            out.append(token)
        return "".join(out)
