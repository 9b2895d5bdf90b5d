/**
 * HSM-side AES key objects for key administration (src/keys/lifecycle.ts decides what to create
 * and when): create, create exactly once across a fleet, destroy, CKA_ID, and the test-only read
 * of key material. Label conventions live above this layer (src/keys/labels.ts).
 */
import { HsmError } from '../errors';
import type { Hsm } from '../hsm';
import { KEY_BYTES } from '../key-handles';
import type { ObjectHandle } from '../pkcs11/module';
import { aesKeyTemplate, type NewAesKey } from '../pkcs11/templates';
import type { TokenObjects } from './token-objects';

export type { NewAesKey };

/**
 * Creates a private AES-256 token key. Refuses a label that already names an AES-256 key:
 * an external key id must resolve to exactly one key.
 */
export async function createAesKey(hsm: Hsm, key: NewAesKey): Promise<void> {
  if (typeof key.label !== 'string' || key.label.length === 0) throw new HsmError('Internal', 'key label must be a non-empty string');
  if (key.value !== undefined && (!Buffer.isBuffer(key.value) || key.value.length !== KEY_BYTES)) {
    throw new HsmError('Internal', `an AES-256 key value must be ${KEY_BYTES} bytes`);
  }
  await hsm.administer(async (token) => {
    if ((await token.aes256Keys(key.label)).length > 0) {
      throw new HsmError('Internal', `an AES-256 key labelled "${key.label}" already exists`);
    }
    await token.createAesKey(aesKeyTemplate(key));
    token.forget(key.label);
  });
}

/** The key material, for tests that cross-check GCM with node:crypto. Only extractable, non-sensitive keys. */
export async function readKeyValue(hsm: Hsm, label: string): Promise<Buffer> {
  return hsm.administer(async (token) => {
    // A view of the thread's message: copied out, then zeroed there.
    const view = await token.keyValue(label);
    try {
      return Buffer.from(view);
    } finally {
      view.fill(0);
    }
  });
}

export interface Claim {
  /** Label every concurrent creator of the same key uses for its claim. */
  label: string;
  /** CKA_ID of our claim (records its creation time). */
  id: Buffer;
  /** Whether a claim found with this CKA_ID was left behind by a creator that died. */
  isStale(id: Buffer): boolean;
  /** How long to wait before looking a second time (default CLAIM_SETTLE_MS). */
  settleMs?: number;
}

/**
 * Between the first look at the claims and the second. SoftHSM (file store) does not see objects
 * another process created between its last look and its own next create: its create takes the
 * token's new generation as its own without re-reading the token, so two creators can each miss the
 * other's claim (measured: 1 key made twice in 200 races of 4 processes). Another process's next
 * change makes it read the token again; a second look this much later sees the other claim, or the
 * key it made. An HSM that shows every committed object pays only the wait.
 */
export const CLAIM_SETTLE_MS = 100;

export type ExclusiveCreateResult = 'created' | 'exists' | 'contended';

/**
 * Creates `key` unless an AES-256 key with its label exists, safely against other processes doing
 * the same on the same token (proxies of a fleet, a CLI run). PKCS#11 has no unique labels or
 * locks, so every creator first creates a claim object and then looks at all claims: only a
 * creator that sees its own claim alone, and still no key, creates the key; the others give up
 * ('contended') and may retry later. Two creators cannot both see themselves alone: each creates
 * its claim before looking, and a claim is removed only after the key exists. Each looks twice,
 * CLAIM_SETTLE_MS apart, for tokens that show another process's objects late. Claims older than
 * `isStale` says are from crashed creators and are destroyed. Uses create, find and destroy only.
 */
export async function createAesKeyOnce(hsm: Hsm, key: NewAesKey, claim: Claim): Promise<ExclusiveCreateResult> {
  return hsm.administer(async (token) => {
    if ((await token.aes256Keys(key.label)).length > 0) return 'exists';
    const mine = await token.createAesKey({
      ...aesKeyTemplate({ label: claim.label, encrypt: false, decrypt: false }),
      id: claim.id,
    });
    try {
      for (const wait of [0, claim.settleMs ?? CLAIM_SETTLE_MS]) {
        if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
        if ((await liveClaims(token, claim, mine)) > 0) return 'contended';
        if ((await token.aes256Keys(key.label)).length > 0) return 'exists';
      }
      await token.createAesKey(aesKeyTemplate(key));
      token.forget(key.label);
      return 'created';
    } finally {
      try {
        await token.destroy(mine);
      } catch {
        // a leftover claim expires (isStale) and is removed by the next creator
      }
    }
  });
}

/** Other creators' claims that are not stale; stale ones are destroyed on the way. */
async function liveClaims(token: TokenObjects, claim: Claim, mine: ObjectHandle): Promise<number> {
  let live = 0;
  for (const other of await token.aes256Keys(claim.label)) {
    if (other.handle.equals(mine)) continue;
    const otherId = await token.keyIdUnlessGone(other.handle);
    if (otherId === undefined) continue; // its rotator already dropped it
    if (!claim.isStale(otherId)) {
      live += 1;
      continue;
    }
    try {
      await token.destroy(other.handle);
    } catch {
      // someone else cleaned it up first
    }
  }
  return live;
}

/** Destroys every AES-256 key with exactly this label; returns how many there were. */
export async function destroyAesKeys(hsm: Hsm, label: string): Promise<number> {
  return hsm.administer(async (token) => {
    const found = await token.aes256Keys(label);
    for (const { handle } of found) await token.destroy(handle);
    token.forget(label);
    return found.length;
  });
}

/**
 * CKA_ID of the AES-256 key with this label (empty if it has none). A job on the PKCS#11 thread,
 * not administer(): the rotation scheduler reads it on every check of a serving proxy.
 */
export async function aesKeyId(hsm: Hsm, label: string): Promise<Buffer> {
  return hsm.keyId(label);
}
