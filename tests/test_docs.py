"""The docs cannot drift from the code unnoticed: every key of the config schema has a row in
docs/configuration.md, and every relative link of the README and the docs pages resolves."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def schema_keys(node: dict, root: dict, prefix: str = "") -> list[str]:
    """Dotted key paths of a JSON schema: an object's properties, `<name>` for additionalProperties
    that are objects, `[]` for arrays of objects; alternatives (oneOf/anyOf) share their path, and
    a local ``$ref`` is followed."""
    if "$ref" in node:
        target = root
        for part in node["$ref"].removeprefix("#/").split("/"):
            target = target[part]
        node = {**target, **{k: v for k, v in node.items() if k != "$ref"}}
    keys = []
    for name, child in (node.get("properties") or {}).items():
        path = f"{prefix}{name}"
        keys.append(path)
        keys += schema_keys(child, root, path + ".")
    extra = node.get("additionalProperties")
    if isinstance(extra, dict) and (extra.get("properties") or "$ref" in extra):
        keys += schema_keys(extra, root, f"{prefix}<name>.")
    items = node.get("items")
    if isinstance(items, dict) and items.get("properties"):
        keys += schema_keys(items, root, prefix.rstrip(".") + "[].")
    for alternative in node.get("oneOf", []) + node.get("anyOf", []):
        keys += schema_keys(alternative, root, prefix)
    return keys


def test_every_config_key_is_documented():
    schema = yaml.safe_load((ROOT / "workflow/schemas/config.schema.yaml").read_text())
    documented = set(re.findall(r"^\| `([^`]+)`", (ROOT / "docs/configuration.md").read_text(), flags=re.M))
    keys = set(schema_keys(schema, schema))
    assert len(keys) > 50  # the walk found the schema's keys (not an empty pass)
    # A section is documented by the rows of its keys; a dataset's own section by the global one's.
    def has_rows(key: str) -> bool:
        return key in documented or any(row.startswith((key + ".", key + "[]")) for row in documented)

    covered = {key for key in keys if has_rows(key) or has_rows(key.removeprefix("datasets.<name>."))}
    assert sorted(keys - covered) == []


def test_relative_links_resolve():
    pages = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
    broken = []
    for page in pages:
        for target in re.findall(r"\]\(([^)\s]+)\)", page.read_text()):
            if re.match(r"[a-z]+:", target) or target.startswith("#"):
                continue
            path = target.split("#", 1)[0]
            if path and not (page.parent / path).exists():
                broken.append(f"{page.relative_to(ROOT)}: {target}")
    assert len(pages) > 1 and broken == []
