"""Writes the vendor documents the fuzz tests run schemathesis with (`tests/api/fuzz.rs`): each
vendor's own OpenAPI document cut down to the operations roster's mount of that vendor serves,
with the components they reference. Run it again after refreshing a vendor document:

    crates/cli/tests/schemathesis/.venv/bin/python crates/cli/tests/specs/mounted.py

The PlanetScale and Infisical documents are read from this directory; Clerk's, which no other
test reads, from the vendor's YAML given as `--clerk PATH` (read as YAML 1.2: only `true` and
`false` are booleans, and dates stay strings). The operations are listed here by hand: they
are what roster implements of each vendor's API, which no document says.
"""

import argparse
import json
import pathlib
import re

HERE = pathlib.Path(__file__).parent

# written document -> [(vendor document, [(method, path) as that document spells it])]
MOUNTED = {
    "planetscale-mounted.json": [
        (
            "planetscale-openapi.json",
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
        )
    ],
    "infisical-mounted.json": [
        (
            "infisical-delete-org-membership.json",
            [("delete", "/api/v2/organizations/{organizationId}/memberships/{membershipId}")],
        ),
        (
            "infisical-bulk-delete-org-memberships.json",
            [("delete", "/api/v2/organizations/{organizationId}/memberships")],
        ),
        (
            "infisical-delete-project-identity-membership.json",
            [("delete", "/api/v1/projects/{projectId}/identity-memberships/{identityId}")],
        ),
    ],
    "clerk-mounted.json": [
        (
            "--clerk",
            [
                ("get", "/organizations"),
                ("post", "/organizations"),
                ("patch", "/organizations/{organization_id}/metadata"),
                ("put", "/organizations/{organization_id}/metadata"),
                ("get", "/organizations/{organization_id}/memberships"),
                ("post", "/organizations/{organization_id}/memberships"),
                ("patch", "/organizations/{organization_id}/memberships/{user_id}"),
                ("delete", "/organizations/{organization_id}/memberships/{user_id}"),
                ("patch", "/organizations/{organization_id}/memberships/{user_id}/metadata"),
                ("get", "/users"),
                ("post", "/users"),
                ("get", "/users/count"),
                ("get", "/users/{user_id}"),
                ("patch", "/users/{user_id}"),
                ("delete", "/users/{user_id}"),
                # Last, so that the organization the run names is there for everything else.
                ("get", "/organizations/{organization_id}"),
                ("patch", "/organizations/{organization_id}"),
                ("delete", "/organizations/{organization_id}"),
            ],
        )
    ],
}


def yaml_1_2(path):
    """A YAML document read as YAML 1.2 would read it."""
    import yaml

    class Loader(yaml.SafeLoader):
        pass

    Loader.yaml_implicit_resolvers = {
        first: [
            (tag, regexp)
            for tag, regexp in resolvers
            if tag not in ("tag:yaml.org,2002:bool", "tag:yaml.org,2002:timestamp")
        ]
        for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
    }
    Loader.add_implicit_resolver(
        "tag:yaml.org,2002:bool", re.compile(r"^(?:true|false)$"), list("tf")
    )
    with open(path) as f:
        return yaml.load(f, Loader=Loader)


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


def cut(document, operations, into):
    """Copies `operations` of `document`, and every component they reach, into `into`."""
    paths = into.setdefault("paths", {})
    for method, path in operations:
        item = document["paths"][path]
        kept = paths.setdefault(path, {k: v for k, v in item.items() if k == "parameters"})
        kept[method] = item[method]
    components = into.setdefault("components", {})
    pending = list(references(paths))
    seen = set()
    while pending:
        ref = pending.pop()
        if ref in seen:
            continue
        seen.add(ref)
        section, name = ref.split("/")[2:4]
        value = document["components"][section][name]
        components.setdefault(section, {})[name] = value
        pending.extend(references(value))
    for section, schemes in document.get("components", {}).items():
        if section == "securitySchemes":
            components.setdefault(section, {}).update(schemes)
    if "security" in document:
        into["security"] = document["security"]
    into.setdefault("openapi", document["openapi"])
    into.setdefault("info", document["info"])


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--clerk", help="Clerk's Backend API document (YAML)")
    args = parser.parse_args()
    for target, sources in MOUNTED.items():
        written = {}
        for source, operations in sources:
            if source == "--clerk":
                if not args.clerk:
                    print(f"{target}: kept as it is (no --clerk)")
                    break
                document = yaml_1_2(args.clerk)
            else:
                document = json.loads((HERE / source).read_text())
            cut(document, operations, written)
        else:
            ordered = {k: written[k] for k in ("openapi", "info", "security", "paths", "components") if k in written}
            (HERE / target).write_text(json.dumps(ordered, indent=1) + "\n")
            print(f"{target}: {sum(len(ops) for _, ops in sources)} operations")


if __name__ == "__main__":
    main()
