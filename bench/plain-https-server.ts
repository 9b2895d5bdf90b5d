/**
 * Ceiling 1: plain node:https with the proxy's exact TLS settings, answering a JSON to any POST
 * after reading the body. Prints its port on stdout.
 *
 * Optional third argument: CPU µs to hold per request before answering. A closed-loop client then
 * waits on this server as long as it waits on the proxy, which matters on loopback: the kernel wakes
 * an idle client inside the server's write, and that wake-up (a cross-core interrupt, costly in a VM)
 * is charged to the server. Held CPU is burned, not slept, so the server's core stays as busy.
 *
 * Optional fourth argument: JSON { "<request body bytes>": <answer body bytes> }. A request whose body
 * has that length gets a JSON answer of that length (as long as the proxy's answer to the same
 * request); any other gets {"ok":true}.
 */
import { createServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { serverTlsOptions } from '../src/server/tls';

const [certFile, keyFile, holdArg, answersArg] = process.argv.slice(2) as [string, string, string | undefined, string | undefined];
const holdUs = Number(holdArg ?? 0);
const reply = Buffer.from(JSON.stringify({ ok: true }));
const replies = new Map(Object.entries(JSON.parse(answersArg ?? '{}') as Record<string, number>).map(([requestBytes, answerBytes]) => [Number(requestBytes), jsonOfLength(answerBytes)]));

/** {"ok":"xxx…"}, exactly `bytes` long (at least as long as the shortest such answer). */
function jsonOfLength(bytes: number): Buffer {
  return Buffer.from(`{"ok":"${'x'.repeat(Math.max(0, bytes - 9))}"}`);
}

function hold(): void {
  const start = process.cpuUsage();
  for (;;) {
    const used = process.cpuUsage(start);
    if (used.user + used.system >= holdUs) return;
  }
}

const server = createServer({ ...serverTlsOptions(certFile, keyFile), keepAliveTimeout: 65000 }, (req, res) => {
  let received = 0;
  req.on('data', (chunk: Buffer) => (received += chunk.length));
  req.on('end', () => {
    if (holdUs > 0) hold();
    const answer = replies.get(received) ?? reply;
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': answer.length });
    res.end(answer);
  });
});
server.listen(0, '127.0.0.1', () => process.stdout.write(`${(server.address() as AddressInfo).port}\n`));
process.on('SIGTERM', () => process.exit(0));
