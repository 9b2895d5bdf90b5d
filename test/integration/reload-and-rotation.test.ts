import { expect } from 'chai';
import { spawn } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { connect, type TLSSocket } from 'node:tls';
import { generateCredential } from '../../src/auth/generate-credentials';
import { createSelfSignedCert } from '../../src/cli/demo/self-signed-cert';
import { replaceFile } from '../support/config-file';
import { startHarness, type Harness } from '../support/proxy-harness';
import { b64, requestMetadata, XksClient, type Credential } from '../support/xks-client';
import { waitFor } from '../support/wait';
import { metricsText } from '../support/admin-http';

const MAIN = join(__dirname, '../../src/cli/main.js');

describe('hot reload and credential rotation (integration)', () => {
  let h: Harness;
  const health = { requestMetadata: { kmsRequestId: 'reload', kmsOperation: 'KmsHealthCheck' } };
  const readDoc = () => JSON.parse(readFileSync(h.configPath as string, 'utf8'));
  const writeDoc = (doc: unknown) => replaceFile(h.configPath as string, JSON.stringify(doc, null, 2));
  const generation = () => h.proxy.runtime.generation();

  before(async function () {
    this.timeout(60_000);
    h = await startHarness({
      fromFile: true,
      configure: (doc) => {
        doc.reload = { watch: true, debounceMs: 50 };
      },
    });
  });
  after(async () => h?.stop());

  it('runs the spec rotation runbook under continuous traffic without a single failed request', async function () {
    this.timeout(60_000);
    const oldCred = h.credentials.tenantB;
    const newCred = generateCredential();
    const tenant = (credential: Credential) => new XksClient(h.client.baseUrl, h.ca, credential);
    let phase: 'old' | 'both' | 'new' = 'old';
    let stop = false;
    const counts = { old: 0, new: 0 };
    const failures: string[] = [];
    const worker = async (id: number): Promise<void> => {
      for (let i = 0; !stop; i++) {
        const useNew = phase === 'new' || (phase === 'both' && (i + id) % 2 === 0);
        const res = await tenant(useNew ? newCred : oldCred).send('/tenants/b/kms/xks/v1/keys/b-key/encrypt', {
          body: { requestMetadata: requestMetadata('Encrypt'), plaintext: b64(`msg ${i}`), encryptionAlgorithm: 'AES_GCM' },
        });
        if (res.status === 200) counts[useNew ? 'new' : 'old']++;
        else failures.push(`${phase}/${useNew ? 'new' : 'old'}: ${res.status} ${res.text}`);
      }
    };
    const traffic = Promise.all([worker(0), worker(1)]);
    try {
      await waitFor(() => counts.old >= 20, 'traffic on the old pair');

      // 1. Add the new pair next to the old one (the file watcher picks the change up).
      const g1 = generation();
      const doc = readDoc();
      doc.keyStores[1].credentials.push({ accessKeyId: newCred.accessKeyId, secretAccessKey: newCred.secretAccessKey, createdAt: new Date().toISOString() });
      doc.keyStores[1].credentials[0].createdAt = new Date(Date.now() - 90 * 86400_000).toISOString();
      writeDoc(doc);
      await waitFor(() => generation() > g1, 'the reload adding the new pair');

      // 2-3. KMS is updated (UpdateCustomKeyStore) and its hosts switch over: both pairs are in use meanwhile.
      phase = 'both';
      const before = { ...counts };
      await waitFor(() => counts.old >= before.old + 20 && counts.new >= before.new + 20, 'traffic on both pairs');
      phase = 'new';
      const switched = counts.new;
      await waitFor(() => counts.new >= switched + 20, 'traffic on the new pair only');

      // 4. Remove the old pair.
      const g2 = generation();
      const after = readDoc();
      after.keyStores[1].credentials = after.keyStores[1].credentials.filter((c: { accessKeyId: string }) => c.accessKeyId !== oldCred.accessKeyId);
      writeDoc(after);
      await waitFor(() => generation() > g2, 'the reload removing the old pair');
      const settled = counts.new;
      await waitFor(() => counts.new >= settled + 20, 'traffic after the removal');
    } finally {
      stop = true;
      await traffic;
    }
    expect(failures).to.deep.equal([]);
    const refused = await tenant(oldCred).send('/tenants/b/kms/xks/v1/health', { body: health });
    expect(refused.status).to.equal(401);
    expect(refused.json.errorName).to.equal('AuthenticationFailedException');
    expect((await tenant(newCred).send('/tenants/b/kms/xks/v1/health', { body: health })).status).to.equal(200);
    const reloads = h.logs.map((l) => JSON.parse(l)).filter((l) => l.message === 'config reloaded');
    expect(reloads.every((l) => l.trigger === 'file change')).to.equal(true);
    const text = await metricsText(h.proxy.adminUrl as string);
    expect(text).to.match(new RegExp(`xks_credential_age_seconds\\{key_store="tenant-b",access_key_id="${newCred.accessKeyId}"\\} \\d+`));
    expect(text).not.to.include(`access_key_id="${oldCred.accessKeyId}"`);
  });

  it('rejects an invalid new config with the reason logged, and keeps serving with the old one', async () => {
    const good = readFileSync(h.configPath as string, 'utf8');
    const g = generation();
    const doc = JSON.parse(good);
    doc.keyStores[0].credentials[0].accessKeyId = 'lowercase-is-invalid';
    writeFileSync(h.configPath as string, JSON.stringify(doc));
    const result = h.proxy.reload();
    expect(result.ok).to.equal(false);
    expect(result.errors?.join('\n')).to.match(/keyStores\.0\.credentials\.0\.accessKeyId/);
    expect(generation()).to.equal(g);
    const logged = h.logs.map((l) => JSON.parse(l)).find((l) => l.message === 'config reload rejected; the running config stays');
    expect(logged.reloadErrors).to.match(/accessKeyId/);
    expect((await h.client.send('/kms/xks/v1/health', { body: health })).status).to.equal(200);

    writeFileSync(h.configPath as string, '{ not: json');
    expect(h.proxy.reload().ok).to.equal(false);
    expect((await h.client.send('/kms/xks/v1/health', { body: health })).status).to.equal(200);
    writeFileSync(h.configPath as string, good);
    expect(h.proxy.reload().ok).to.equal(true);
  });

  it('reloads key mappings, and a policy file changed on its own', async () => {
    const meta = () => h.client.send('/kms/xks/v1/keys/alias-of-main/metadata', { body: { requestMetadata: requestMetadata('DescribeKey') } });
    const before = await meta();
    expect(before.status).to.equal(404);
    const doc = readDoc();
    doc.keyStores[0].keys.map.push({ externalKeyId: 'alias-of-main', label: h.keys.main });
    doc.keyStores[0].authorization = { policyFile: 'policy.cedar' };
    writeFileSync(join(h.dir, 'policy.cedar'), 'permit (principal, action, resource);\n');
    let g = generation();
    writeDoc(doc);
    await waitFor(() => generation() > g, 'the reload adding a mapping');
    expect((await meta()).status).to.equal(200);

    g = generation();
    replaceFile(join(h.dir, 'policy.cedar'), '@id("nobody")\nforbid (principal, action, resource);\n');
    await waitFor(() => generation() > g, 'the reload of the policy file');
    const denied = await meta();
    expect(denied.status).to.equal(403);
    expect((await h.client.send('/kms/xks/v1/health', { body: health })).status).to.equal(200);

    g = generation();
    replaceFile(join(h.dir, 'policy.cedar'), 'permit (principal, action, resource) when { ; };\n');
    await waitFor(() => h.logs.some((l) => l.includes('policy.cedar:1:')), 'the rejected policy reload');
    expect(generation()).to.equal(g);
    expect((await meta()).status).to.equal(403);

    // Fixed again: the next reload goes through (later tests reload this config too).
    replaceFile(join(h.dir, 'policy.cedar'), 'permit (principal, action, resource);\n');
    await waitFor(() => generation() > g, 'the reload of the fixed policy file');
    expect((await meta()).status).to.equal(200);
  });

  it('swaps the server certificate for new connections while an open connection keeps working', async function () {
    this.timeout(30_000);
    const socket = await new Promise<TLSSocket>((resolve, reject) => {
      const s = connect({ host: '127.0.0.1', port: h.proxy.port, ca: h.ca, servername: 'localhost' }, () => resolve(s));
      s.on('error', reject);
    });
    const ping = () =>
      new Promise<string>((resolve, reject) => {
        let data = '';
        const onData = (d: Buffer) => {
          data += d.toString();
          if (data.includes('{"status":"ok"}')) {
            socket.off('data', onData);
            resolve(data);
          }
        };
        socket.on('data', onData);
        socket.once('error', reject);
        socket.write('GET /ping HTTP/1.1\r\nHost: localhost\r\n\r\n');
      });
    expect(await ping()).to.match(/^HTTP\/1\.1 200/);
    const oldFingerprint = socket.getPeerCertificate().fingerprint256;

    const fresh = await createSelfSignedCert('localhost', ['localhost']);
    const g = generation();
    replaceFile(join(h.dir, 'server.key'), fresh.keyPem);
    replaceFile(join(h.dir, 'server.crt'), fresh.certPem);
    // Key first, then certificate: a reload may see the pair mismatched once (rejected), then the whole pair.
    await waitFor(() => generation() > g, 'the certificate reload');

    const newFingerprint = await new Promise<string>((resolve, reject) => {
      const s = connect({ host: '127.0.0.1', port: h.proxy.port, ca: Buffer.from(fresh.certPem), servername: 'localhost' }, () => {
        resolve(s.getPeerCertificate().fingerprint256);
        s.end();
      });
      s.on('error', reject);
    });
    expect(newFingerprint).not.to.equal(oldFingerprint);
    expect(await ping()).to.match(/^HTTP\/1\.1 200/);
    expect(socket.destroyed).to.equal(false);
    socket.end();
  });

  it('reloads on SIGHUP in `xks-proxy serve`', async function () {
    this.timeout(60_000);
    const doc = readDoc();
    doc.reload = { watch: false };
    doc.admin.enabled = false;
    const path = join(h.dir, 'sighup.json');
    writeFileSync(path, JSON.stringify(doc));
    // One process: the first "config reloaded" line means the reload is done. SIGHUP through the
    // cluster primary to every worker is tested in cluster.test.ts.
    const child = spawn(process.execPath, [MAIN, 'serve', '-c', path, '--workers', '1'], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env } });
    let out = '';
    child.stdout?.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr?.on('data', (d: Buffer) => (out += d.toString()));
    try {
      await waitFor(() => out.includes('xks proxy listening'), `the serve process; output:\n${out}`, 30_000);
      const url = JSON.parse(out.split('\n').find((l) => l.includes('xks proxy listening')) as string).url.replace('localhost', '127.0.0.1');
      const added = generateCredential();
      const client = new XksClient(url, readFileSync(join(h.dir, 'server.crt')), added);
      expect((await client.send('/kms/xks/v1/health', { body: health })).status).to.equal(401);
      doc.keyStores[0].credentials.push({ accessKeyId: added.accessKeyId, secretAccessKey: added.secretAccessKey });
      writeFileSync(path, JSON.stringify(doc));
      child.kill('SIGHUP');
      await waitFor(() => out.includes('"config reloaded"'), 'the SIGHUP reload', 20_000);
      expect((await client.send('/kms/xks/v1/health', { body: health })).status).to.equal(200);
      expect(child.exitCode).to.equal(null);
    } finally {
      child.kill('SIGTERM');
      await new Promise((resolve) => child.once('exit', resolve));
    }
  });
});
