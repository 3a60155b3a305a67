// Runs graphql-http's serverAudits (the GraphQL-over-HTTP spec's audit
// suite) against GRAPHQL_URL and prints one JSON line per audit:
// {"id", "name", "status": "ok" | "warn" | "error", "reason"}. Requests carry
// AUDIT_AUTHORIZATION when set (calsync answers nothing but introspection to a
// caller without a token). Exits 1 when any audit is not "ok".
import { serverAudits } from 'graphql-http';

const url = process.env.GRAPHQL_URL;
if (!url) {
  console.error('GRAPHQL_URL is not set');
  process.exit(2);
}
const authorization = process.env.AUDIT_AUTHORIZATION;
const fetchFn = (input, init = {}) => {
  const headers = new Headers(init.headers);
  if (authorization) headers.set('Authorization', authorization);
  return fetch(input, { ...init, headers });
};

let failed = 0;
for (const audit of serverAudits({ url, fetchFn })) {
  const result = await audit.fn();
  if (result.status !== 'ok') failed++;
  console.log(JSON.stringify({ id: audit.id, name: audit.name, status: result.status, reason: result.reason ?? '' }));
}
process.exit(failed ? 1 : 0);
