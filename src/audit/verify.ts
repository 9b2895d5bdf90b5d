/**
 * Verifies an audit log file line by line: each line's hash over its own bytes, its "prev" against
 * the previous line's hash and its "seq" against the previous seq plus one. Stops at the first
 * broken link, which is what an operator needs to locate tampering, truncation or a torn write.
 *
 * Key rotation: the chain is made of segments, each started by an audit-open entry that names its
 * algorithm and key id; every entry up to the next audit-open is hashed with that key. So a file
 * that outlived an HMAC key change verifies with both keys, each used for the segments that name
 * it. The audit-open that switches keys is hashed with the new key and carries the old chain's last
 * hash as "prev": removing, inserting or replacing entries across the switch still breaks the chain.
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
  /** Which HMAC key signs the intact entries: each key id from the line where it takes over. */
  keys?: Array<{ line: number; keyId: string }>;
}

/** The HMAC keys given to the verifier, by their public key id. */
export type AuditKeys = ReadonlyMap<string, Buffer>;

export function auditKeys(keys: readonly Buffer[]): AuditKeys {
  return new Map(keys.map((key) => [keyId(key), key]));
}

/** How a segment is hashed: with one of the given keys, or plain SHA-256 (no keys given). */
type Signer = { keyId: string; key: Buffer } | { keyId: undefined; key: undefined };
const PLAIN: Signer = { keyId: undefined, key: undefined };

export async function verifyAuditLog(path: string, hmacKeys?: Buffer | readonly Buffer[] | AuditKeys): Promise<VerifyResult> {
  const keys = toKeys(hmacKeys);
  const lines = createInterface({ input: createReadStream(path, { encoding: 'utf8' }), crlfDelay: Infinity });
  let lineNo = 0;
  let prevHash = GENESIS_HASH;
  let prevSeq = 0;
  let entries = 0;
  let previous: VerifyResult['previous'];
  let signer: Signer | undefined;
  const used: Array<{ line: number; keyId: string }> = [];
  const intact = () => ({
    ...(entries > 0 ? { head: { seq: prevSeq, hash: prevHash } } : {}),
    ...(used.length > 0 ? { keys: [...used] } : {}),
  });
  const fail = (problem: string): VerifyResult => {
    lines.close();
    return { ok: false, entries, ...intact(), broken: { line: lineNo, problem } };
  };
  for await (const line of lines) {
    lineNo++;
    if (line === '') return fail('empty line (a torn write was ended here, or a line was removed)');
    const parsed = parseLine(line);
    if (!parsed.ok) return fail(parsed.problem);
    let lineSigner: Signer;
    if (parsed.entry.event === 'audit-open') {
      const named = openSigner(parsed.entry, keys, lineNo > 1);
      if (typeof named === 'string') return fail(named);
      lineSigner = named;
    } else if (signer !== undefined) {
      lineSigner = signer;
    } else {
      // A file that does not start with audit-open (one reopened after its file was removed starts
      // with audit-gap): the given key that matches; plain SHA-256 only when no key was given.
      const matching = keys.size === 0 ? { ...PLAIN } : matchingSigner(parsed.body, parsed.hash, keys);
      if (matching === undefined) return fail('hash mismatch: the entry was modified, or signed with a key not given');
      lineSigner = matching;
    }
    if (entryHash(parsed.body, lineSigner.key) !== parsed.hash) return fail('hash mismatch: the entry was modified');
    if (parsed.prev !== prevHash) {
      return fail(`chain broken: "prev" is not the hash of the previous entry (an entry before this one was removed, inserted or replaced)`);
    }
    if (parsed.seq !== prevSeq + 1) return fail(`sequence broken: expected seq ${prevSeq + 1}, found ${String(parsed.seq)}`);
    if (entries === 0 && parsed.entry.event === 'audit-open') previous = previousOf(parsed.entry.previous);
    else if (parsed.entry.event === 'audit-open' && parsed.entry.previous !== undefined) {
      // The writer followed a rotation into a file that already had entries: it names the entry it
      // wrote last, which must be the one before it here, or entries were cut (a shortened copy renamed over the file).
      const named = previousOf(parsed.entry.previous);
      if (named?.seq !== prevSeq || named.hash !== prevHash) {
        return fail(`entries removed: this audit-open says the last entry written before it was seq ${String(named?.seq)}, but the file has seq ${prevSeq} there (the file was replaced by a shortened copy)`);
      }
    }
    if (lineSigner.keyId !== undefined && lineSigner.keyId !== used.at(-1)?.keyId) used.push({ line: lineNo, keyId: lineSigner.keyId });
    signer = lineSigner;
    prevHash = parsed.hash;
    prevSeq = parsed.seq as number;
    entries++;
  }
  return { ok: true, entries, ...intact(), ...(previous ? { previous } : {}) };
}

function toKeys(hmacKeys: Buffer | readonly Buffer[] | AuditKeys | undefined): AuditKeys {
  if (hmacKeys === undefined) return new Map();
  if (Buffer.isBuffer(hmacKeys)) return auditKeys([hmacKeys]);
  if (Array.isArray(hmacKeys)) return auditKeys(hmacKeys as readonly Buffer[]);
  return hmacKeys as AuditKeys;
}

/**
 * The signer an audit-open names for its segment, or why it cannot be checked. With HMAC keys given,
 * a plain SHA-256 segment is refused: anyone can write one, so accepting it would let an attacker
 * cut the log anywhere and append a chain of their own.
 */
function openSigner(entry: Record<string, unknown>, keys: AuditKeys, midFile: boolean): Signer | string {
  if (entry.alg === 'SHA-256') {
    if (keys.size === 0) return { ...PLAIN };
    return 'this segment is chained with plain SHA-256, not HMAC-anchored: anyone could have written it (verify it without keys only if the log was written without a key)';
  }
  if (entry.alg !== 'HMAC-SHA256' || typeof entry.keyId !== 'string') return 'the audit-open entry names no known algorithm and key id';
  const key = keys.get(entry.keyId);
  if (key !== undefined) return { keyId: entry.keyId, key };
  return midFile
    ? `the audit key changes here to key id ${entry.keyId}, which was not given; give that key too (--hmac-key-file is repeatable)`
    : `this log is HMAC-anchored with key id ${entry.keyId}, which was not given; give that key`;
}

function matchingSigner(body: string, hash: string, keys: AuditKeys): Signer | undefined {
  for (const [id, key] of keys) if (entryHash(body, key) === hash) return { keyId: id, key };
  return undefined;
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
