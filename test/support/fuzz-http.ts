/**
 * For the property-based fuzz tests against the real server: requests signed by the AWS SDK's own
 * signer (@smithy/signature-v4, independent of the proxy's aws4 verifier) and written byte for byte on
 * a fresh TLS connection, so a property can change anything after signing (header case, duplicates,
 * whitespace, the request line, the body) and time the answer. Also the JSON body builder whose
 * trees may hold what JSON.stringify cannot write: duplicate member names and raw number text.
 */
import { connect } from 'node:tls';
import { Sha256 } from '@aws-crypto/sha256-js';
import { HttpRequest } from '@smithy/protocol-http';
import { SignatureV4 } from '@smithy/signature-v4';
import type { Credential } from './xks-client';

/** Header lines in order, as written: a name may repeat, and its case and spacing are kept. */
export type HeaderLines = Array<[string, string]>;

export interface RawRequest {
  method: string;
  /** Request target as written on the request line: path and optional ?query. */
  target: string;
  headers: HeaderLines;
  body: Buffer;
}

export interface SignOptions {
  method?: string;
  path: string;
  /** Query members, signed (smithy's canonical query string) and written after the path. */
  query?: Record<string, string>;
  host: string;
  credential: Credential;
  region?: string;
  service?: string;
  signingDate?: Date;
  headers?: Record<string, string>;
  body: Buffer;
  /** Headers the signature must leave out (e.g. host, to test a SignedHeaders list without it). */
  unsignableHeaders?: Set<string>;
}

/** Signs with the SDK's signer and returns the request ready to be written (or mutated first). */
export async function signRaw(options: SignOptions): Promise<RawRequest> {
  const method = options.method ?? 'POST';
  const headers: Record<string, string> = { host: options.host, ...(options.headers ?? {}) };
  const signer = new SignatureV4({ service: options.service ?? 'kms-xks-proxy', region: options.region ?? 'us-east-1', credentials: options.credential, sha256: Sha256 });
  const [hostname, port] = options.host.split(':');
  const signed = await signer.sign(
    new HttpRequest({ method, protocol: 'https:', hostname: hostname as string, port: Number(port), path: options.path, query: options.query ?? {}, headers, body: options.body }),
    { ...(options.signingDate ? { signingDate: options.signingDate } : {}), ...(options.unsignableHeaders ? { unsignableHeaders: options.unsignableHeaders } : {}) },
  );
  const query = new URLSearchParams(options.query ?? {}).toString().replace(/\+/g, '%20');
  return {
    method,
    target: query === '' ? options.path : `${options.path}?${query}`,
    headers: Object.entries(signed.headers as Record<string, string>),
    body: options.body,
  };
}

/** The request's bytes: the request line, the header lines as given (plus Content-Length unless one is there), the body. */
export function requestBytes(request: RawRequest, version = 'HTTP/1.1'): Buffer {
  const lines = [...request.headers];
  if (!lines.some(([name]) => name.toLowerCase() === 'content-length')) lines.push(['content-length', String(request.body.length)]);
  if (!lines.some(([name]) => name.toLowerCase() === 'connection')) lines.push(['connection', 'close']);
  const head = `${request.method} ${request.target} ${version}\r\n${lines.map(([k, v]) => `${k}: ${v}`).join('\r\n')}\r\n\r\n`;
  return Buffer.concat([Buffer.from(head, 'latin1'), request.body]);
}

export interface RawAnswer {
  /** 0 when the connection closed without an answer. */
  status: number;
  headers: Record<string, string>;
  text: string;
  /** From the first byte written to the answer's last byte (or the close). */
  elapsedMs: number;
  /** The deadline passed before an answer was complete. */
  timedOut: boolean;
}

/**
 * Writes `bytes` on a fresh TLS connection and reads the first answer (by Content-Length, else until
 * the close). Never rejects: a connection error before an answer is status 0.
 */
export function exchange(port: number, ca: Buffer, bytes: Buffer, deadlineMs: number): Promise<RawAnswer> {
  return new Promise((resolve) => {
    const started = process.hrtime.bigint();
    const elapsed = () => Number(process.hrtime.bigint() - started) / 1e6;
    let data = Buffer.alloc(0);
    let settled = false;
    const finish = (timedOut: boolean): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      resolve({ ...parseAnswer(data), elapsedMs: elapsed(), timedOut });
    };
    const socket = connect({ host: '127.0.0.1', port, ca, servername: 'localhost' }, () => socket.write(bytes, () => undefined));
    const timer = setTimeout(() => finish(true), deadlineMs);
    socket.on('data', (chunk: Buffer) => {
      data = Buffer.concat([data, chunk]);
      if (answerComplete(data)) finish(false);
    });
    socket.on('error', () => finish(false));
    socket.on('close', () => finish(false));
  });
}

/** The answer after any interim 1xx (100 Continue) answers. */
function finalAnswer(data: Buffer): Buffer {
  let rest = data;
  while (/^HTTP\/1\.1 1\d\d /.test(rest.subarray(0, 13).toString('latin1'))) {
    const end = rest.indexOf('\r\n\r\n');
    if (end === -1) break;
    rest = rest.subarray(end + 4);
  }
  return rest;
}

function answerComplete(received: Buffer): boolean {
  const data = finalAnswer(received);
  const end = data.indexOf('\r\n\r\n');
  if (end === -1) return false;
  const length = /\r\ncontent-length:\s*(\d+)/i.exec(data.subarray(0, end).toString('latin1'));
  // A HEAD answer (or a 1xx) has no body to wait for: the close ends it, or the deadline.
  return length !== null && data.length >= end + 4 + Number(length[1]);
}

function parseAnswer(received: Buffer): Pick<RawAnswer, 'status' | 'headers' | 'text'> {
  const data = finalAnswer(received);
  const end = data.indexOf('\r\n\r\n');
  const head = (end === -1 ? data : data.subarray(0, end)).toString('latin1');
  const status = /^HTTP\/1\.1 (\d{3}) /.exec(head);
  const headers: Record<string, string> = {};
  for (const line of head.split('\r\n').slice(1)) {
    const colon = line.indexOf(':');
    if (colon > 0) headers[line.slice(0, colon).toLowerCase()] = line.slice(colon + 1).trim();
  }
  return { status: status ? Number(status[1]) : 0, headers, text: end === -1 ? '' : data.subarray(end + 4).toString('utf8') };
}

/** A JSON tree the serializer writes as is: members in order (names may repeat), and raw value text. */
export type JsonTree = { members: Array<[MemberName, JsonTree]> } | { items: JsonTree[] } | { raw: string };
/** A member name: a string (JSON.stringify writes it), or its raw spelling with quotes (e.g. "\\u0061"). */
export type MemberName = string | { raw: string };
const nameText = (name: MemberName): string => (typeof name === 'string' ? JSON.stringify(name) : name.raw);
/** The name a parser reads from a member name. */
export const memberName = (name: MemberName): string => (typeof name === 'string' ? name : (JSON.parse(name.raw) as string));

export function toTree(value: unknown): JsonTree {
  if (Array.isArray(value)) return { items: value.map(toTree) };
  if (typeof value === 'object' && value !== null) return { members: Object.entries(value).map(([k, v]) => [k, toTree(v)]) };
  return { raw: JSON.stringify(value) ?? 'null' };
}

export function writeTree(tree: JsonTree): string {
  if ('raw' in tree) return tree.raw;
  if ('items' in tree) return `[${tree.items.map(writeTree).join(',')}]`;
  return `{${tree.members.map(([k, v]) => `${nameText(k)}:${writeTree(v)}`).join(',')}}`;
}

/** Every path to a member or item of `tree` (not the root), as member names and item indexes. */
export function treePaths(tree: JsonTree, prefix: Array<string | number> = []): Array<Array<string | number>> {
  if ('members' in tree) return tree.members.flatMap(([k, v]) => [[...prefix, memberName(k)], ...treePaths(v, [...prefix, memberName(k)])]);
  if ('items' in tree) return tree.items.flatMap((v, i) => [[...prefix, i], ...treePaths(v, [...prefix, i])]);
  return [];
}

/** The node at `path`, or undefined. */
export function nodeAt(tree: JsonTree, path: Array<string | number>): JsonTree | undefined {
  let node: JsonTree | undefined = tree;
  for (const step of path) {
    if (node === undefined) return undefined;
    if (typeof step === 'number') node = 'items' in node ? node.items[step] : undefined;
    else node = 'members' in node ? node.members.find(([k]) => memberName(k) === step)?.[1] : undefined;
  }
  return node;
}

/** A copy of `tree` with the node at `path` replaced by edit(node) (undefined removes it). */
export function editAt(tree: JsonTree, path: Array<string | number>, edit: (node: JsonTree) => JsonTree | undefined): JsonTree {
  if (path.length === 0) return edit(tree) ?? { raw: 'null' };
  const [step, ...rest] = path;
  if ('members' in tree) {
    const members: Array<[MemberName, JsonTree]> = [];
    for (const [k, v] of tree.members) {
      if (memberName(k) !== step) members.push([k, v]);
      else if (rest.length > 0) members.push([k, editAt(v, rest, edit)]);
      else {
        const replaced = edit(v);
        if (replaced !== undefined) members.push([k, replaced]);
      }
    }
    return { members };
  }
  if ('items' in tree) {
    const items: JsonTree[] = [];
    tree.items.forEach((v, i) => {
      if (i !== step) items.push(v);
      else if (rest.length > 0) items.push(editAt(v, rest, edit));
      else {
        const replaced = edit(v);
        if (replaced !== undefined) items.push(replaced);
      }
    });
    return { items };
  }
  return tree;
}

/** The spec's errorMessage: fewer than 512 printable ASCII characters (and, here, at least one). */
export const SPEC_MESSAGE = /^[\x20-\x7e]{1,511}$/;
