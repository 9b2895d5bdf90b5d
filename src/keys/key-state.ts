/**
 * Live lookup of a key's versions and enabled state in the HSM, with a short per-key cache, so a
 * rotation or a disable made by the CLI (or another proxy) takes effect within `cacheMs` without
 * a restart or reload. Reads through `keyAttributes(label)` only: a label that is not on the token
 * answers KeyNotFound, which is how absence of a version or marker shows.
 */
import { HsmError, isAmbiguousKey, type KeyAttributes } from '../hsm';
import { MAX_KEY_VERSION, keyDisabledMarker, versionDisabledMarker, versionLabel } from './labels';

/** What the lookup needs from the HSM layer (an Hsm, or anything with the same method). */
export interface KeyAttributeSource {
  keyAttributes(label: string): Promise<KeyAttributes>;
}

export interface VersionState {
  version: number;
  label: string;
  enabled: boolean;
}

export interface KeyState {
  baseLabel: string;
  /** False when the key-level marker exists. */
  enabled: boolean;
  /** The newest version: the one new ciphertexts use. */
  active: VersionState & { attributes: KeyAttributes };
}

export interface KeyStateOptions {
  /** How long a lookup is reused; 0 looks up on every call. A function is read at each use (config reloads). */
  cacheMs: number | (() => number);
  now?: () => number;
}

interface Entry {
  state?: KeyState;
  fetchedAt: number;
  refreshing?: Promise<KeyState>;
  /** Older versions seen by decrypt, with their state; only versions that exist are kept. */
  versions: Map<number, { state: VersionState; fetchedAt: number }>;
}

export class KeyStateReader {
  /** By base label: one per key seen on the token (a lookup that only ever failed leaves none), so the token bounds it. */
  private readonly entries = new Map<string, Entry>();
  private readonly now: () => number;

  constructor(
    private readonly hsm: KeyAttributeSource,
    private readonly options: KeyStateOptions,
  ) {
    this.now = options.now ?? Date.now;
  }

  /** The key's state; KeyNotFound (HsmError) when its version-1 object is not on the token. */
  async key(baseLabel: string, options: { fresh?: boolean } = {}): Promise<KeyState> {
    const entry = this.entries.get(baseLabel);
    if (!options.fresh && entry?.state && this.isFresh(entry.fetchedAt)) return entry.state;
    return this.refresh(baseLabel);
  }

  /**
   * The cached state while it is fresh, else undefined (then call key()): the common case answered
   * without a promise, so a request with nothing to wait for sets no timer against its deadline.
   */
  cached(baseLabel: string): KeyState | undefined {
    const entry = this.entries.get(baseLabel);
    return entry?.state && this.isFresh(entry.fetchedAt) ? entry.state : undefined;
  }

  /** State of one version, or undefined if the key has no such version. */
  async version(baseLabel: string, version: number): Promise<VersionState | undefined> {
    if (!Number.isInteger(version) || version < 1 || version > MAX_KEY_VERSION) return undefined;
    const key = await this.key(baseLabel);
    if (version === key.active.version) return key.active;
    const entry = this.entries.get(baseLabel);
    const cached = entry?.versions.get(version);
    if (cached && this.isFresh(cached.fetchedAt)) return cached.state;

    const label = versionLabel(baseLabel, version);
    if ((await this.attributesOrUndefined(label)) === undefined) {
      entry?.versions.delete(version);
      return undefined;
    }
    const state = { version, label, enabled: !(await this.exists(versionDisabledMarker(baseLabel, version))) };
    if (entry) {
      entry.versions.set(version, { state, fetchedAt: this.now() });
      // A version newer than the active one exists: another proxy or the CLI rotated; look again next time.
      if (version > key.active.version) entry.fetchedAt = 0;
    }
    return state;
  }

  /** How many keys have an entry (tests, diagnostics). */
  get size(): number {
    return this.entries.size;
  }

  /** Forgets what is cached about a key (after this process changed it). */
  invalidate(baseLabel: string): void {
    this.entries.delete(baseLabel);
  }

  private isFresh(fetchedAt: number): boolean {
    const cacheMs = typeof this.options.cacheMs === 'function' ? this.options.cacheMs() : this.options.cacheMs;
    return cacheMs > 0 && this.now() - fetchedAt < cacheMs;
  }

  /** Concurrent callers share one lookup per key. */
  private refresh(baseLabel: string): Promise<KeyState> {
    let entry = this.entries.get(baseLabel);
    if (entry?.refreshing) return entry.refreshing;
    if (!entry) {
      entry = { fetchedAt: 0, versions: new Map() };
      this.entries.set(baseLabel, entry);
    }
    const owner = entry;
    const refreshing = this.lookup(baseLabel, owner.state?.active.version ?? 1).then(
      (state) => {
        owner.state = state;
        owner.fetchedAt = this.now();
        owner.refreshing = undefined;
        return state;
      },
      (error: unknown) => {
        owner.refreshing = undefined;
        // A key that is gone is forgotten (entries exist only for keys on the token), and so is one
        // never seen there: its lookup failed (HSM down, timeout) and the label is the client's
        // choice (allTokenKeys), so keeping it would let distinct key ids grow the map during an outage.
        const gone = error instanceof HsmError && error.kind === 'KeyNotFound';
        if ((gone || owner.state === undefined) && this.entries.get(baseLabel) === owner) this.entries.delete(baseLabel);
        throw error;
      },
    );
    owner.refreshing = refreshing;
    return refreshing;
  }

  private async lookup(baseLabel: string, from: number): Promise<KeyState> {
    const baseAttributes = await this.hsm.keyAttributes(baseLabel); // KeyNotFound: no such key
    const enabled = !(await this.exists(keyDisabledMarker(baseLabel)));
    const newest = await this.newestVersion(baseLabel, from, baseAttributes);
    const active = {
      version: newest.version,
      label: versionLabel(baseLabel, newest.version),
      enabled: !(await this.exists(versionDisabledMarker(baseLabel, newest.version))),
      attributes: newest.attributes,
    };
    return { baseLabel, enabled, active };
  }

  /**
   * The highest version number on the token, searched upwards from `from` (the last one known):
   * one probe when nothing changed, then doubling steps and a binary search, so even a key with
   * 100,000 versions is found in about 35 probes. Versions are created one after the other by
   * rotation and never destroyed, so the numbers on the token have no gaps at the top.
   */
  private async newestVersion(baseLabel: string, from: number, baseAttributes: KeyAttributes): Promise<{ version: number; attributes: KeyAttributes }> {
    let lo = 1;
    let loAttributes = baseAttributes;
    if (from > 1) {
      const known = await this.attributesOrUndefined(versionLabel(baseLabel, from));
      if (known) {
        lo = from;
        loAttributes = known;
      }
    }
    let hi: number | undefined;
    for (let step = 1; hi === undefined; step *= 2) {
      if (lo >= MAX_KEY_VERSION) return { version: lo, attributes: loAttributes };
      const probe = Math.min(lo + step, MAX_KEY_VERSION);
      const found = await this.attributesOrUndefined(versionLabel(baseLabel, probe));
      if (found) {
        lo = probe;
        loAttributes = found;
      } else {
        hi = probe;
      }
    }
    while (hi - lo > 1) {
      const mid = Math.floor((lo + hi) / 2);
      const found = await this.attributesOrUndefined(versionLabel(baseLabel, mid));
      if (found) {
        lo = mid;
        loAttributes = found;
      } else {
        hi = mid;
      }
    }
    return { version: lo, attributes: loAttributes };
  }

  /**
   * A lifecycle marker is there when at least one object carries its label: two `keys disable` runs
   * at the same moment may each create one, and the key is disabled all the same.
   */
  private async exists(label: string): Promise<boolean> {
    try {
      return (await this.attributesOrUndefined(label)) !== undefined;
    } catch (error) {
      if (isAmbiguousKey(error)) return true;
      throw error;
    }
  }

  private async attributesOrUndefined(label: string): Promise<KeyAttributes | undefined> {
    try {
      return await this.hsm.keyAttributes(label);
    } catch (error) {
      if (error instanceof HsmError && error.kind === 'KeyNotFound') return undefined;
      throw error;
    }
  }
}
