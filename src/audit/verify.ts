/**
 * Verifies an audit log file line by line: each line's hash over its own bytes, its "prev" against
 * the previous line's hash and its "seq" against the previous seq plus one. Stops at the first
 * broken link, which is what an operator needs to locate tampering, truncation or a torn write.
 */
import { createReadStream } from 'node:fs';
import { createInterface } from 'node:readline';
import { entryHash, GENESIS_HASH, keyId, parseLine } from './chain';

export interface VerifyResult {
  ok: boolean;
  /** Entries checked and found intact. */
  entries: number;
  /** Hash and seq of the last intact entry. */
  head?: { seq: number; hash: string };
  broken?: { line: number; problem: string };
  /** The file's first entry, when it is an audit-open after a rotation: the previous file's last entry. */
  previous?: { seq: number; hash: string };
}

export async function verifyAuditLog(path: string, hmacKey?: Buffer): Promise<VerifyResult> {
  const lines = createInterface({ input: createReadStream(path, { encoding: 'utf8' }), crlfDelay: Infinity });
  let lineNo = 0;
  let prevHash = GENESIS_HASH;
  let prevSeq = 0;
  let entries = 0;
  let previous: VerifyResult['previous'];
  const fail = (problem: string): VerifyResult => {
    lines.close();
    return { ok: false, entries, ...(entries > 0 ? { head: { seq: prevSeq, hash: prevHash } } : {}), broken: { line: lineNo, problem } };
  };
  for await (const line of lines) {
    lineNo++;
    if (line === '') return fail('empty line (a torn write was ended here, or a line was removed)');
    const parsed = parseLine(line);
    if (!parsed.ok) return fail(parsed.problem);
    const expected = entryHash(parsed.body, hmacKey);
    if (expected !== parsed.hash) {
      const entryKey = parsed.entry.keyId;
      if (parsed.entry.event === 'audit-open' && parsed.entry.alg === 'HMAC-SHA256' && (!hmacKey || keyId(hmacKey) !== entryKey)) {
        return fail(`hash mismatch: this log is HMAC-anchored with key id ${String(entryKey)}; give that key`);
      }
      return fail('hash mismatch: the entry was modified');
    }
    if (parsed.prev !== prevHash) {
      return fail(`chain broken: "prev" is not the hash of the previous entry (an entry before this one was removed, inserted or replaced)`);
    }
    if (parsed.seq !== prevSeq + 1) return fail(`sequence broken: expected seq ${prevSeq + 1}, found ${String(parsed.seq)}`);
    if (entries === 0 && parsed.entry.event === 'audit-open') previous = previousOf(parsed.entry.previous);
    prevHash = parsed.hash;
    prevSeq = parsed.seq as number;
    entries++;
  }
  return { ok: true, entries, ...(entries > 0 ? { head: { seq: prevSeq, hash: prevHash } } : {}), ...(previous ? { previous } : {}) };
}

function previousOf(value: unknown): VerifyResult['previous'] {
  const v = value as { seq?: unknown; hash?: unknown } | undefined;
  return typeof v?.seq === 'number' && typeof v.hash === 'string' ? { seq: v.seq, hash: v.hash } : undefined;
}

/**
 * Whether `next` continues `before` across a rotation: its first entry names the last entry of
 * `before` as `previous`. Undefined when it does; else what is wrong.
 */
export function rotationLinkProblem(before: VerifyResult, next: VerifyResult): string | undefined {
  if (!next.previous) return 'its first entry is not an audit-open naming a previous file\'s last entry';
  if (!before.head) return 'the file before it is empty';
  if (next.previous.seq !== before.head.seq || next.previous.hash !== before.head.hash) {
    return `it continues seq ${next.previous.seq} hash ${next.previous.hash}, but the file before it ends at seq ${before.head.seq} hash ${before.head.hash}`;
  }
  return undefined;
}
