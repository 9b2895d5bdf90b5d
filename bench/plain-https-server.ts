/**
 * Ceiling 1: plain node:https with the proxy's exact TLS settings, answering a small JSON to any POST
 * after reading the body. Prints its port on stdout.
 *
 * Optional third argument: CPU µs to hold per request before answering. A closed-loop client then
 * waits on this server as long as it waits on the proxy, which matters on loopback: the kernel wakes
 * an idle client inside the server's write, and that wake-up (a cross-core interrupt, costly in a VM)
 * is charged to the server. Held CPU is burned, not slept, so the server's core stays as busy.
 */
import { createServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { serverTlsOptions } from '../src/server/tls';

const [certFile, keyFile, holdArg] = process.argv.slice(2) as [string, string, string | undefined];
const holdUs = Number(holdArg ?? 0);
const reply = JSON.stringify({ ok: true });

function hold(): void {
  const start = process.cpuUsage();
  for (;;) {
    const used = process.cpuUsage(start);
    if (used.user + used.system >= holdUs) return;
  }
}

const server = createServer({ ...serverTlsOptions(certFile, keyFile), keepAliveTimeout: 65000 }, (req, res) => {
  req.on('data', () => {});
  req.on('end', () => {
    if (holdUs > 0) hold();
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(reply) });
    res.end(reply);
  });
});
server.listen(0, '127.0.0.1', () => process.stdout.write(`${(server.address() as AddressInfo).port}\n`));
process.on('SIGTERM', () => process.exit(0));
