import { expect } from 'chai';
import { KeyVersions } from '../../../src/api/key-versions';
import { ProxyError } from '../../../src/core/errors';
import { HsmError, type KeyAttributes } from '../../../src/hsm';
import { KeyStateReader, type KeyAttributeSource } from '../../../src/keys/key-state';
import { keyDisabledMarker, versionDisabledMarker, versionLabel } from '../../../src/keys/labels';
import { parseCiphertextMetadata, metadataForNewCiphertext } from '../../../src/keys/ciphertext-metadata';

/** Labels on an in-memory token (see test/unit/keys/key-state.test.ts for why not SoftHSM here). */
class Token implements KeyAttributeSource {
  readonly labels = new Set<string>();
  async keyAttributes(label: string): Promise<KeyAttributes> {
    await Promise.resolve();
    if (!this.labels.has(label)) throw new HsmError('KeyNotFound', `no AES-256 secret key labelled "${label}"`);
    return { label, keyBits: 256, encrypt: true, decrypt: true, wrap: false, unwrap: false, sign: false, verify: false, derive: false, extractable: false, sensitive: true };
  }
}

const key = { externalKeyId: 'k', label: 'k', enabled: true };
const metadataFor = (version: number) => parseCiphertextMetadata(metadataForNewCiphertext(version).metadata);

/** What a call settles with: its value, or the ProxyError kind and message it threw or rejected with. */
async function outcome(call: () => unknown): Promise<unknown> {
  try {
    return await call();
  } catch (error) {
    expect(error).to.be.instanceOf(ProxyError);
    return { kind: (error as ProxyError).kind, message: (error as ProxyError).message };
  }
}

describe('KeyVersions: answers from the cached key state equal the looked-up ones', () => {
  for (const [name, setUp] of [
    ['enabled key, two versions', (t: Token) => [1, 2].forEach((v) => t.labels.add(versionLabel('k', v)))],
    ['disabled key', (t: Token) => [versionLabel('k', 1), keyDisabledMarker('k')].forEach((l) => t.labels.add(l))],
    ['disabled active version', (t: Token) => [versionLabel('k', 1), versionLabel('k', 2), versionDisabledMarker('k', 2)].forEach((l) => t.labels.add(l))],
  ] as const) {
    it(`${name}: Encrypt, Decrypt (active and older version) and GetKeyMetadata`, async () => {
      const token = new Token();
      setUp(token);
      const uncached = new KeyVersions(new KeyStateReader(token, { cacheMs: 0 }));
      const reader = new KeyStateReader(token, { cacheMs: 60_000 });
      const cached = new KeyVersions(reader);
      await reader.key('k');
      expect(reader.cached('k'), 'state cached').to.not.equal(undefined);
      const calls = [
        (v: KeyVersions) => v.forEncrypt(key),
        (v: KeyVersions) => v.forDecrypt(key, metadataFor(1)),
        (v: KeyVersions) => v.forDecrypt(key, metadataFor(2)),
        (v: KeyVersions) => v.forDecrypt(key, metadataFor(3)),
        (v: KeyVersions) => v.describe(key),
      ];
      for (const call of calls) expect(await outcome(() => call(cached))).to.deep.equal(await outcome(() => call(uncached)));
    });
  }

  it('answers with a value, not a promise, while the state is cached', async () => {
    const token = new Token();
    token.labels.add(versionLabel('k', 1));
    const reader = new KeyStateReader(token, { cacheMs: 60_000 });
    const versions = new KeyVersions(reader);
    expect(versions.forEncrypt(key)).to.be.instanceOf(Promise);
    await reader.key('k');
    expect(versions.forEncrypt(key)).to.deep.include({ version: 1, label: versionLabel('k', 1) });
    expect(versions.forDecrypt(key, metadataFor(1))).to.deep.equal({ version: 1, label: versionLabel('k', 1) });
    expect(versions.describe(key)).to.not.be.instanceOf(Promise);
  });
});
