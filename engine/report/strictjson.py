"""JSON for other tools, strict (RFC 8259): a number that is not finite written as text.

Python's ``json`` writes NaN and the infinities as the bare words ``NaN``, ``Infinity`` and
``-Infinity``, which are not JSON: jq, a browser's ``JSON.parse`` and most other readers refuse the
whole file. A measurement can be one of them (a meter's overflow, a failed fit), so what the
records' readers get writes each as the string ``"NaN"``, ``"Infinity"`` or ``"-Infinity"``, as the
CSV export writes it as text. The document is written by the standard library's fast path first;
only one in which such a number was found is written again, with them replaced.
"""

from __future__ import annotations

import json
import math
from typing import Any

_WORDS = ("NaN", "Infinity")


def dumps(document: Any, **options: Any) -> str:
    """``json.dumps(document, **options)``, with each number that is not finite written as a string."""
    text = json.dumps(document, **options)
    if any(word in text for word in _WORDS):  # maybe only inside a string: then written again unchanged
        text = json.dumps(_finite(document), allow_nan=False, **options)
    return text


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    if isinstance(value, dict):
        return {key: _finite(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(item) for item in value]
    return value
