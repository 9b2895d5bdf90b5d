/**
 * Key versions and enabled state, in XKS terms: which HSM label an operation uses, and the
 * InvalidStateException / InvalidCiphertextException answers. The state itself is read live from
 * the HSM by KeyStateReader (src/keys/key-state.ts).
 */
import type { KeyAttributes } from '../hsm';
import type { KeyStateReader, KeyState, VersionState } from '../keys/key-state';
import type { ParsedMetadata } from '../keys/ciphertext-metadata';
import { encryptCheckFor, type EncryptCheck } from './encrypt-check';
import { ProxyError, toProxyError } from '../core/errors';
import type { ExternalKey } from './key-lookup';

export interface VersionTarget {
  version: number;
  label: string;
}

/** The active version, and how its Encrypt output is checked (from its cached usage flags: no extra HSM call). */
export interface EncryptTarget extends VersionTarget {
  check: EncryptCheck;
}

export class KeyVersions {
  /**
   * `allHsmsServing`: whether every HSM of the cluster serves now. A version no serving HSM holds may
   * be on one that does not (made there, not replicated yet): that is not an invalid ciphertext.
   */
  constructor(
    private readonly reader: KeyStateReader,
    private readonly allHsmsServing: () => boolean = () => true,
  ) {}

  /**
   * The active version; InvalidStateException if the key or that version is disabled. A value, not
   * a promise, when the key's state is cached (nearly every request): see KeyStateReader.cached.
   */
  forEncrypt(key: ExternalKey): EncryptTarget | Promise<EncryptTarget> {
    const cached = this.reader.cached(key.label);
    return cached ? encryptTarget(enabled(cached)) : this.enabledState(key).then(encryptTarget);
  }

  /** Drops the cached state (usage flags included) after the HSM contradicted it, so the next call reads it again. */
  forget(key: ExternalKey): void {
    this.reader.invalidate(key.label);
  }

  /**
   * The version a ciphertext names; InvalidStateException before any metadata error for a disabled
   * key. A value when the key's state is cached and the ciphertext names its active version.
   */
  forDecrypt(key: ExternalKey, metadata: ParsedMetadata): VersionTarget | Promise<VersionTarget> {
    const cached = this.reader.cached(key.label);
    if (cached && metadata.ok && metadata.version === cached.active.version) return versionTarget(enabled(cached).active);
    return this.forDecryptLookup(key, metadata);
  }

  private async forDecryptLookup(key: ExternalKey, metadata: ParsedMetadata): Promise<VersionTarget> {
    await this.enabledState(key);
    if (!metadata.ok) throw new ProxyError('InvalidCiphertext', metadata.reason);
    let found;
    try {
      found = await this.reader.version(key.label, metadata.version);
    } catch (err) {
      throw toProxyError(err);
    }
    if (found === undefined) {
      // KMS takes InvalidCiphertext for data that will never decrypt; while an HSM is down, a
      // ciphertext the proxy issued under a version only that HSM holds gets a retryable 500.
      if (!this.allHsmsServing()) throw new ProxyError('Internal', 'The key version the ciphertext names is on no HSM that serves now; an HSM of the cluster that is not serving may hold it');
      throw new ProxyError('InvalidCiphertext', 'ciphertextMetadata names a key version that does not exist');
    }
    return versionTarget(found);
  }

  /** GetKeyMetadata's view: the active version's usage; DISABLED if the key or the active version is. A value when cached. */
  describe(key: ExternalKey): { attributes: KeyAttributes; enabled: boolean } | Promise<{ attributes: KeyAttributes; enabled: boolean }> {
    const cached = this.reader.cached(key.label);
    return cached ? description(key, cached) : this.state(key).then((state) => description(key, state));
  }

  private async enabledState(key: ExternalKey): Promise<KeyState> {
    return enabled(await this.state(key));
  }

  private async state(key: ExternalKey): Promise<KeyState> {
    try {
      return await this.reader.key(key.label);
    } catch (err) {
      throw toProxyError(err);
    }
  }
}

function enabled(state: KeyState): KeyState {
  if (!state.enabled) throw new ProxyError('InvalidState', 'The key is disabled');
  return state;
}

function encryptTarget(state: KeyState): EncryptTarget {
  if (!state.active.enabled) {
    throw new ProxyError('InvalidState', `The key's active version ${state.active.version} is disabled`);
  }
  return { version: state.active.version, label: state.active.label, check: encryptCheckFor(state.active.attributes) };
}

function versionTarget(found: VersionState): VersionTarget {
  if (!found.enabled) throw new ProxyError('InvalidState', `The key version ${found.version} that the ciphertext names is disabled`);
  return { version: found.version, label: found.label };
}

function description(key: ExternalKey, state: KeyState): { attributes: KeyAttributes; enabled: boolean } {
  return { attributes: state.active.attributes, enabled: key.enabled && state.enabled && state.active.enabled };
}
