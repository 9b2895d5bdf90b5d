/**
 * Maps a request path to a key store and XKS operation. Only canonical paths match: prefixes
 * use the spec's XksProxyUriPath alphabet, so dot segments and %-escapes never reach a key store.
 */
import type { RuntimeKeyStore } from '../config/runtime';
import { EXTERNAL_KEY_ID_PATTERN } from '../config/schema';

export type XksOperation = 'GetHealthStatus' | 'GetKeyMetadata' | 'Encrypt' | 'Decrypt';

export interface XksRoute {
  store: RuntimeKeyStore;
  operation: XksOperation;
  /** Raw path segment; check it with isValidExternalKeyId before use. '' for health. */
  externalKeyId: string;
}

const XKS_PATH = /^((?:\/[A-Za-z0-9_-]+)*)\/kms\/xks\/v1\/(?:(health)|keys\/([^/]*)\/(metadata|encrypt|decrypt))$/;
/** A Map, as every lookup keyed by request data: no Object.prototype member can match. */
export const XKS_KEY_OPERATIONS: ReadonlyMap<string, XksOperation> = new Map([['metadata', 'GetKeyMetadata'], ['encrypt', 'Encrypt'], ['decrypt', 'Decrypt']]);
const KEY_ID = new RegExp(EXTERNAL_KEY_ID_PATTERN);

export class XksRouter {
  private readonly byPrefix: Map<string, RuntimeKeyStore>;

  constructor(stores: RuntimeKeyStore[]) {
    this.byPrefix = new Map(stores.map((store) => [store.uriPrefix, store]));
  }

  /** `path` is the request target without its query string. */
  match(path: string): XksRoute | undefined {
    const m = XKS_PATH.exec(path);
    if (!m) return undefined;
    const store = this.byPrefix.get(m[1] ?? '');
    if (!store) return undefined;
    if (m[2]) return { store, operation: 'GetHealthStatus', externalKeyId: '' };
    const operation = XKS_KEY_OPERATIONS.get(m[4] ?? '');
    return operation && { store, operation, externalKeyId: m[3] ?? '' };
  }
}

/** The spec's charset and length; '.' and '..' are refused too, being path dot-segments. */
export function isValidExternalKeyId(id: string): boolean {
  return KEY_ID.test(id) && id !== '.' && id !== '..';
}
