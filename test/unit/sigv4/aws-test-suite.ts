// The vendored AWS SigV4 test suite (test/fixtures/aws-sig-v4-test-suite), and a way to hand its raw
// requests to node's own HTTP parser, so the verifier sees exactly what the server would receive.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import { connect, type AddressInfo } from 'node:net';
import { join } from 'node:path';
import type { IncomingSignedRequest } from '../../../src/auth/sigv4';

// dist/test/unit/sigv4 -> the repository root: fixtures are read from the source tree, not copied.
export const SUITE_DIR = join(__dirname, '..', '..', '..', '..', 'test', 'fixtures', 'aws-sig-v4-test-suite');

// The suite's credentials, scope and time (its README).
export const SUITE = {
  accessKeyId: 'AKIDEXAMPLE',
  secretAccessKey: 'wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY',
  region: 'us-east-1',
  service: 'service',
  now: Date.UTC(2015, 7, 30, 12, 36, 0),
} as const;

export interface Vector {
  /** e.g. "normalize-path/get-slash" */
  id: string;
  name: string;
  req: string;
  creq: string;
  sts: string;
  authz: string;
  sreq: string;
}

export function loadSuite(dir: string = SUITE_DIR): Vector[] {
  const vectors: Vector[] = [];
  const walk = (rel: string): void => {
    const abs = join(dir, rel);
    const entries = readdirSync(abs).sort();
    const name = rel.split('/').pop()!;
    if (entries.includes(`${name}.req`)) {
      const file = (ext: string): string => readFileSync(join(abs, `${name}.${ext}`), 'utf8');
      vectors.push({ id: rel, name, req: file('req'), creq: file('creq'), sts: file('sts'), authz: file('authz'), sreq: file('sreq') });
      return;
    }
    for (const entry of entries) {
      if (statSync(join(abs, entry)).isDirectory()) walk(rel === '' ? entry : `${rel}/${entry}`);
    }
  };
  walk('');
  return vectors;
}

/** A .req/.sreq file: request line and headers, then an optional body after the first blank line. */
export interface RawRequest {
  head: string[];
  body: string;
}

export function splitRaw(raw: string): RawRequest {
  const blank = raw.indexOf('\n\n');
  return blank < 0 ? { head: raw.split('\n'), body: '' } : { head: raw.slice(0, blank).split('\n'), body: raw.slice(blank + 2) };
}

/** "GET /example space/ HTTP/1.1": the target is everything between the first and the last space. */
function requestLine(line: string): { method: string; target: string; version: string } {
  const first = line.indexOf(' ');
  const last = line.lastIndexOf(' ');
  return { method: line.slice(0, first), target: line.slice(first + 1, last), version: line.slice(last + 1) };
}

/** A request file as the verifier takes it, read by this helper rather than node (for files node refuses). */
export function requestFromFile(raw: string): IncomingSignedRequest {
  const { head, body } = splitRaw(unfoldHeaders(raw));
  const { method, target } = requestLine(head[0]!);
  const rawHeaders = head.slice(1).flatMap((line) => {
    const colon = line.indexOf(':');
    return [line.slice(0, colon), line.slice(colon + 1).trim()];
  });
  return { method, url: target, rawHeaders, body: Buffer.from(body, 'utf8') };
}

/** An obs-fold continuation line becomes the same header repeated (the suite's .creq joins them with commas). */
export function unfoldHeaders(raw: string): string {
  const { head, body } = splitRaw(raw);
  const lines = [head[0]!];
  let previousName = '';
  for (const line of head.slice(1)) {
    if (/^[ \t]/.test(line)) {
      lines.push(`${previousName}:${line.trim()}`);
    } else {
      previousName = line.slice(0, line.indexOf(':'));
      lines.push(line);
    }
  }
  return body === '' ? lines.join('\n') : `${lines.join('\n')}\n\n${body}`;
}

/**
 * How a client puts a vector on the wire when the file itself is not valid HTTP/1.1: folded header
 * lines unfolded, and a request target with raw UTF-8 or a space percent-encoded.
 */
export function toWireForm(raw: string): string {
  const unfolded = unfoldHeaders(raw);
  const lineEnd = unfolded.indexOf('\n');
  const { method, target, version } = requestLine(lineEnd < 0 ? unfolded : unfolded.slice(0, lineEnd));
  const encoded = target.replace(/[^\x21-\x7e]/gu, (c) => encodeURIComponent(c));
  return `${method} ${encoded} ${version}${lineEnd < 0 ? '' : unfolded.slice(lineEnd)}`;
}

export type Received = { ok: true; request: IncomingSignedRequest } | { ok: false; parseError: string };

/**
 * A plain node:http server that records the next request as node parsed it, or the parser's
 * error code for bytes it refuses. One request at a time (the tests send them in turn).
 */
export class NodeReceiver {
  private server: Server | undefined;
  private pending: ((r: Received) => void) | undefined;

  async start(): Promise<void> {
    const server = createServer((req: IncomingMessage, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        this.settle({ ok: true, request: { method: req.method!, url: req.url!, rawHeaders: req.rawHeaders, body: Buffer.concat(chunks) } });
        res.end();
      });
    });
    server.on('clientError', (err: NodeJS.ErrnoException, socket) => {
      this.settle({ ok: false, parseError: err.code ?? err.message });
      socket.destroy();
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    this.server = server;
  }

  async stop(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  /** Sends the file's text with CRLF line ends and, for a body, the Content-Length HTTP needs (unsigned). */
  receive(raw: string): Promise<Received> {
    const { head, body } = splitRaw(raw);
    const bodyBytes = Buffer.from(body, 'utf8');
    const hasLength = head.some((l) => /^content-length:/i.test(l));
    const lines = bodyBytes.length > 0 && !hasLength ? [...head, `Content-Length:${bodyBytes.length}`] : head;
    const bytes = Buffer.concat([Buffer.from(`${lines.join('\r\n')}\r\n\r\n`, 'utf8'), bodyBytes]);
    const port = (this.server!.address() as AddressInfo).port;
    return new Promise<Received>((resolve) => {
      this.pending = resolve;
      const socket = connect(port, '127.0.0.1', () => socket.write(bytes));
      socket.on('data', () => socket.end());
      socket.on('error', () => undefined);
    });
  }

  private settle(result: Received): void {
    const pending = this.pending;
    this.pending = undefined;
    pending?.(result);
  }
}
