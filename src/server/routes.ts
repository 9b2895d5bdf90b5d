/**
 * Maps a request path to a key store and XKS operation, from the operation registry. Only canonical
 * paths match: prefixes use the spec's XksProxyUriPath alphabet, so dot segments and %-escapes never
 * reach a key store.
 */
import { XKS_OPERATIONS, type XksOperationEntry, type XksOperationName } from '../api/operations/registry';
import type { SecretLookup } from '../auth/sigv4';
import type { RuntimeKeyStore } from '../config/runtime';
import { EXTERNAL_KEY_ID_PATTERN } from '../config/schema';

export type XksOperation = XksOperationName;

export interface XksRoute {
  store: RuntimeKeyStore;
  operation: XksOperation;
  entry: XksOperationEntry;
  /** Raw path segment; check it with isValidExternalKeyId before use. '' for a key-less operation. */
  externalKeyId: string;
  /** The key store's SigV4 secrets by access key ID (made once per config generation). */
  secrets: SecretLookup;
}

/** A Map, as every lookup keyed by request data: no Object.prototype member can match. */
const BY_KEY_SEGMENT: ReadonlyMap<string, XksOperationEntry> = new Map(
  XKS_OPERATIONS.flatMap((op): Array<[string, XksOperationEntry]> => ('keySegment' in op.route ? [[op.route.keySegment, op]] : [])),
);
const BY_PATH: ReadonlyMap<string, XksOperationEntry> = new Map(
  XKS_OPERATIONS.flatMap((op): Array<[string, XksOperationEntry]> => ('path' in op.route ? [[op.route.path, op]] : [])),
);

const alternatives = (names: Iterable<string>): string => [...names].map((name) => name.replace(/[^A-Za-z0-9_-]/g, '\\$&')).join('|');
const XKS_PATH = new RegExp(`^((?:\\/[A-Za-z0-9_-]+)*)\\/kms\\/xks\\/v1\\/(?:(${alternatives(BY_PATH.keys())})|keys\\/([^/]*)\\/(${alternatives(BY_KEY_SEGMENT.keys())}))$`);
const KEY_ID = new RegExp(EXTERNAL_KEY_ID_PATTERN);

interface RoutedStore {
  store: RuntimeKeyStore;
  secrets: SecretLookup;
}

export class XksRouter {
  private readonly byPrefix: Map<string, RoutedStore>;

  constructor(stores: RuntimeKeyStore[]) {
    this.byPrefix = new Map(stores.map((store) => [store.uriPrefix, { store, secrets: (accessKeyId: string) => store.credentials.get(accessKeyId) }]));
  }

  /** `path` is the request target without its query string. */
  match(path: string): XksRoute | undefined {
    const m = XKS_PATH.exec(path);
    if (!m) return undefined;
    const routed = this.byPrefix.get(m[1] ?? '');
    if (!routed) return undefined;
    const entry = m[2] !== undefined ? BY_PATH.get(m[2]) : BY_KEY_SEGMENT.get(m[4] ?? '');
    if (!entry) return undefined;
    return { store: routed.store, operation: entry.name, entry, externalKeyId: m[3] ?? '', secrets: routed.secrets };
  }
}

/** The spec's charset and length; '.' and '..' are refused too, being path dot-segments. */
export function isValidExternalKeyId(id: string): boolean {
  return KEY_ID.test(id) && id !== '.' && id !== '..';
}
