"""Writes the vendor documents the fuzz tests run schemathesis with: each vendor's own OpenAPI
document (kept beside this script), cut down to the operations roster's mount of that vendor
serves, with the components they reference. Run it again after refreshing a vendor document:

    python3 crates/cli/tests/specs/mounted.py

The operations are listed here by hand: they are what roster implements of each vendor's API,
which no document says.
"""

import json
import pathlib

HERE = pathlib.Path(__file__).parent

# vendor document -> (written document, operations served: (method, path) as the document
# spells them)
MOUNTED = {
    "planetscale-openapi.json": (
        "planetscale-mounted.json",
        [
            ("get", "/organizations/{organization}/members"),
            ("get", "/organizations/{organization}/members/{id}"),
            ("patch", "/organizations/{organization}/members/{id}"),
            ("delete", "/organizations/{organization}/members/{id}"),
            ("get", "/organizations/{organization}/service-tokens"),
            ("post", "/organizations/{organization}/service-tokens"),
            ("get", "/organizations/{organization}/service-tokens/{id}"),
            ("delete", "/organizations/{organization}/service-tokens/{id}"),
        ],
    ),
}


def references(node):
    """Every `$ref` under `node`."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str):
                yield value
            else:
                yield from references(value)
    elif isinstance(node, list):
        for value in node:
            yield from references(value)


def cut(document, operations):
    paths = {}
    for method, path in operations:
        item = document["paths"][path]
        kept = paths.setdefault(path, {k: v for k, v in item.items() if k == "parameters"})
        kept[method] = item[method]
    components = {}
    pending = list(references(paths))
    seen = set()
    while pending:
        ref = pending.pop()
        if ref in seen:
            continue
        seen.add(ref)
        _, section, name = ref.split("/", 3)[1:]
        value = document["components"][section][name]
        components.setdefault(section, {})[name] = value
        pending.extend(references(value))
    out = {
        "openapi": document["openapi"],
        "info": document["info"],
        "paths": paths,
        "components": {k: dict(sorted(v.items())) for k, v in sorted(components.items())},
    }
    return out


def main():
    for source, (target, operations) in MOUNTED.items():
        document = json.loads((HERE / source).read_text())
        written = cut(document, operations)
        (HERE / target).write_text(json.dumps(written, indent=1, sort_keys=False) + "\n")
        print(f"{target}: {len(operations)} operations")


if __name__ == "__main__":
    main()
