import { expect } from 'chai';
import {
  classifyLabel,
  claimLabel,
  creationRecord,
  isReservedLabel,
  keyDisabledMarker,
  parseCreationRecord,
  versionDisabledMarker,
  versionLabel,
} from '../../../src/keys/labels';

describe('key labels', () => {
  it('version 1 is the base label itself; later versions, markers and claims hang off it', () => {
    expect(versionLabel('prod-key', 1)).to.equal('prod-key');
    expect(versionLabel('prod-key', 2)).to.equal('prod-key/v2');
    expect(versionLabel('prod-key', 4294967295)).to.equal('prod-key/v4294967295');
    expect(keyDisabledMarker('prod-key')).to.equal('prod-key/disabled');
    expect(versionDisabledMarker('prod-key', 1)).to.equal('prod-key/v1/disabled');
    expect(claimLabel('prod-key', 3)).to.equal('prod-key/v3/claim');
  });

  it('classifies every derived label back to its key, and plain labels as keys', () => {
    expect(classifyLabel('a/b/v12')).to.deep.equal({ role: 'version', base: 'a/b', version: 12 });
    expect(classifyLabel('k/v1/disabled')).to.deep.equal({ role: 'versionDisabled', base: 'k', version: 1 });
    expect(classifyLabel('k/disabled')).to.deep.equal({ role: 'keyDisabled', base: 'k' });
    expect(classifyLabel('k/v7/claim')).to.deep.equal({ role: 'claim', base: 'k', version: 7 });
    for (const plain of ['k', 'k/v1', 'k/v0', 'k/v01', 'k/vx', 'v2', 'k-v2', 'k/v99999999999']) {
      expect(classifyLabel(plain), plain).to.deep.equal({ role: 'base' });
    }
  });

  it('reserves exactly the derived shapes, so `keys create` cannot make a key that collides with a version', () => {
    for (const label of ['k/v2', 'k/v1', 'k/disabled', 'k/v3/disabled', 'k/v3/claim']) expect(isReservedLabel(label), label).to.equal(true);
    for (const label of ['k', 'k-v2', 'k/v0', 'k/version2', 'disabled', 'k/claim', 'a/b']) expect(isReservedLabel(label), label).to.equal(false);
  });

  it('records creation times in CKA_ID and ignores anything else found there', () => {
    const at = new Date('2025-03-04T05:06:07.089Z');
    const record = creationRecord(at);
    expect(record.toString('ascii')).to.match(/^xks:2025-03-04T05:06:07\.089Z\/[0-9a-f]{8}$/);
    expect(parseCreationRecord(record)?.toISOString()).to.equal(at.toISOString());
    // Unique for one instant: NSS softokn would merge two secret keys with one CKA_ID.
    expect(creationRecord(at).equals(record)).to.equal(false);
    // Records written before the suffix still parse.
    expect(parseCreationRecord(Buffer.from('xks:2025-03-04T05:06:07.089Z'))?.toISOString()).to.equal(at.toISOString());
    for (const other of [Buffer.alloc(0), Buffer.from([1, 2, 3]), Buffer.from('xks:yesterday'), Buffer.from('abc:2025-03-04T05:06:07.089Z'), Buffer.from('xks:2025-13-45T99:99:99Z')]) {
      expect(parseCreationRecord(other), other.toString('hex')).to.equal(undefined);
    }
  });
});
