import type { ServerResponse } from 'node:http';
import { AsciiJson } from '../common/ascii-json';

/**
 * Writes the whole JSON response, with an exact Content-Length, in one writeHead. `body` is
 * serialised with JSON.stringify unless it already is the JSON's text (AsciiJson).
 * `headers`: further headers as a flat [name, value, ...] list (the XKS path's security headers).
 */
export function writeJson(res: ServerResponse, status: number, body: unknown, contentType = 'application/json', headers: readonly string[] = []): void {
  const ascii = body instanceof AsciiJson;
  const payload = ascii ? body.text : JSON.stringify(body);
  res.writeHead(status, [...headers, 'Content-Type', contentType, 'Content-Length', String(ascii ? payload.length : Buffer.byteLength(payload))]);
  res.end(payload, ascii ? 'latin1' : 'utf8');
}
