import type { ServerResponse } from 'node:http';

/** Writes `body` as the whole JSON response, with an exact Content-Length. */
export function writeJson(res: ServerResponse, status: number, body: unknown, contentType = 'application/json'): void {
  const payload = JSON.stringify(body);
  res.statusCode = status;
  res.setHeader('Content-Type', contentType);
  res.setHeader('Content-Length', Buffer.byteLength(payload));
  res.end(payload);
}
