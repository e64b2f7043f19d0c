"""Verifies webhook deliveries with the Standard Webhooks reference library (standardwebhooks,
pinned in tests/schemathesis/requirements.txt), not with roster's own code.

Reads a JSON list of {"secret", "headers", "body"} on stdin; prints each verified payload's
`type` and `id`, one per line; exits non-zero at the first delivery that does not verify.
"""

import json
import sys

from standardwebhooks.webhooks import Webhook

for delivery in json.load(sys.stdin):
    payload = Webhook(delivery["secret"]).verify(delivery["body"], delivery["headers"])
    print(payload["type"], payload["id"])
