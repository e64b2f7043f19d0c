"""Runs scim2-tester, the SCIM conformance checker of the python-scim project, against one
organization's SCIM base URL, and prints each check's result as a line of JSON for the Rust
test (tests/api/scim.rs) to judge.

Usage: check.py BASE_URL TOKEN
"""

import json
import sys

import httpx2
from scim2_client.engines.httpx2 import SyncSCIMClient
from scim2_tester import check_server


def main() -> None:
    base, token = sys.argv[1], sys.argv[2]
    http = httpx2.Client(base_url=base, headers={"Authorization": f"Bearer {token}"})
    client = SyncSCIMClient(http)
    for result in check_server(client):
        print(
            json.dumps(
                {
                    "status": result.status.name,
                    "title": result.title,
                    "resource_type": result.resource_type,
                    "reason": str(result.reason) if result.reason is not None else None,
                }
            ),
            flush=True,
        )


if __name__ == "__main__":
    main()
