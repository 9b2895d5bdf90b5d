import { expect } from 'chai';
import { randomBytes, randomInt } from 'node:crypto';
import { loadedModules } from '../../src/hsm/pkcs11/module';
import { XKS_ERRORS } from '../../src/api/errors';
import { buildHsmAad } from '../../src/api/hsm-aad';
import { nodeDecrypt } from '../hsm/helpers';
import { waitFor } from '../support/cluster-helpers';
import { adminGet, decryptBody, encryptBody, healthStatus, keyPath, startClusterHarness, type ClusterHarness } from '../support/cluster-harness';
import { Agent } from 'node:https';
import { XksClient, requestMetadata, type XksResponse } from '../support/xks-client';

/**
 * A bounded fault soak: thousands of mixed requests over real HTTPS against a two-HSM cluster
 * (a SoftHSM token, and a second token behind a CloudHSM shim) while faults are injected at the
 * PKCS#11 boundary and cleared again, phase by phase. It shows: no crash; every ciphertext the
 * proxy returned decrypts afterwards; every error carries an errorName that fits the fault;
 * health goes ACTIVE -> DEGRADED/UNAVAILABLE -> ACTIVE; open sessions stay bounded.
 */

/** Errors a fault may cause. Anything else (InvalidCiphertext, KeyNotFound, 500 without a name...) is a defect. */
const FAULT_ERRORS = new Set(['InternalException', 'DependencyTimeoutException', 'ThrottlingException']);
const POOL_SESSIONS = 2 * 4;
const WORKERS = 8;

interface Sample {
  plaintext: Buffer;
  aad: Buffer;
  response: Record<string, string>;
}

interface PhaseStats {
  requests: number;
  errors: Map<string, number>;
  /** A few distinct error messages, for the figures. */
  messages: Set<string>;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('fault soak (integration)', function () {
  this.timeout(180_000);
  let h: ClusterHarness | undefined;
  after(async () => h?.stop());

  it('keeps answering correctly through device errors, slow calls, dropped sessions, a lost library, an outage and saturation', async () => {
    h = await startClusterHarness({
      cloudhsmPeer: true,
      // A PKCS#11 thread per session, as a network HSM gets by default: a slow call holds only its own.
      member: { sessionPoolSize: 4, maxWaiters: 16, pkcs11Threads: 4 },
      health: { intervalSeconds: 1, hysteresisChecks: 2, errorWindowSeconds: 2, degradedLatencyMs: 100 },
      // Client and server share 2 busy cores here: a roomier budget keeps CPU contention from
      // posing as HSM timeouts in the healthy phases. Session waits still end at acquireTimeoutMs
      // (100 ms) and first attempts at attemptTimeoutMs (100 ms); cluster.test.ts checks 150 ms budgets.
      limits: { requestDeadlineMs: 400 },
    });
    const agent = new Agent({ keepAlive: true, maxSockets: 64 });
    const harness = { ...h, client: new XksClient(h.client.baseUrl, h.client.ca, h.client.defaultCredential, { agent, nodeHash: true }) };
    const { faults } = harness;
    const key = harness.keys.cluster.key;
    const hsmAad = (aad: Buffer, ciphertextMetadata: string) => buildHsmAad(aad, Buffer.from(ciphertextMetadata, 'base64'));

    const unhandled: unknown[] = [];
    const onUnhandled = (reason: unknown) => unhandled.push(reason);
    process.on('unhandledRejection', onUnhandled);

    const samples: Sample[] = [];
    const phases = new Map<string, PhaseStats>();
    const badErrors: string[] = [];
    const wrongPlaintexts: string[] = [];
    let phase = 'steady';
    let stop = false;
    const health: Record<string, string[]> = { 'hsm-a': [], 'hsm-b': [] };
    let maxOpenSessions = 0;
    let maxLibrarySessions = 0;
    const readyDuringOutage: number[] = [];

    const record = (operation: string, res: XksResponse): void => {
      const stats = phases.get(phase) ?? { requests: 0, errors: new Map(), messages: new Set() };
      phases.set(phase, stats);
      stats.requests += 1;
      if (res.status === 200) return;
      const name = String(res.json?.errorName);
      stats.errors.set(name, (stats.errors.get(name) ?? 0) + 1);
      if (stats.messages.size < 4) stats.messages.add(`${name}: ${String(res.json?.errorMessage).slice(0, 120)}`);
      const expectedStatus = XKS_ERRORS[name as keyof typeof XKS_ERRORS];
      const printable = typeof res.json?.errorMessage === 'string' && /^[\x20-\x7e]{1,511}$/.test(res.json.errorMessage);
      if (!FAULT_ERRORS.has(name) || expectedStatus !== res.status || !printable) {
        badErrors.push(`${phase} ${operation}: ${res.status} ${res.text.slice(0, 200)}`);
      }
    };

    const oneRequest = async (): Promise<void> => {
      const pick = Math.random();
      if (pick < 0.55 || samples.length < 20) {
        const plaintext = randomBytes([0, 32, 100, 1000, 4300][randomInt(5)] as number);
        const aad = randomBytes(randomInt(65));
        const res = await harness.client.send(keyPath(key, 'encrypt'), { body: encryptBody(plaintext, aad) });
        record('Encrypt', res);
        if (res.status === 200) samples.push({ plaintext, aad, response: res.json });
      } else if (pick < 0.8) {
        const sample = samples[randomInt(samples.length)] as Sample;
        const res = await harness.client.send(keyPath(key, 'decrypt'), { body: decryptBody(sample.response, sample.aad) });
        record('Decrypt', res);
        if (res.status === 200 && !Buffer.from(res.json.plaintext, 'base64').equals(sample.plaintext)) wrongPlaintexts.push(phase);
      } else if (pick < 0.9) {
        const res = await harness.client.send(keyPath(key, 'metadata'), { body: { requestMetadata: requestMetadata('DescribeKey') } });
        record('GetKeyMetadata', res);
      } else {
        record('GetHealthStatus', await healthStatus(harness));
      }
    };

    const workers = Array.from({ length: WORKERS }, async () => {
      while (!stop) await oneRequest();
    });
    const monitor = (async () => {
      while (!stop) {
        const res = await healthStatus(harness);
        for (const detail of res.json.ekmFleetDetails as Array<{ id: string; healthStatus: string }>) {
          const seen = health[detail.id] as string[];
          if (seen[seen.length - 1] !== detail.healthStatus) seen.push(detail.healthStatus);
        }
        maxOpenSessions = Math.max(maxOpenSessions, faults.openSessions());
        maxLibrarySessions = Math.max(maxLibrarySessions, librarySessions());
        await sleep(100);
      }
    })();
    const member = (id: string) => harness.proxy.health.members().find((m) => m.id === id);
    const status = (id: string) => member(id)?.healthStatus;
    const bothBack = () => ['hsm-a', 'hsm-b'].every((id) => member(id)?.serving === true && status(id) === 'ACTIVE');
    const started = Date.now();

    try {
      await sleep(1500);

      phase = 'hsm-b device errors';
      faults.set('hsm-b', { kind: 'error', returnCode: 'CKR_DEVICE_ERROR' });
      await waitFor('hsm-b UNAVAILABLE', () => status('hsm-b') === 'UNAVAILABLE', 15_000);
      await sleep(500);
      faults.set('hsm-b', undefined);
      await waitFor('hsm-b back', bothBack, 15_000);

      phase = 'hsm-a slow calls';
      faults.set('hsm-a', { kind: 'slow', delayMs: 150 });
      await waitFor('hsm-a DEGRADED', () => status('hsm-a') === 'DEGRADED', 15_000);
      faults.set('hsm-a', undefined);
      await waitFor('hsm-a back', bothBack, 15_000);

      phase = 'dropped sessions, sporadic device errors';
      faults.set('hsm-a', { kind: 'sporadic', returnCode: 'CKR_DEVICE_ERROR', probability: 0.01 });
      for (let i = 0; i < 10; i++) {
        faults.dropSessions(i % 2 === 0 ? 'hsm-a' : 'hsm-b');
        await sleep(200);
      }
      faults.set('hsm-a', undefined);

      phase = 'library lost its initialisation';
      const generation = libraryGeneration();
      faults.loseInitialisation();
      await waitFor('a re-initialisation', () => libraryGeneration() > generation, 15_000);
      await sleep(1000);

      phase = 'every HSM down';
      faults.set('hsm-a', { kind: 'error', returnCode: 'CKR_DEVICE_REMOVED' });
      faults.set('hsm-b', { kind: 'error', returnCode: 'CKR_TOKEN_NOT_PRESENT' });
      await waitFor('nothing can serve', () => !harness.proxy.health.canServe(), 15_000);
      readyDuringOutage.push((await adminGet(`${harness.proxy.adminUrl}/ready`)).status);
      await waitFor('both UNAVAILABLE', () => status('hsm-a') === 'UNAVAILABLE' && status('hsm-b') === 'UNAVAILABLE', 15_000);
      // Health comes back with the first reconnection that passes a round trip: hold the outage long
      // enough for the 100 ms GetHealthStatus poller to see it.
      await sleep(500);
      faults.clearAll();
      await waitFor('both back', bothBack, 20_000);

      phase = 'saturation';
      faults.set('hsm-a', { kind: 'slow', delayMs: 250 });
      faults.set('hsm-b', { kind: 'slow', delayMs: 250 });
      await Promise.all(Array.from({ length: 64 }, () => oneRequest()));
      await Promise.all(Array.from({ length: 64 }, () => oneRequest()));
      faults.clearAll();
      phase = 'settling';
      await sleep(1000);
      await waitFor('both back', bothBack, 20_000);

      phase = 'steady again';
      await sleep(1500);
    } finally {
      stop = true;
      faults.clearAll();
      await Promise.all([...workers, monitor]);
      process.off('unhandledRejection', onUnhandled);
    }
    agent.destroy();
    const soakSeconds = (Date.now() - started) / 1000;

    // Every ciphertext the proxy returned decrypts afterwards, through the proxy and by node:crypto.
    // A decrypt that meets back-pressure is tried again, as KMS's callers would.
    const decryptLater = async (sample: Sample): Promise<XksResponse> => {
      for (let attempt = 1; ; attempt++) {
        const res = await harness.client.send(keyPath(key, 'decrypt'), { body: decryptBody(sample.response, sample.aad) });
        if (res.status === 200 || attempt === 5 || !FAULT_ERRORS.has(String(res.json?.errorName))) return res;
        await sleep(50);
      }
    };
    let verified = 0;
    const failedVerifications: string[] = [];
    for (let i = 0; i < samples.length; i += 8) {
      await Promise.all(
        samples.slice(i, i + 8).map(async (sample) => {
          const res = await decryptLater(sample);
          const local = nodeDecrypt(
            harness.keys.cluster.keyValue,
            Buffer.from(sample.response.initializationVector as string, 'base64'),
            Buffer.from(sample.response.ciphertext as string, 'base64'),
            Buffer.from(sample.response.authenticationTag as string, 'base64'),
            hsmAad(sample.aad, sample.response.ciphertextMetadata as string),
          );
          if (res.status === 200 && Buffer.from(res.json.plaintext, 'base64').equals(sample.plaintext) && local.equals(sample.plaintext)) verified += 1;
          else failedVerifications.push(`${res.status} ${res.text.slice(0, 100)}`);
        }),
      );
    }
    await waitFor(`sessions back to the pools' ${POOL_SESSIONS}`, () => faults.openSessions() === POOL_SESSIONS && librarySessions() === POOL_SESSIONS, 10_000);

    const finalHealth = ((await healthStatus(harness)).json.ekmFleetDetails as Array<{ healthStatus: string }>).map((d) => d.healthStatus);
    const metrics = (await adminGet(`${harness.proxy.adminUrl}/metrics`)).text;
    const sum = (name: string) => [...metrics.matchAll(new RegExp(`^${name}\\{[^}]*\\} (\\d+)`, 'gm'))].reduce((n, m) => n + Number(m[1]), 0);
    let requests = 0;
    const errorsByName = new Map<string, number>();
    for (const stats of phases.values()) {
      requests += stats.requests;
      for (const [name, n] of stats.errors) errorsByName.set(name, (errorsByName.get(name) ?? 0) + n);
    }
    const figures = [
      `fault soak: ${requests} requests over HTTPS in ${soakSeconds.toFixed(1)} s (${WORKERS} workers + bursts), ${samples.length} encrypts returned`,
      `  faults injected: ${faults.totalInjected()} ${JSON.stringify(Object.fromEntries(faults.injected))}`,
      `  errors by name: ${JSON.stringify(Object.fromEntries(errorsByName))}`,
      `  per phase:`,
      ...[...phases].map(([name, s]) => `    ${name}: ${s.requests} requests, errors ${JSON.stringify(Object.fromEntries(s.errors))} ${[...s.messages].join(' | ')}`),
      `  retries: ${sum('xks_hsm_retries_total')}, reconnects ok/failed: ${sumWith(metrics, 'xks_hsm_reconnects_total', 'ok')}/${sumWith(metrics, 'xks_hsm_reconnects_total', 'failed')}, library re-initialisations: ${sum('xks_hsm_module_reinitializations_total')}`,
      `  decrypt-verified after the soak: ${verified}/${samples.length} (proxy and node:crypto)`,
      `  open sessions: max ${maxOpenSessions} at the PKCS#11 boundary (${maxLibrarySessions} in the library), ${faults.openSessions()} at the end; pools hold ${POOL_SESSIONS}`,
      `  health (GetHealthStatus polled during the soak): hsm-a ${health['hsm-a']?.join('>')}; hsm-b ${health['hsm-b']?.join('>')}; after it: ${finalHealth.join(', ')}; /ready during the outage: ${readyDuringOutage.join(',')}`,
    ];
    // What the HSM layer said behind each error, from the proxy's own log lines (numbers folded).
    const causes = new Map<string, number>();
    for (const line of harness.logs) {
      const cause = (JSON.parse(line) as { hsmError?: string }).hsmError?.replace(/\d+/g, 'N');
      if (cause) causes.set(cause, (causes.get(cause) ?? 0) + 1);
    }
    const topCauses = [...causes].sort((a, b) => b[1] - a[1]).slice(0, 6);
    figures.push(`  top error causes (log field hsmError): ${topCauses.map(([cause, n]) => `${n}x ${cause.slice(0, 110)}`).join(' | ')}`);
    console.log(figures.join('\n'));

    expect(unhandled, 'unhandled rejections').to.deep.equal([]);
    expect((await harness.client.send('/ping', { method: 'GET', credential: null })).status).to.equal(200);
    expect(requests).to.be.greaterThan(2000);
    expect(faults.totalInjected()).to.be.greaterThan(100);
    expect(badErrors, badErrors.slice(0, 5).join('\n')).to.deep.equal([]);
    expect(wrongPlaintexts).to.deep.equal([]);
    expect(failedVerifications, failedVerifications.slice(0, 5).join('\n')).to.deep.equal([]);
    expect(verified).to.equal(samples.length);
    // Healthy phases answer everything; one HSM failing is absorbed by the other.
    for (const quiet of ['steady', 'steady again']) expect(phases.get(quiet)?.errors.size, quiet).to.equal(0);
    for (const single of ['hsm-b device errors', 'hsm-a slow calls']) {
      const stats = phases.get(single) as PhaseStats;
      const failed = [...stats.errors.values()].reduce((a, b) => a + b, 0);
      expect(failed / stats.requests, `${single}: ${failed} of ${stats.requests} failed`).to.be.below(0.05);
    }
    expect(phases.get('every HSM down')?.errors.get('InternalException')).to.be.greaterThan(0);
    expect(readyDuringOutage).to.deep.equal([503]);
    const saturation = phases.get('saturation') as PhaseStats;
    expect(saturation.errors.get('ThrottlingException'), 'saturation sheds load').to.be.greaterThan(0);
    expect(saturation.errors.get('DependencyTimeoutException'), 'saturation times out').to.be.greaterThan(0);
    // Health moved down and came back, for each HSM; both end ACTIVE.
    expect(containsInOrder(health['hsm-b'] ?? [], ['ACTIVE', 'UNAVAILABLE', 'ACTIVE', 'UNAVAILABLE', 'ACTIVE']), health['hsm-b']?.join('>')).to.equal(true);
    expect(containsInOrder(health['hsm-a'] ?? [], ['ACTIVE', 'DEGRADED', 'ACTIVE', 'UNAVAILABLE', 'ACTIVE']), health['hsm-a']?.join('>')).to.equal(true);
    expect(finalHealth).to.deep.equal(['ACTIVE', 'ACTIVE']);
    // Sessions stayed bounded: at most each HSM's pool twice over (a retiring connection's calls
    // finishing while its replacement is open), and exactly the pools at the end.
    expect(maxOpenSessions).to.be.at.most(2 * POOL_SESSIONS);
    expect(maxLibrarySessions).to.be.at.most(2 * POOL_SESSIONS);
  });
});

function libraryGeneration(): number {
  return loadedModules().find((m) => m.path.includes('softhsm'))?.generation ?? 0;
}

function librarySessions(): number {
  return loadedModules().find((m) => m.path.includes('softhsm'))?.openSessions ?? 0;
}

function sumWith(metrics: string, name: string, outcome: string): number {
  return [...metrics.matchAll(new RegExp(`^${name}\\{[^}]*outcome="${outcome}"[^}]*\\} (\\d+)`, 'gm'))].reduce((n, m) => n + Number(m[1]), 0);
}

/** Whether `wanted` appears in `seen` in order (not necessarily adjacent). */
function containsInOrder(seen: string[], wanted: string[]): boolean {
  let i = 0;
  for (const status of seen) if (status === wanted[i]) i += 1;
  return i >= wanted.length;
}
