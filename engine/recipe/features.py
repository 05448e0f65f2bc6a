"""Check 6: image feature rules, read from the data catalogue ``schemas/image-features.yaml``."""

from __future__ import annotations

import functools
from typing import Any

from engine.diagnostics import Diagnostic, Pos, did_you_mean
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
    out: list[Diagnostic] = []
    have = set(image.features)

    def error(pos: Pos, code: str, message: str, severity: str = "error") -> None:
        out.append(Diagnostic(pos, severity, code, f"image '{image.name}': {message}"))  # type: ignore[arg-type]

    known = rules.get("features", [])
    for feature in image.features:
        if feature not in known:
            error(
                _pos(image, feature),
                "feature-unknown",
                f"feature '{feature}' is not in the feature catalogue{did_you_mean(feature, known)}",
                "warning",
            )
    test_only = rules.get("test_only", {})
    if image.type in test_only.get("refused_in", []):
        for feature in image.features:
            if feature in test_only.get("features", []):
                error(
                    _pos(image, feature),
                    "feature-test-only",
                    f"{feature} {test_only.get('reason', 'is test-only')} (this is a {image.type} image)",
                )
    for rule in rules.get("mutually_exclusive", []):
        both = [f for f in rule["features"] if f in have]
        if len(both) > 1 and _applies(rule, image):
            error(
                _pos(image, both[-1]),
                "feature-exclusive",
                f"{' and '.join(both)} cannot both be set: {rule['reason']}",
            )
    for rule in rules.get("at_most_one", []):
        several = [f for f in rule["features"] if f in have]
        if len(several) > 1 and _applies(rule, image):
            error(
                _pos(image, several[-1]),
                "feature-at-most-one",
                f"at most one of {', '.join(rule['features'])} may be set, found "
                f"{', '.join(several)}: {rule['reason']}",
            )
    for rule in rules.get("exactly_one", []):
        found = [f for f in rule["features"] if f in have]
        if len(found) != 1 and _applies(rule, image):
            where = _pos(image, found[-1]) if found else image.pos
            error(
                where,
                "feature-exactly-one",
                f"exactly one of {', '.join(rule['features'])} must be set, found "
                f"{', '.join(found) or 'none'}: {rule['reason']}",
            )
    for rule in rules.get("unsupported", []):
        if _applies(rule, image):
            for feature in image.features:
                if feature in rule["features"]:
                    error(
                        _pos(image, feature),
                        "feature-unsupported",
                        f"{feature} cannot be used in a {image.platform} image: {rule['reason']}",
                    )
    return out
