/**
 * The watcher's baseline at startup (loadServedConfig) and its later checks must fingerprint the same
 * set of files: the security section names the TLS certificate and key again, and a list with those
 * twice once hashed differently from the watcher's de-duplicated one, so every `serve` reloaded its
 * unchanged config ~debounceMs after starting.
 */
import { expect } from 'chai';
import { readFileSync, writeFileSync } from 'node:fs';
import { Writable } from 'node:stream';
import { join } from 'node:path';
import { stringify as toYaml } from 'yaml';
import { generateCredential } from '../../../src/auth/generate-credentials';
import { createSelfSignedCert } from '../../../src/cli/demo/self-signed-cert';
import { ConfigWatcher } from '../../../src/server/config-watcher';
import { configFromAcceptedText, loadServedConfig, watchedFiles } from '../../../src/server/reload-watch';
import { createLogger } from '../../../src/observability/logger';
import { tempDir } from '../../support/temp-dir';
import { waitFor } from '../../support/wait';

const DEBOUNCE_MS = 20;

async function writeServedConfig(dir: string): Promise<string> {
  const pem = await createSelfSignedCert('localhost', ['localhost']);
  writeFileSync(join(dir, 'server.crt'), pem.certPem);
  writeFileSync(join(dir, 'server.key'), pem.keyPem);
  writeFileSync(join(dir, 'pin'), '1234');
  const path = join(dir, 'config.yaml');
  const credential = generateCredential();
  writeFileSync(
    path,
    toYaml({
      server: { host: '127.0.0.1', port: 0, tls: { certFile: 'server.crt', keyFile: 'server.key' } },
      hsm: { modulePath: '/usr/lib/softhsm/libsofthsm2.so', tokenLabel: 'any', pinFile: 'pin' },
      keyStores: [{ name: 'ks', credentials: [{ accessKeyId: credential.accessKeyId, secretAccessKey: credential.secretAccessKey }], keys: { allTokenKeys: true } }],
      reload: { watch: true, debounceMs: DEBOUNCE_MS },
    }),
  );
  return path;
}

describe('config watcher baseline (unit)', () => {
  const silent = createLogger({ level: 'error', stream: new Writable({ write: (_chunk, _encoding, done) => done() }) });

  it('lists each watched file once, although the security section names the certificate and key again', async () => {
    const path = await writeServedConfig(tempDir('reload-watch'));
    const { config } = loadServedConfig(path);
    const files = watchedFiles(path, config);
    expect(config.security?.referencedFiles).to.include(config.server.certFile);
    expect(files).to.have.lengthOf(new Set(files).size);
    expect(files).to.include.members([path, config.server.certFile, config.server.keyFile]);
  });

  it('does not reload an unchanged config after start, and still reloads a changed one', async () => {
    const path = await writeServedConfig(tempDir('reload-watch'));
    const { config, watchBaseline } = loadServedConfig(path);
    expect(watchBaseline).to.be.a('string');
    let changes = 0;
    const watcher = new ConfigWatcher({ debounceMs: DEBOUNCE_MS, pollIntervalSeconds: 0 }, () => (changes += 1), silent);
    try {
      // As reloadable-runtime.ts arms it: the file list of the config it serves, with the startup baseline.
      watcher.reset(watchedFiles(path, config), { debounceMs: DEBOUNCE_MS, pollIntervalSeconds: 0 }, watchBaseline);
      await new Promise((resolve) => setTimeout(resolve, DEBOUNCE_MS * 10));
      expect(changes, 'reloads of an unchanged config').to.equal(0);
      writeFileSync(join(path, '..', 'pin'), '5678');
      await waitFor(() => changes === 1, 'a reload after the PIN file changed', 5000);
    } finally {
      watcher.close();
    }
  });

  it('a cluster replacement: builds the accepted text, and its baseline makes the watcher try the file only when the file differs', async () => {
    const path = await writeServedConfig(tempDir('reload-watch'));
    const accepted = readFileSync(path, 'utf8');
    const same = configFromAcceptedText(path, accepted);
    expect(same.watchBaseline).to.equal(loadServedConfig(path).watchBaseline);
    expect(same.source).to.equal(accepted);

    writeFileSync(path, `${accepted}keyStores: [{ name: rejected }]\n`); // an edit the running workers rejected
    const replacement = configFromAcceptedText(path, accepted);
    expect(replacement.config.keyStores.map((s) => s.name)).to.deep.equal(['ks']);
    expect(replacement.watchBaseline).to.be.a('string').and.not.equal(same.watchBaseline);
  });
});
