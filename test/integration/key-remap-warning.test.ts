/**
 * A reload that serves an externalKeyId from another HSM label is applied (fixing a typo before
 * first use is legitimate) but warned about: ciphertexts name only their key version, so the ones
 * made under the old label are refused until the mapping points back. The test shows both halves:
 * the warning, and that what it says is what happens.
 */
import { expect } from 'chai';
import { startCliProxy, type CliProxy } from '../support/cli-proxy';
import { testKeys } from '../support/proxy-harness';
import { b64, requestMetadata, type XksResponse } from '../support/xks-client';

const WARNING = 'key now served from another HSM label';
const ID = 'app-key';

describe('a reload that maps a served key to another HSM label (integration)', function () {
  this.timeout(60_000);
  let p: CliProxy;
  let first: string;
  let second: string;
  before(async () => {
    const keys = await testKeys();
    first = keys.main;
    second = keys.known;
    p = await startCliProxy({
      workers: 1,
      configure: (config) => {
        config.keyStores[0].keys = { allTokenKeys: true, map: [{ externalKeyId: ID, label: first }] };
      },
    });
  });
  after(async () => {
    if (p) await p.stop();
  });

  const mapTo = async (label: string | undefined): Promise<Array<Record<string, unknown>>> => {
    p.config.keyStores[0].keys = label === undefined ? { allTokenKeys: true } : { allTokenKeys: true, map: [{ externalKeyId: ID, label }] };
    p.writeConfig();
    const from = p.logs.length;
    const count = p.logs.filter((l) => l.message === 'config reloaded').length;
    p.child.kill('SIGHUP');
    await p.waitForLog((l) => l.message === 'config reloaded' && p.logs.filter((m) => m.message === 'config reloaded').length > count);
    return p.logs.slice(from).filter((l) => l.message === WARNING);
  };
  const decrypt = (enc: XksResponse): Promise<XksResponse> =>
    p.client.send(`/kms/xks/v1/keys/${ID}/decrypt`, {
      body: {
        requestMetadata: requestMetadata('Decrypt'),
        encryptionAlgorithm: 'AES_GCM',
        ciphertext: enc.json.ciphertext,
        initializationVector: enc.json.initializationVector,
        authenticationTag: enc.json.authenticationTag,
        ciphertextMetadata: enc.json.ciphertextMetadata,
      },
    });

  it('warns once per change, naming both labels, and the old ciphertexts are refused until it is undone', async () => {
    expect(p.logs.filter((l) => l.message === WARNING), 'nothing at start').to.deep.equal([]);
    const enc = await p.client.send(`/kms/xks/v1/keys/${ID}/encrypt`, { body: { requestMetadata: requestMetadata('Encrypt'), plaintext: b64('remap'), encryptionAlgorithm: 'AES_GCM' } });
    expect(enc.status, enc.text).to.equal(200);

    const moved = await mapTo(second);
    expect(moved).to.have.length(1);
    expect(moved[0]).to.include({ level: 'warn', keyStore: 'root', externalKeyId: ID, label: second, previousLabel: first });
    expect(String(moved[0]?.consequence)).to.include(`made under "${first}"`);
    const refused = await decrypt(enc);
    expect(refused.status, refused.text).to.equal(400);
    expect(refused.json.errorName).to.equal('InvalidCiphertextException');

    expect(await mapTo(second), 'a reload that changes nothing').to.deep.equal([]);

    const back = await mapTo(first);
    expect(back.map((l) => [l.label, l.previousLabel])).to.deep.equal([[first, second]]);
    const decrypted = await decrypt(enc);
    expect(decrypted.status, decrypted.text).to.equal(200);
    expect(Buffer.from(decrypted.json.plaintext, 'base64').toString()).to.equal('remap');
  });

  it('counts dropping the mapping under allTokenKeys as a change: the ID is then its own label', async () => {
    const dropped = await mapTo(undefined);
    expect(dropped.map((l) => [l.externalKeyId, l.label, l.previousLabel])).to.deep.equal([[ID, ID, first]]);
  });
});
