/**
 * The audit log's line format and hash chain, shared by the writer and `xks-proxy audit verify`.
 *
 * A line is one JSON object whose last member is "hash". The hash covers the exact bytes of the line
 * without that member (the object closed right after the member before it), and that object carries
 * "prev", the previous line's hash, and "seq", one more than the previous line's. With an HMAC key
 * the hash is HMAC-SHA256(key, bytes), else SHA-256(bytes): without the key nobody can rewrite the
 * chain after an edit.
 */
import { createHash, createHmac } from 'node:crypto';

export const GENESIS_HASH = '0'.repeat(64);
const HASH_SUFFIX = /,"hash":"([0-9a-f]{64})"\}$/;

export function entryHash(body: string, hmacKey?: Buffer): string {
  return (hmacKey ? createHmac('sha256', hmacKey) : createHash('sha256')).update(body, 'utf8').digest('hex');
}

/** Short public fingerprint of an HMAC key, written in open records so a verifier knows which key to use. */
export function keyId(hmacKey: Buffer): string {
  return createHash('sha256').update('xks-audit-key-id').update(hmacKey).digest('hex').slice(0, 16);
}

export interface ChainHead {
  seq: number;
  hash: string;
}

/** Serializes `entry` (prev and seq filled in from `head`) and returns the line and the new head. */
export function sealEntry(entry: Record<string, unknown>, head: ChainHead, hmacKey?: Buffer): { line: string; head: ChainHead } {
  const seq = head.seq + 1;
  const body = JSON.stringify({ seq, prev: head.hash, ...entry });
  const hash = entryHash(body, hmacKey);
  return { line: `${body.slice(0, -1)},"hash":"${hash}"}`, head: { seq, hash } };
}

export type ParsedLine =
  | { ok: true; body: string; hash: string; seq: unknown; prev: unknown; entry: Record<string, unknown> }
  | { ok: false; problem: string };

export function parseLine(line: string): ParsedLine {
  const m = HASH_SUFFIX.exec(line);
  if (!m) return { ok: false, problem: 'the line does not end with a "hash" member (truncated or edited)' };
  const body = `${line.slice(0, m.index)}}`;
  let entry: unknown;
  try {
    entry = JSON.parse(body);
  } catch {
    return { ok: false, problem: 'the line is not valid JSON' };
  }
  if (typeof entry !== 'object' || entry === null || Array.isArray(entry)) return { ok: false, problem: 'the line is not a JSON object' };
  const record = entry as Record<string, unknown>;
  return { ok: true, body, hash: m[1] as string, seq: record.seq, prev: record.prev, entry: record };
}
