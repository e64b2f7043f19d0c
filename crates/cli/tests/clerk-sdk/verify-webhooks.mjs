// Verifies webhook deliveries with Clerk's own `verifyWebhook` (@clerk/backend/webhooks, the
// version pinned in package-lock.json), as an app's Clerk webhook handler would.
// Reads a JSON list of {secret, headers, body} on stdin; prints each verified event's type and
// data's object and id, one per line; exits non-zero at the first that does not verify.
import { verifyWebhook } from '@clerk/backend/webhooks';

const input = JSON.parse(await new Promise((resolve) => {
  let text = '';
  process.stdin.on('data', (chunk) => { text += chunk; });
  process.stdin.on('end', () => resolve(text));
}));
for (const delivery of input) {
  const request = new Request('http://127.0.0.1/hook', {
    method: 'POST',
    headers: delivery.headers,
    body: delivery.body,
  });
  try {
    const evt = await verifyWebhook(request, { signingSecret: delivery.secret });
    console.log(`${evt.type} ${evt.data.object} ${evt.data.id}`);
  } catch (e) {
    console.error(`not verified: ${e}`);
    process.exit(1);
  }
}
