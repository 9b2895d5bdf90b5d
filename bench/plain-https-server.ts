/**
 * Ceiling 1: plain node:https with the proxy's exact TLS settings, answering a small JSON to any POST
 * after reading the body. Prints its port on stdout.
 */
import { createServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { serverTlsOptions } from '../src/server/tls';

const [certFile, keyFile] = process.argv.slice(2) as [string, string];
const reply = JSON.stringify({ ok: true });
const server = createServer({ ...serverTlsOptions(certFile, keyFile), keepAliveTimeout: 65000 }, (req, res) => {
  req.on('data', () => {});
  req.on('end', () => {
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(reply) });
    res.end(reply);
  });
});
server.listen(0, '127.0.0.1', () => process.stdout.write(`${(server.address() as AddressInfo).port}\n`));
process.on('SIGTERM', () => process.exit(0));
