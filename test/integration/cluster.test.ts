import { expect } from 'chai';
import { readdirSync } from 'node:fs';
import { request as httpsRequest } from 'node:https';
import { Sha256 } from '@aws-crypto/sha256-js';
import { HttpRequest } from '@smithy/protocol-http';
import { SignatureV4 } from '@smithy/signature-v4';
import { generateCredential } from '../../src/auth/generate-credentials';
import { adminGet, sample, startCliProxy, type CliProxy } from '../support/cli-proxy';
import { b64, requestMetadata, XksClient, type XksResponse } from '../support/xks-client';

const encryptBody = (text: string) => ({
  requestMetadata: requestMetadata('Encrypt'),
  plaintext: b64(text),
  encryptionAlgorithm: 'AES_GCM',
});

async function roundTrip(p: CliProxy, text: string): Promise<void> {
  const enc = await p.client.send(`/kms/xks/v1/keys/${p.keys.main}/encrypt`, { body: encryptBody(text) });
  expect(enc.status, enc.text).to.equal(200);
  const dec = await p.client.send(`/kms/xks/v1/keys/${p.keys.main}/decrypt`, {
    body: {
      requestMetadata: requestMetadata('Decrypt'),
      encryptionAlgorithm: 'AES_GCM',
      ciphertext: enc.json.ciphertext,
      initializationVector: enc.json.initializationVector,
      authenticationTag: enc.json.authenticationTag,
      ciphertextMetadata: enc.json.ciphertextMetadata,
    },
  });
  expect(dec.status, dec.text).to.equal(200);
  expect(Buffer.from(dec.json.plaintext, 'base64').toString()).to.equal(text);
}

/**
 * Sends the headers and the first half of a signed Encrypt, and returns a function that sends the
 * rest and resolves with the response: a request that is in flight for as long as the test wants.
 */
async function startSlowEncrypt(p: CliProxy): Promise<() => Promise<XksResponse>> {
  const url = new URL(p.url);
  const path = `/kms/xks/v1/keys/${p.keys.main}/encrypt`;
  const body = Buffer.from(JSON.stringify(encryptBody('in flight during shutdown')));
  const signer = new SignatureV4({ service: 'kms-xks-proxy', region: 'us-east-1', credentials: p.credential, sha256: Sha256 });
  const signed = await signer.sign(
    new HttpRequest({ method: 'POST', protocol: 'https:', hostname: url.hostname, port: Number(url.port), path, body, headers: { host: url.host, 'content-type': 'application/json' } }),
  );
  const half = Math.floor(body.length / 2);
  let resolveResponse: (r: XksResponse) => void = () => undefined;
  let rejectResponse: (e: Error) => void = () => undefined;
  const response = new Promise<XksResponse>((resolve, reject) => {
    resolveResponse = resolve;
    rejectResponse = reject;
  });
  const req = httpsRequest(
    {
      host: url.hostname,
      port: url.port,
      method: 'POST',
      path,
      ca: p.ca,
      servername: 'localhost',
      agent: false,
      headers: { ...(signed.headers as Record<string, string>), 'content-length': String(body.length) },
    },
    (res) => {
      let text = '';
      res.on('data', (d: Buffer) => (text += d.toString()));
      res.on('end', () => resolveResponse({ status: res.statusCode ?? 0, headers: res.headers, text, json: text ? JSON.parse(text) : undefined }));
    },
  );
  req.on('error', rejectResponse);
  response.catch(() => undefined); // observed by the caller of the returned function
  await new Promise<void>((resolve) => req.write(body.subarray(0, half), () => resolve()));
  return () => {
    req.end(body.subarray(half));
    return response;
  };
}

describe('multi-core serving: `serve --workers` (integration, child processes)', function () {
  this.timeout(60_000);

  describe('a cluster of 2 workers', () => {
    let p: CliProxy;
    before(async () => {
      p = await startCliProxy({ workers: 2 });
    });
    after(async () => {
      if (p && p.child.exitCode === null) await p.stop();
    });

    it('serves from both workers, each with its own HSM session pool, and aggregates their metrics', async () => {
      for (let i = 0; i < 4; i++) await roundTrip(p, `message ${i}`);
      const served = new Set(p.logs.filter((l) => l.message === 'xks request').map((l) => l.worker));
      expect([...served].sort()).to.deep.equal([1, 2]);

      const metrics = await adminGet(`${p.adminUrl}/metrics`);
      expect(metrics.status).to.equal(200);
      // Summed over both workers: every request counted exactly once.
      expect(sample(metrics.text, 'xks_requests_total{operation="Encrypt",key_store="root",status="200",error_name=""}')).to.equal(4);
      expect(sample(metrics.text, 'xks_requests_total{operation="Decrypt",key_store="root",status="200",error_name=""}')).to.equal(4);
      expect(sample(metrics.text, 'xks_request_duration_seconds_count{operation="Encrypt",key_store="root"}')).to.equal(4);
      // Two pools of sessionPoolSize 3.
      expect(sample(metrics.text, 'xks_hsm_sessions{hsm="softhsm-cli",state="idle"}')).to.equal(6);
      expect(sample(metrics.text, 'xks_hsm_health_status{hsm="softhsm-cli",status="ACTIVE"}')).to.equal(1);
      expect(sample(metrics.text, 'xks_cluster_workers{state="ready"}')).to.equal(2);
      expect(sample(metrics.text, 'xks_cluster_workers{state="expected"}')).to.equal(2);
    });

    it('answers /ping, and /ready from every worker\'s health monitor', async () => {
      expect((await adminGet(`${p.adminUrl}/ping`)).json).to.deep.equal({ status: 'ok' });
      const ready = await adminGet(`${p.adminUrl}/ready`);
      expect(ready.status).to.equal(200);
      expect(ready.json).to.deep.include({ ready: true, workers: { expected: 2, answering: 2 } });
      // A passing deep check; DEGRADED only means it was slow on a loaded machine.
      expect(['ACTIVE', 'DEGRADED']).to.include((ready.json as { hsmStatus: string }).hsmStatus);
    });

    it('SIGHUP reloads the config in every worker: a credential added to the file works on both', async () => {
      const added = generateCredential();
      const client = new XksClient(p.url, p.ca, added);
      const health = { body: { requestMetadata: { kmsOperation: 'KmsHealthCheck', kmsRequestId: 'hup' } } };
      expect((await client.send('/kms/xks/v1/health', health)).status).to.equal(401);
      p.config.keyStores[0].credentials.push({ accessKeyId: added.accessKeyId, secretAccessKey: added.secretAccessKey });
      p.writeConfig();
      p.child.kill('SIGHUP');
      // The primary logs this once every worker has answered.
      const outcome = await p.waitForLog((l) => l.message === 'reload applied' || l.message === 'reload not applied everywhere');
      expect(outcome).to.deep.include({ message: 'reload applied', workers: 2 });
      expect(p.logs.filter((l) => l.message === 'config reloaded').map((l) => l.worker).sort()).to.deep.equal([1, 2]);
      const before = p.logs.filter((l) => l.message === 'xks request').length;
      for (let i = 0; i < 4; i++) expect((await client.send('/kms/xks/v1/health', health)).status).to.equal(200);
      const served = p.logs.filter((l) => l.message === 'xks request').slice(before).map((l) => l.worker);
      expect(new Set(served).size, 'both workers served the new credential').to.equal(2);
      await roundTrip(p, 'after SIGHUP');
    });

    it('a rejected config on SIGHUP changes nothing and is reported by the primary', async () => {
      p.config.keyStores[0].credentials.push({ accessKeyId: 'NOTVALID' });
      p.writeConfig();
      p.child.kill('SIGHUP');
      const outcome = await p.waitForLog((l) => l.message === 'reload not applied everywhere');
      expect(outcome).to.deep.include({ workers: 2, failed: 2, noAnswer: 0 });
      expect(String(outcome.error)).to.include('accessKeyId');
      p.config.keyStores[0].credentials.pop();
      p.writeConfig();
      await roundTrip(p, 'after a rejected reload');
    });

    it('replaces a worker that dies, and is ready again; what the dead worker counted stays counted', async () => {
      const counters = [
        'xks_requests_total{operation="Encrypt",key_store="root",status="200",error_name=""}',
        'xks_request_duration_seconds_count{operation="Decrypt",key_store="root"}',
      ];
      // The primary pulls the workers' counts at scrape time: it keeps those of its last scrape.
      const before = await adminGet(`${p.adminUrl}/metrics`);
      const victim = p.logs.find((l) => l.message === 'worker ready' && l.worker === 1);
      expect(p.logs.some((l) => l.message === 'xks request' && l.worker === 1), 'worker 1 served').to.equal(true);
      process.kill(Number(victim?.pid), 'SIGKILL');
      await p.waitForLog((l) => l.message === 'replacing worker' && l.worker === 1);
      await p.waitForLog((l) => l.message === 'worker ready' && l.worker === 3);
      const metrics = await adminGet(`${p.adminUrl}/metrics`);
      expect(sample(metrics.text, 'xks_cluster_worker_restarts_total')).to.equal(1);
      // A drop would be a counter reset to Prometheus: increase()-based alerts would fire.
      for (const series of counters) expect(sample(metrics.text, series), series).to.equal(sample(before.text, series)).and.to.be.greaterThan(0);
      expect((await adminGet(`${p.adminUrl}/ready`)).status).to.equal(200);
      await roundTrip(p, 'after a worker crash');
    });

    it('on SIGTERM finishes the request in flight, closes the HSM sessions and exits 0', async () => {
      const finish = await startSlowEncrypt(p);
      p.child.kill('SIGTERM');
      await p.waitForLog((l) => l.message === 'worker draining' && l.worker === 2);
      await p.waitForLog((l) => l.message === 'worker draining' && l.worker === 3);
      // Draining: the primary reports not ready, so load balancers stop sending.
      const ready = await adminGet(`${p.adminUrl}/ready`);
      expect(ready.status).to.equal(503);
      expect(ready.json).to.deep.include({ ready: false, reason: 'shutting down' });

      const res = await finish();
      expect(res.status, res.text).to.equal(200);
      expect(res.json.ciphertext).to.be.a('string');
      expect(await p.exited).to.equal(0);
      const stopped = p.logs.filter((l) => l.message === 'worker stopped');
      expect(stopped.map((l) => l.forcedConnections)).to.deep.equal([0, 0]);
      expect(p.logs.at(-1)).to.deep.include({ message: 'shutdown complete', failedWorkers: 0 });
    });

    it('never logs the PIN, the secret key or plaintext, from the primary or any worker (log redaction)', () => {
      const everything = `${p.logs.map((l) => JSON.stringify(l)).join('\n')}\n${p.stderr()}`;
      expect(p.logs.length).to.be.greaterThan(20);
      const canaries = [p.pin, p.credential.secretAccessKey];
      for (const text of ['message 0', 'after SIGHUP', 'after a worker crash', 'in flight during shutdown']) canaries.push(text, b64(text));
      for (const canary of canaries) expect(everything, 'a secret or plaintext reached the log').not.to.include(canary);
    });
  });

  it('cuts a request still in flight after server.shutdownTimeoutMs, and still exits 0', async () => {
    const p = await startCliProxy({ workers: 2, shutdownTimeoutMs: 300 });
    const finish = await startSlowEncrypt(p);
    p.child.kill('SIGTERM');
    expect(await p.exited).to.equal(0);
    const stopped = p.logs.filter((l) => l.message === 'worker stopped');
    expect(stopped.map((l) => l.forcedConnections).sort()).to.deep.equal([0, 1]);
    expect(stopped.find((l) => l.forcedConnections === 1)?.level).to.equal('warn');
    const outcome = await finish().then(
      (r) => `status ${r.status}`,
      (e: NodeJS.ErrnoException) => e.code,
    );
    expect(outcome).to.equal('ECONNRESET');
  });

  it('--workers 1 logs a request cut by server.shutdownTimeoutMs (forcedConnections), as a worker does, and exits 0', async () => {
    const p = await startCliProxy({ workers: 1, shutdownTimeoutMs: 300 });
    const finish = await startSlowEncrypt(p);
    p.child.kill('SIGTERM');
    expect(await p.exited).to.equal(0);
    // The operator guide's SIGTERM row: connections still open after the grace period are cut, and
    // the log says how many; a single process has no 'worker stopped' line, so it says it here.
    const stopped = p.logs.filter((l) => l.message === 'shutdown complete');
    expect(stopped.map((l) => [l.level, l.forcedConnections]), p.stderr()).to.deep.equal([['warn', 1]]);
    const outcome = await finish().then(
      (r) => `status ${r.status}`,
      (e: NodeJS.ErrnoException) => e.code,
    );
    expect(outcome).to.equal('ECONNRESET');
  });

  it('--workers 1 serves in a single process with the same graceful SIGTERM', async () => {
    const p = await startCliProxy({ workers: 1 });
    await roundTrip(p, 'single process');
    const finish = await startSlowEncrypt(p);
    p.child.kill('SIGTERM');
    // The process has seen the signal (and stopped accepting) before the body completes.
    while (!p.stderr().includes('received SIGTERM, shutting down')) await new Promise((r) => setTimeout(r, 20));
    const res = await finish();
    expect(res.status, res.text).to.equal(200);
    expect(await p.exited).to.equal(0);
    expect(p.stderr()).to.include('received SIGTERM, shutting down');
    expect(p.logs.some((l) => 'worker' in l)).to.equal(false);
  });

  it('sizes the libuv thread pool to the sessions of HSMs called from the main thread (4 + sessionPoolSize), unless UV_THREADPOOL_SIZE is set', async () => {
    const threads = (pid: number) => readdirSync(`/proc/${pid}/task`).length;
    // pkcs11Threads 0: the calls run on the main thread, with the async (libuv pool) variants.
    const sized = await startCliProxy({ workers: 1, env: { UV_THREADPOOL_SIZE: undefined }, hsm: { pkcs11Threads: 0 } });
    const pinned = await startCliProxy({ workers: 1, env: { UV_THREADPOOL_SIZE: '1' }, hsm: { pkcs11Threads: 0 } });
    try {
      // Async PKCS#11 calls start the pool; libuv creates all its threads at once.
      await roundTrip(sized, 'sized');
      await roundTrip(pinned, 'pinned');
      expect(sized.logs.find((l) => l.message === 'xks proxy listening')).to.include({ threadPoolSize: 7 });
      expect(pinned.logs.find((l) => l.message === 'xks proxy listening')).to.include({ threadPoolSize: 1 });
      // Same binary and config otherwise: the difference is exactly the extra pool threads.
      expect(threads(sized.child.pid as number) - threads(pinned.child.pid as number)).to.equal(6);
    } finally {
      await Promise.all([sized.stop(), pinned.stop()]);
    }
  });

  it('fails fast, exit 1, when workers cannot start (wrong PIN)', async () => {
    const p = await startCliProxy({ workers: 2, pin: 'wrong-pin-canary', readyWhen: 'exit' });
    expect(await p.exited).to.equal(1);
    expect(`${JSON.stringify(p.logs)}${p.stderr()}`).not.to.include('wrong-pin-canary');
    expect(p.logs.some((l) => l.message === 'a worker failed during startup; stopping')).to.equal(true);
    // stderr in the message: a primary that died (rather than lost its last lines) says so there.
    expect(p.logs.at(-1), `stderr: ${p.stderr()}`).to.deep.include({ message: 'shutdown complete' });
  });
});
