/**
 * Issue #15, defect 3, over HTTPS against real SoftHSM: the token's storage folder is moved away
 * under load, then back. While it is away, keys that were served are an HSM fault (500
 * InternalException, which KMS fails over on), never 404 KeyNotFoundException, and GetHealthStatus
 * turns UNAVAILABLE within one health interval; once requests succeed again, health and /ready
 * follow at once. Runs on the fixture's second token, so other tests' keys are never touched.
 */
import { expect } from 'chai';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { createAesKey, Hsm } from '../../src/hsm';
import { adminGet } from '../support/admin-http';
import { startHarness, type Harness } from '../support/proxy-harness';
import { softHsmFixture, tokenDirectory, uniqueLabel } from '../support/softhsm-fixture';
import { b64, requestMetadata } from '../support/xks-client';

const INTERVAL_S = 2;

interface Sample {
  at: number;
  status: number;
  errorName?: string;
}

describe('token storage lost under load and restored (integration, real SoftHSM, HTTPS)', function () {
  this.timeout(120_000);
  let h: Harness;
  const key = uniqueLabel('loss-key');
  const healthKey = uniqueLabel('loss-health');
  const neverServed = uniqueLabel('loss-never');

  before(async function () {
    this.timeout(60_000);
    const fx = softHsmFixture();
    const setup = await Hsm.open({ id: 'setup', modulePath: fx.modulePath, tokenLabel: fx.peerLabel, pin: fx.pin, sessionPoolSize: 1, acquireTimeoutMs: 5000, maxWaiters: 4 });
    try {
      await createAesKey(setup, { label: key });
      await createAesKey(setup, { label: healthKey });
    } finally {
      await setup.close();
    }
    h = await startHarness({
      configure: (doc) => {
        doc.hsm.tokenLabel = fx.peerLabel;
        doc.hsm.healthCheckKeyLabel = healthKey;
        doc.health = { ...doc.health, intervalSeconds: INTERVAL_S };
        doc.keyStores[0].keys = { map: [{ externalKeyId: 'app', label: key }, { externalKeyId: 'never-served', label: neverServed }] };
      },
    });
  });
  after(async () => h?.stop());

  const encrypt = (id: string) =>
    h.client.send(`/kms/xks/v1/keys/${id}/encrypt`, {
      body: { requestMetadata: requestMetadata('Encrypt'), plaintext: b64('storage loss'), encryptionAlgorithm: 'AES_GCM' },
    });
  const healthStatus = async (): Promise<string> => {
    const res = await h.client.send('/kms/xks/v1/health', { body: { requestMetadata: requestMetadata('KmsHealthCheck') } });
    return res.json?.ekmFleetDetails?.[0]?.healthStatus ?? `HTTP ${res.status}`;
  };
  const ready = async () => (await adminGet(`${h.proxy.adminUrl as string}/ready`)).status;

  it('is an HSM fault while away (500, health UNAVAILABLE within one interval), and recovers with the requests', async () => {
    expect((await encrypt('app')).status).to.equal(200);
    expect((await encrypt('never-served')).json.errorName).to.equal('KeyNotFoundException');
    expect(await healthStatus()).to.equal('ACTIVE');

    const samples: Sample[] = [];
    let stop = false;
    const load = Promise.all(
      Array.from({ length: 3 }, async () => {
        while (!stop) {
          const res = await encrypt('app');
          samples.push({ at: Date.now(), status: res.status, ...(res.json?.errorName ? { errorName: res.json.errorName } : {}) });
          await new Promise((r) => setTimeout(r, 20));
        }
      }),
    );

    const dir = tokenDirectory(h.proxy.cluster.members()[0]!.token!.serialNumber);
    const away = path.join(softHsmFixture().dir, `away-${path.basename(dir)}`);
    const health: Array<{ at: number; status: string; ready: number }> = [];
    const watch = async (until: () => boolean, limitMs: number) => {
      const end = Date.now() + limitMs;
      while (!until() && Date.now() < end) {
        health.push({ at: Date.now(), status: await healthStatus(), ready: await ready() });
        await new Promise((r) => setTimeout(r, 100));
      }
    };
    let movedAt = 0;
    let restoredAt = 0;
    try {
      await new Promise((r) => setTimeout(r, 500));
      fs.renameSync(dir, away);
      movedAt = Date.now();
      await watch(() => false, 3 * INTERVAL_S * 1000);
    } finally {
      if (fs.existsSync(away)) fs.renameSync(away, dir);
      restoredAt = Date.now();
    }
    const lastOkSample = () => samples.filter((s) => s.status === 200 && s.at > restoredAt)[0];
    await watch(() => {
      const ok = lastOkSample();
      return ok !== undefined && health.some((x) => x.at > ok.at + 1500);
    }, 60_000);
    stop = true;
    await load;

    const during = samples.filter((s) => s.at > movedAt && s.at < restoredAt);
    const summary = (list: Sample[]) => list.reduce<Record<string, number>>((acc, s) => {
      const k = `${s.status} ${s.errorName ?? ''}`.trim();
      acc[k] = (acc[k] ?? 0) + 1;
      return acc;
    }, {});
    const firstUnavailable = health.find((x) => x.at > movedAt && x.status === 'UNAVAILABLE');
    const firstOkAfter = lastOkSample();
    const afterOk = firstOkAfter ? health.filter((x) => x.at > firstOkAfter.at + 1000) : [];
    // The timeline, for whoever reads a failure.
    console.log(JSON.stringify({
      during: summary(during),
      after: summary(samples.filter((s) => s.at >= restoredAt)),
      unavailableAfterMs: firstUnavailable ? firstUnavailable.at - movedAt : undefined,
      firstOkAfterRestoreMs: firstOkAfter ? firstOkAfter.at - restoredAt : undefined,
      healthAfterFirstOk: afterOk.slice(0, 5).map((x) => `${x.at - (firstOkAfter?.at ?? 0)}ms ${x.status} ${x.ready}`),
    }));

    expect(during.filter((s) => s.errorName === 'KeyNotFoundException'), 'no 404 for a key that was served').to.deep.equal([]);
    expect(during.some((s) => s.status === 500 && s.errorName === 'InternalException')).to.equal(true);
    expect(firstUnavailable, 'health UNAVAILABLE while away').to.not.equal(undefined);
    expect(firstUnavailable!.at - movedAt).to.be.below(INTERVAL_S * 1000 + 1000);
    expect(firstOkAfter, 'requests succeed again after the restore').to.not.equal(undefined);
    // From shortly after the move until requests succeed again, health and /ready agree they cannot.
    const outage = health.filter((x) => x.at > movedAt + 1000 && x.at < firstOkAfter!.at - 500);
    expect(outage.length).to.be.greaterThan(0);
    for (const x of outage) expect(`${x.status} ${x.ready}`).to.equal('UNAVAILABLE 503');
    expect(afterOk.length).to.be.greaterThan(0);
    for (const x of afterOk) expect(`${x.status} ${x.ready}`).to.equal('ACTIVE 200');
    // Still a plain 404 for a key the token never had.
    expect((await encrypt('never-served')).json.errorName).to.equal('KeyNotFoundException');
  });
});
