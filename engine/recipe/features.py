"""Check 6: image feature rules, read from the data catalogue ``schemas/image-features.yaml``."""

from __future__ import annotations

import functools
from typing import Any

from engine.diagnostics import Diagnostic, Pos, Severity, did_you_mean
from engine.flow import Flow, Image
from engine.resources import schema_path
from engine.yamlload import load_file


@functools.cache
def catalogue() -> dict[str, Any]:
    data = load_file(schema_path("image-features.yaml"))
    return dict(data)


def check_features(flow: Flow, rules: dict[str, Any] | None = None) -> list[Diagnostic]:
    rules = rules if rules is not None else catalogue()
    out: list[Diagnostic] = []
    for image in flow.images.values():
        out.extend(_check_image(image, rules))
    return out


def _pos(image: Image, feature: str) -> Pos:
    for name, pos in zip(image.features, image.feature_pos, strict=False):
        if name == feature:
            return pos
    return image.pos


def _applies(rule: dict[str, Any], image: Image) -> bool:
    platforms = rule.get("platforms")
    return platforms is None or image.platform in platforms


def _check_image(image: Image, rules: dict[str, Any]) -> list[Diagnostic]:
    """Every feature rule of the catalogue, applied to one image."""
    return [*_known_features(image, rules), *_combinations(image, rules), *_unsupported(image, rules)]


def _said(image: Image, feature: str | None, code: str, message: str, severity: Severity = "error") -> Diagnostic:
    """A diagnostic about the image, at the feature it is about (at the image when None)."""
    pos = image.pos if feature is None else _pos(image, feature)
    return Diagnostic(pos, severity, code, f"image '{image.name}': {message}")


def _known_features(image: Image, rules: dict[str, Any]) -> list[Diagnostic]:
    """Features the catalogue does not know (a warning), and test-only ones in an image that refuses them."""
    known = rules.get("features", [])
    out = [
        _said(
            image,
            f,
            "feature-unknown",
            f"feature '{f}' is not in the feature catalogue{did_you_mean(f, known)}",
            "warning",
        )
        for f in image.features
        if f not in known
    ]
    test_only = rules.get("test_only", {})
    if image.type in test_only.get("refused_in", []):
        reason = test_only.get("reason", "is test-only")
        out += [
            _said(image, f, "feature-test-only", f"{f} {reason} (this is a {image.type} image)")
            for f in image.features
            if f in test_only.get("features", [])
        ]
    return out


def _combinations(image: Image, rules: dict[str, Any]) -> list[Diagnostic]:
    """The rules on how many of a group of features may be set: mutually exclusive, at most one, exactly one."""
    have = set(image.features)
    out = []
    for rule in rules.get("mutually_exclusive", []):
        both = [f for f in rule["features"] if f in have]
        if len(both) > 1 and _applies(rule, image):
            message = f"{' and '.join(both)} cannot both be set: {rule['reason']}"
            out.append(_said(image, both[-1], "feature-exclusive", message))
    for rule in rules.get("at_most_one", []):
        several = [f for f in rule["features"] if f in have]
        if len(several) > 1 and _applies(rule, image):
            group, named = ", ".join(rule["features"]), ", ".join(several)
            message = f"at most one of {group} may be set, found {named}: {rule['reason']}"
            out.append(_said(image, several[-1], "feature-at-most-one", message))
    for rule in rules.get("exactly_one", []):
        found = [f for f in rule["features"] if f in have]
        if len(found) != 1 and _applies(rule, image):
            group, shown = ", ".join(rule["features"]), ", ".join(found) or "none"
            message = f"exactly one of {group} must be set, found {shown}: {rule['reason']}"
            out.append(_said(image, found[-1] if found else None, "feature-exactly-one", message))
    return out


def _unsupported(image: Image, rules: dict[str, Any]) -> list[Diagnostic]:
    """Features a platform's images cannot have."""
    return [
        _said(image, f, "feature-unsupported", f"{f} cannot be used in a {image.platform} image: {rule['reason']}")
        for rule in rules.get("unsupported", [])
        if _applies(rule, image)
        for f in image.features
        if f in rule["features"]
    ]
