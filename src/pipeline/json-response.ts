import type { ServerResponse } from 'node:http';

/**
 * Writes the whole JSON response, with an exact Content-Length, in one writeHead. `body` is
 * serialised with JSON.stringify unless it already is the JSON's bytes (an operation's encodeResult).
 * `headers`: further headers as a flat [name, value, ...] list (the XKS path's security headers).
 */
export function writeJson(res: ServerResponse, status: number, body: unknown, contentType = 'application/json', headers: readonly string[] = []): void {
  const payload = Buffer.isBuffer(body) ? body : JSON.stringify(body);
  res.writeHead(status, [...headers, 'Content-Type', contentType, 'Content-Length', String(typeof payload === 'string' ? Buffer.byteLength(payload) : payload.length)]);
  res.end(payload);
}
