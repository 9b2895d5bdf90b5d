/**
 * README "Enable / disable": disabling the active version makes the key DISABLED and Encrypt
 * answer InvalidStateException. Scheduled rotation must respect that state: if it did not, once the disabled version is
 * rotationPeriodDays old, the scheduler makes a new, enabled version active, and the key the operator
 * disabled is ENABLED again and encrypts, without anyone enabling it.
 */
import { expect } from 'chai';
import { createAesKey } from '../../src/hsm';
import { creationRecord } from '../../src/keys/labels';
import { setEnabled } from '../../src/keys/lifecycle';
import { startHarness, type Harness } from '../support/proxy-harness';
import { uniqueLabel } from '../support/softhsm-fixture';
import { b64, requestMetadata, XksClient } from '../support/xks-client';

describe('scheduled rotation of a key whose active version is disabled', function () {
  this.timeout(60_000);
  const label = uniqueLabel('disabled-active');
  let h: Harness;

  before(async () => {
    h = await startHarness({
      configure: (doc) => {
        doc.keyLifecycle = { stateCacheSeconds: 0, rotationCheckSeconds: 86_400 };
        doc.keyStores[1].keys = { map: [{ externalKeyId: 'held-key', label, rotationPeriodDays: 30 }] };
      },
    });
    await createAesKey(h.proxy.hsm, { label, id: creationRecord(new Date(Date.now() - 40 * 86_400_000)) });
  });
  after(async () => h?.stop());

  const client = () => new XksClient(h.client.baseUrl, h.ca, h.credentials.tenantB);
  const metadata = async () => (await client().send('/tenants/b/kms/xks/v1/keys/held-key/metadata', { body: { requestMetadata: requestMetadata('DescribeKey') } })).json.keyStatus;

  it('a key the operator disabled (its active version) stays DISABLED after a scheduled check', async () => {
    await setEnabled(h.proxy.hsm, label, false, { version: 1 });
    expect(await metadata()).to.equal('DISABLED');

    const checks = await h.proxy.keyRotation.checkNow();
    console.log(`      scheduled check: ${JSON.stringify(checks.find((c) => c.label === label)?.result)}`);

    const enc = await client().send('/tenants/b/kms/xks/v1/keys/held-key/encrypt', {
      body: { requestMetadata: requestMetadata('Encrypt'), plaintext: b64('x'), encryptionAlgorithm: 'AES_GCM' },
    });
    expect({ keyStatus: await metadata(), encrypt: enc.status }).to.deep.equal({ keyStatus: 'DISABLED', encrypt: 400 });
    expect(checks.find((c) => c.label === label)?.result?.outcome).to.equal('skipped-disabled');
    expect(await h.proxy.metrics.registry.metrics()).to.match(/xks_key_rotations_total\{outcome="skipped-disabled"\} [1-9]/);
  });

  it('a disabled key (key-level marker) is not rotated either', async () => {
    await setEnabled(h.proxy.hsm, label, true, { version: 1 });
    await setEnabled(h.proxy.hsm, label, false);
    const checks = await h.proxy.keyRotation.checkNow();
    expect(checks.find((c) => c.label === label)?.result).to.deep.equal({ outcome: 'skipped-disabled', active: 1, keyEnabled: false, activeVersionEnabled: true });
    expect(await metadata()).to.equal('DISABLED');
  });
});
