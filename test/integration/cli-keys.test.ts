import { expect } from 'chai';
import { createCipheriv, createPublicKey, randomBytes } from 'node:crypto';
import { chmodSync, existsSync, linkSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Command } from 'commander';
import { parse as parseYaml } from 'yaml';
import { createSelfSignedCert } from '../../src/cli/demo/self-signed-cert';
import { buildProgram } from '../../src/cli/main';
import { loadConfigFile } from '../../src/config/load';
import { createAesKey, Hsm } from '../../src/hsm';
import { claimLabel, creationRecord, versionLabel } from '../../src/keys/labels';
import { createLogger } from '../../src/observability/logger';
import { startProxy } from '../../src/server/proxy';
import { runCli, runCliInProcess, writeCliConfig, type CliResult } from '../support/cli';
import { testKeys } from '../support/proxy-harness';
import { softHsmFixture, uniqueLabel } from '../support/softhsm-fixture';
import { createRawAesKey } from '../hsm/helpers';
import { XksClient, requestMetadata } from '../support/xks-client';

/** Every CLI command as a real child process on the test token, success and failure exits. */
describe('CLI: keys, config check, credentials (integration)', function () {
  this.timeout(60_000);
  let hsm: Hsm;
  let health: string;
  let cfg: { dir: string; path: string };
  const HEADER = '# operator comment that must survive edits';

  // Most cases run the commander program in process (fast); at least one success and one failure
  // per command run as real child processes (`spawned`), proving the exit statuses end to end.
  const run = (...args: string[]): Promise<CliResult> => runCliInProcess(args);
  const check = async (result: Promise<CliResult>, args: string[], expected: 0 | 1, message?: RegExp | string): Promise<string> => {
    const r = await result;
    expect(r.code, `${args.join(' ')}\n${r.stdout}${r.stderr}`).to.equal(expected);
    if (message !== undefined) {
      if (typeof message === 'string') expect(r.stderr).to.include(message);
      else expect(r.stderr).to.match(message);
    }
    if (expected === 1) expect(r.stderr).not.to.match(/\n\s+at /); // a clear message, not a stack trace
    return r.stdout;
  };
  const ok = (...args: string[]): Promise<string> => check(run(...args), args, 0);
  const fails = async (args: string[], message: RegExp | string): Promise<void> => void (await check(run(...args), args, 1, message));
  const okSpawned = (...args: string[]): Promise<string> => check(runCli(args), args, 0);
  const failsSpawned = async (args: string[], message: RegExp | string): Promise<void> => void (await check(runCli(args), args, 1, message));


  before(async () => {
    health = (await testKeys()).health;
    const fx = softHsmFixture();
    hsm = await Hsm.open({ id: 'cli-setup', modulePath: fx.modulePath, tokenLabel: fx.label, pin: fx.pin, sessionPoolSize: 1, acquireTimeoutMs: 5000, maxWaiters: 8 });
    cfg = writeCliConfig({ healthCheckKeyLabel: health, header: HEADER });
  });
  after(async () => hsm?.close());

  describe('help', () => {
    it('every command prints --help with examples (in process), and --help exits 0 (child process)', async () => {
      const program = buildProgram();
      const leaves: Command[] = [];
      const walk = (command: Command): void => {
        if (command.commands.length === 0) leaves.push(command);
        command.commands.forEach(walk);
      };
      walk(program);
      const wanted = ['keys create', 'keys list', 'keys check', 'keys rotate', 'keys disable', 'keys enable', 'keys import', 'wrapping-key create', 'wrapping-key export', 'config check', 'credentials create'];
      const names = leaves.map((c) => `${c.parent?.name()} ${c.name()}`);
      expect(names).to.include.members(wanted);
      for (const command of leaves.filter((c) => wanted.includes(`${c.parent?.name()} ${c.name()}`))) {
        let text = '';
        command.configureOutput({ writeOut: (s) => (text += s), writeErr: (s) => (text += s) });
        command.outputHelp();
        expect(text, command.name()).to.match(/Examples?:\n\s+(XKS_HSM_PIN=\S+ )?xks-proxy /);
      }
      const help = await okSpawned('keys', 'rotate', '--help');
      expect(help).to.include('Usage: xks-proxy keys rotate [options] <externalKeyId>');
      expect(help).to.include('--if-older-than <days>');
    });
  });

  describe('keys create / list', () => {
    it('creates a non-extractable AES-256 key with the given usage; refuses duplicates and bad input', async () => {
      const id = uniqueLabel('cli-new');
      expect(await ok('keys', 'create', id, '--usage', 'encrypt', '-c', cfg.path)).to.include(`created AES-256 key "${id}" (version 1, usage ENCRYPT, non-extractable)`);
      expect(await hsm.keyAttributes(id)).to.include({ keyBits: 256, encrypt: true, decrypt: false, extractable: false, sensitive: true });
      await Promise.all([
        failsSpawned(['keys', 'create', id, '-c', cfg.path], `error: an AES-256 key labelled "${id}" already exists`),
        fails(['keys', 'create', 'bad id!', '-c', cfg.path], '"bad id!" is not a valid externalKeyId'),
      ]);
      await Promise.all([
        fails(['keys', 'create', uniqueLabel('x'), '--usage', 'encrypt,sign', '-c', cfg.path], 'unknown usage "sign"'),
        fails(['keys', 'create', uniqueLabel('x'), '--key-spec', 'RSA_2048', '-c', cfg.path], 'XKS keys are AES_256 only'),
      ]);
      await Promise.all([
        fails(['keys', 'create', uniqueLabel('x'), '--label', 'k/v2', '-c', cfg.path], 'is reserved for key versions'),
        fails(['keys', 'create', uniqueLabel('x')], "required option '-c, --config <file>' not specified"),
      ]);
    });

    it('--add-to-key-store maps the new key in the config file, keeping comments; an unknown store changes nothing', async () => {
      const id = uniqueLabel('cli-mapped');
      const label = uniqueLabel('hsm-label');
      const out = await ok('keys', 'create', id, '--label', label, '--add-to-key-store', 'root', '-c', cfg.path);
      expect(out).to.include(`mapped ${id} -> "${label}" in key store "root"`);
      const text = readFileSync(cfg.path, 'utf8');
      expect(text.startsWith(HEADER)).to.equal(true);
      expect(parseYaml(text).keyStores[0].keys.map).to.deep.include({ externalKeyId: id, label });
      expect(loadConfigFile(cfg.path).keyStores[0]?.keys.get(id)?.label).to.equal(label);

      const other = uniqueLabel('cli-unmapped');
      await fails(['keys', 'create', other, '--add-to-key-store', 'nope', '-c', cfg.path], 'has no key store named "nope" (key stores: root)');
      expect(readFileSync(cfg.path, 'utf8')).to.equal(text);
      expect(await hsm.listAesKeyLabels()).not.to.include(other);
    });

    it('lists served keys with versions, active version, usage, status and label; --json; unknown IDs fail', async () => {
      const id = uniqueLabel('cli-list');
      await createAesKey(hsm, { label: id, id: creationRecord(new Date('2025-01-02T03:04:05Z')) });
      await ok('keys', 'rotate', id, '-c', cfg.path);
      await ok('keys', 'disable', id, '--key-version', '1', '-c', cfg.path);
      const twice = uniqueLabel('cli-twice');
      for (let i = 0; i < 2; i++) await createRawAesKey(hsm, twice, randomBytes(32));
      const table = await ok('keys', 'list', '-c', cfg.path);
      // A broken key (two objects share its label) is reported in its row; the others still list.
      expect(table).to.match(new RegExp(`root\\s+${twice}\\s+${twice}\\s+ERROR: ambiguous key id: 2 AES-256 secret keys are labelled "${twice}"`));
      const json = await ok('keys', 'list', id, '--json', '-c', cfg.path);
      const header = table.split('\n')[0];
      expect(header).to.match(/^KEY STORE\s+EXTERNAL KEY ID\s+HSM LABEL\s+STATUS\s+ACTIVE\s+VERSIONS\s+USAGE\s+DISABLED VERSIONS\s+ACTIVE SINCE$/);
      expect(table).to.match(new RegExp(`root\\s+${id}\\s+${id}\\s+ENABLED\\s+v2\\s+2\\s+ENCRYPT,DECRYPT\\s+v1\\s+\\d{4}-\\d{2}-\\d{2}`));
      expect(table).not.to.include(`${id}/v2 `); // versions are not keys of their own
      expect(table).not.to.match(new RegExp(`\\s${health}\\s`)); // nor is the health-check key
      const [entry] = JSON.parse(json);
      expect(entry).to.deep.include({ keyStore: 'root', externalKeyId: id, label: id, status: 'ENABLED', activeVersion: 2, versionCount: 2, disabledVersions: [1], usage: ['ENCRYPT', 'DECRYPT'] });
      expect(entry.versions.map((v: { version: number; enabled: boolean }) => [v.version, v.enabled])).to.deep.equal([[1, false], [2, true]]);
      expect(entry.versions[0].createdAt).to.equal('2025-01-02T03:04:05.000Z');
      await Promise.all([
        failsSpawned(['keys', 'list', 'no-such-key', '-c', cfg.path], 'no key store serves externalKeyId "no-such-key"'),
        fails(['keys', 'list', '--key-store', 'nope', '-c', cfg.path], 'no key store named "nope"'),
      ]);
    });
  });

  describe('keys rotate / disable / enable', () => {
    it('rotates, honours --if-older-than, and fails clearly for unknown or ambiguous keys', async () => {
      const id = uniqueLabel('cli-rot');
      await createAesKey(hsm, { label: id, id: creationRecord(new Date()) });
      expect(await ok('keys', 'rotate', id, '--if-older-than', '30', '-c', cfg.path)).to.match(new RegExp(`not rotated; active version 1 was created .*, less than 30 days ago`));
      expect(await ok('keys', 'rotate', id, '-c', cfg.path)).to.include('version 2 is active, version 1 and older keep decrypting; running proxies see it on their next request');
      const ambiguous = writeCliConfig({
        healthCheckKeyLabel: health,
        extra: {
          keyStores: [
            { name: 'a', uriPrefix: '/a', credentials: [{ accessKeyId: 'AKIAI2SFODNN7EXAMPLEQ', secretAccessKey: 'wJalrXUtnFEMIK7MDENGbPxRfiCYEXAMPLEKEYabcdEF' }], keys: { map: [{ externalKeyId: 'shared', label: id }] } },
            { name: 'b', uriPrefix: '/b', credentials: [{ accessKeyId: 'AKIAI2SFODNN7EXAMPLEQ', secretAccessKey: 'wJalrXUtnFEMIK7MDENGbPxRfiCYEXAMPLEKEYabcdEF' }], keys: { map: [{ externalKeyId: 'shared', label: 'other' }] } },
          ],
        },
      });
      await Promise.all([
        failsSpawned(['keys', 'rotate', 'shared', '-c', ambiguous.path], 'choose one with --key-store'),
        fails(['keys', 'rotate', 'not-served', '-c', ambiguous.path], 'no key store serves externalKeyId "not-served"'),
      ]);
      await Promise.all([
        fails(['keys', 'rotate', uniqueLabel('absent'), '-c', cfg.path], /error: no AES-256 key labelled ".*" on the token/),
        fails(['keys', 'rotate', id, '--if-older-than', '0', '-c', cfg.path], '--if-older-than must be an integer from 1 to 36500'),
      ]);
      expect(await ok('keys', 'rotate', 'shared', '--key-store', 'a', '-c', ambiguous.path)).to.include('version 3 is active');
    });

    it('disables and enables a key and one version, idempotently; a missing version fails', async () => {
      const id = uniqueLabel('cli-toggle');
      await createAesKey(hsm, { label: id });
      expect(await ok('keys', 'disable', id, '-c', cfg.path)).to.include(`disabled ${id} (label "${id}")`);
      expect(await ok('keys', 'disable', id, '-c', cfg.path)).to.include('was already disabled');
      expect(await hsm.listAesKeyLabels()).to.include(`${id}/disabled`);
      expect(await ok('keys', 'enable', id, '-c', cfg.path)).to.include(`enabled ${id}`);
      expect(await hsm.listAesKeyLabels()).not.to.include(`${id}/disabled`);
      expect(await ok('keys', 'disable', id, '--key-version', '1', '-c', cfg.path)).to.include(`disabled version 1 of ${id}`);
      await Promise.all([
        failsSpawned(['keys', 'enable', id, '--key-version', '2', '-c', cfg.path], `key "${id}" has no version 2 (its versions are 1 to 1)`),
        failsSpawned(['keys', 'disable', id, '--key-version', 'two', '-c', cfg.path], '--key-version must be an integer'),
      ]);
    });

    it('concurrent rotations from several processes create exactly one new version (the claim protocol)', async () => {
      const id = uniqueLabel('cli-race');
      await createAesKey(hsm, { label: id, id: creationRecord(new Date(Date.now() - 10 * 86_400_000)) });
      const results = await Promise.all([1, 2, 3].map(() => runCli(['keys', 'rotate', id, '--if-older-than', '7', '-c', cfg.path])));
      for (const r of results) expect(r.code, r.stdout + r.stderr).to.equal(0);
      const labels = await hsm.listAesKeyLabels();
      expect(labels).to.include(versionLabel(id, 2));
      expect(labels).not.to.include(versionLabel(id, 3));
      expect(labels.filter((l) => l.startsWith(`${id}/`) && l.endsWith('/claim'))).to.deep.equal([]);
      expect(results.filter((r) => r.stdout.includes('version 2 is active, version 1')).length).to.equal(1);
      expect(labels).not.to.include(claimLabel(id, 2));
    });
  });

  describe('keys import / wrapping-key', () => {
    it('creates and exports an RSA wrapping key; refuses to overwrite files and bad sizes', async () => {
      const label = uniqueLabel('cli-wrap');
      const pem = join(cfg.dir, `${label}.pem`);
      const out = await ok('keys', 'wrapping-key', 'create', label, '--public-key-out', pem, '--bits', '2048', '-c', cfg.path);
      expect(out).to.match(/SHA-256 of the key: [0-9a-f]{64}\)/);
      expect(createPublicKey(readFileSync(pem)).asymmetricKeyDetails?.modulusLength).to.equal(2048);
      const exported = await ok('keys', 'wrapping-key', 'export', label, '-c', cfg.path);
      expect(exported.trim()).to.equal(readFileSync(pem, 'utf8').trim());
      await Promise.all([
        fails(['keys', 'wrapping-key', 'export', label, '--public-key-out', pem, '-c', cfg.path], 'exists; use --force to overwrite it'),
        failsSpawned(['keys', 'wrapping-key', 'create', uniqueLabel('w'), '--public-key-out', join(cfg.dir, 'x.pem'), '--bits', '1024', '-c', cfg.path], '--bits must be 2048, 3072 or 4096'),
      ]);
      await failsSpawned(['keys', 'wrapping-key', 'export', uniqueLabel('none'), '-c', cfg.path], /no RSA public key labelled/);
    });

    it('imports AES-KWP-wrapped material under an AES key-encryption key; bad files and mechanisms fail', async () => {
      const kekValue = randomBytes(32);
      const kek = uniqueLabel('cli-kek');
      await createAesKey(hsm, { label: kek, value: kekValue, encrypt: false, decrypt: false, unwrap: true });
      const material = randomBytes(32);
      const cipher = createCipheriv('id-aes256-wrap-pad', kekValue, Buffer.from('A65959A6', 'hex'));
      const wrappedPath = join(cfg.dir, 'kwp.bin');
      writeFileSync(wrappedPath, Buffer.concat([cipher.update(material), cipher.final()]));
      const id = uniqueLabel('cli-imported');
      expect(await ok('keys', 'import', id, '--mechanism', 'aes-key-wrap-pad', '--wrapping-key', kek, '--wrapped-key-file', wrappedPath, '-c', cfg.path)).to.include(
        `imported AES-256 key "${id}" (version 1, usage ENCRYPT,DECRYPT, non-extractable) with aes-key-wrap-pad under "${kek}"`,
      );
      expect(await hsm.keyAttributes(id)).to.include({ keyBits: 256, extractable: false, sensitive: true });
      const base = ['--wrapping-key', kek, '-c', cfg.path];
      await Promise.all([
        failsSpawned(['keys', 'import', uniqueLabel('i'), '--wrapped-key-file', join(cfg.dir, 'missing.bin'), ...base], /cannot read --wrapped-key-file .*missing\.bin: ENOENT/),
        fails(['keys', 'import', uniqueLabel('i'), '--wrapped-key-file', wrappedPath, '--mechanism', 'rsa-pkcs1', ...base], 'unknown mechanism "rsa-pkcs1"'),
      ]);
      await Promise.all([
        fails(['keys', 'import', uniqueLabel('i'), '--wrapped-key-file', wrappedPath, '--mechanism', 'rsa-oaep-sha256', ...base], /no RSA private key labelled/),
        fails(['keys', 'import', id, '--wrapped-key-file', wrappedPath, '--mechanism', 'aes-key-wrap-pad', ...base], `an AES-256 key labelled "${id}" already exists`),
      ]);
      writeFileSync(join(cfg.dir, 'garbage.bin'), randomBytes(40));
      await fails(['keys', 'import', uniqueLabel('i'), '--wrapped-key-file', join(cfg.dir, 'garbage.bin'), '--mechanism', 'aes-key-wrap-pad', ...base], /could not unwrap the key .* \(CKR_/);
    });
  });

  describe('config check', () => {
    it('prints Connected after a test encrypt/decrypt with the health-check key', async () => {
      const out = await okSpawned('config', 'check', cfg.path);
      expect(out).to.include(`${cfg.path}: valid (1 key store(s))`);
      expect(out).to.match(new RegExp(`softhsm-cli: Connected: token "${softHsmFixture().label}" \\(SoftHSM project .*\\); test encrypt/decrypt with "${health}" passed in [\\d.]+ ms`));
    });

    it('finds the config as serve and the keys commands do: -c, or $XKS_CONFIG (the image sets it), as well as the file argument', async () => {
      const connected = new RegExp(`softhsm-cli: Connected: token "${softHsmFixture().label}"`);
      const [byOption, byEnv, validated] = await Promise.all([
        runCli(['config', 'check', '-c', cfg.path]),
        runCli(['config', 'check'], { XKS_CONFIG: cfg.path }),
        runCli(['config', 'validate'], { XKS_CONFIG: cfg.path }),
      ]);
      for (const [name, result] of Object.entries({ byOption, byEnv, validated })) expect(result.code, `${name}: ${result.stderr}`).to.equal(0);
      expect(byOption.stdout).to.match(connected);
      expect(byEnv.stdout).to.match(connected);
      expect(validated.stdout).to.include(`${cfg.path}: valid (1 key store(s))`);
      // Two different files named at once is a mistake the command must not guess about.
      const both = await runCli(['config', 'check', cfg.path, '-c', join(cfg.dir, 'other.yaml')]);
      expect(both.code).to.equal(1);
      expect(both.stderr).to.match(/^error: .*both/);
    });

    it('prints Not connected and exits 1 for a wrong PIN or a missing health-check key; an invalid config exits 1', async () => {
      const wrongPin = writeCliConfig({ healthCheckKeyLabel: health });
      writeFileSync(join(wrongPin.dir, 'pin'), 'not-the-pin');
      const noHealth = writeCliConfig({ healthCheckKeyLabel: uniqueLabel('no-health') });
      const [pin, key] = await Promise.all([runCli(['config', 'check', wrongPin.path]), run('config', 'check', noHealth.path)]);
      expect(pin.code).to.equal(1);
      expect(pin.stdout).to.match(/softhsm-cli: Not connected: cannot open the token and log in: .*CKR_PIN_INCORRECT/);
      expect(pin.stdout + pin.stderr).not.to.include(softHsmFixture().pin);
      expect(key.code).to.equal(1);
      expect(key.stdout).to.match(/softhsm-cli: Not connected: logged in to token .*, but the test encrypt\/decrypt with "no-health-.*" failed: .*create it with: xks-proxy keys create no-health-/);
      const invalid = join(cfg.dir, 'invalid.yaml');
      writeFileSync(invalid, readFileSync(cfg.path, 'utf8').replace('tokenLabel:', 'sessionPoolSize: 0\n  tokenLabel:'));
      await fails(['config', 'check', invalid], /invalid configuration:\n\s+- hsm.sessionPoolSize: must be >= 1/);
    });
  });

  describe('credentials create', () => {
    it('adds a spec-conformant credential (comments kept, secret file with the config file owner and group) that a proxy on the edited config accepts, and writes the KMS console JSON', async () => {
      const dir = writeCliConfig({ healthCheckKeyLabel: health, header: HEADER, extra: { keyStores: [{ name: 'prod', uriPrefix: '/keystores/prod', credentials: [{ accessKeyId: 'AKIAI2SFODNN7EXAMPLEQ', secretAccessKeyEnv: 'UNUSED_SECRET' }], keys: { allTokenKeys: true } }] } });
      const pem = await createSelfSignedCert('localhost', ['localhost']);
      writeFileSync(join(dir.dir, 'server.crt'), pem.certPem);
      writeFileSync(join(dir.dir, 'server.key'), pem.keyPem);
      const consoleJson = join(dir.dir, 'kms.json');
      const r = await runCli(['credentials', 'create', '-c', dir.path, '--key-store', 'prod', '--console-json', consoleJson], { UNUSED_SECRET: 'x' });
      expect(r.code, r.stderr).to.equal(0);
      const console_ = JSON.parse(readFileSync(consoleJson, 'utf8'));
      const accessKeyId: string = console_.XksProxyAuthenticationCredential.AccessKeyId;
      const secret: string = console_.XksProxyAuthenticationCredential.RawSecretAccessKey;
      expect(console_.XksProxyUriPath).to.equal('/keystores/prod/kms/xks/v1');
      expect(accessKeyId).to.match(/^[A-Z2-7]{20,30}$/);
      expect(Buffer.from(secret, 'base64')).to.have.length(32);
      expect(statSync(consoleJson).mode & 0o777).to.equal(0o600);
      expect(r.stdout).to.include(`added credential ${accessKeyId} to key store "prod"`);
      expect(r.stdout + r.stderr).not.to.include(secret);

      const text = readFileSync(dir.path, 'utf8');
      expect(text.startsWith(HEADER)).to.equal(true);
      const added = parseYaml(text).keyStores[0].credentials[1];
      expect(added).to.deep.equal({ accessKeyId, secretAccessKeyFile: `prod-${accessKeyId}.secret`, createdAt: added.createdAt });
      expect(Math.abs(Date.parse(added.createdAt) - Date.now())).to.be.below(60_000); // xks_credential_age_seconds counts from it
      const secretFile = join(dir.dir, added.secretAccessKeyFile);
      expect(readFileSync(secretFile, 'utf8').trim()).to.equal(secret);
      // The service reads it as it reads the config: same owner and group, group read only if the config has it.
      const configStat = statSync(dir.path);
      expect(statSync(secretFile).mode & 0o777).to.equal(0o600 | (configStat.mode & 0o040));
      expect([statSync(secretFile).uid, statSync(secretFile).gid]).to.deep.equal([configStat.uid, configStat.gid]);

      // The proof: a proxy started from the edited file accepts requests signed with the new credential.
      const config = loadConfigFile(dir.path, { env: { UNUSED_SECRET: 'wJalrXUtnFEMIK7MDENGbPxRfiCYEXAMPLEKEYabcdEF' } });
      const proxy = await startProxy({ ...config, admin: { ...config.admin, enabled: false } }, createLogger({ level: 'error', stream: new (require('node:stream').Writable)({ write: (_c: Buffer, _e: string, d: () => void) => d() }) }));
      try {
        const client = new XksClient(`https://127.0.0.1:${proxy.port}`, Buffer.from(pem.certPem), { accessKeyId, secretAccessKey: secret });
        const res = await client.send('/keystores/prod/kms/xks/v1/health', { body: { requestMetadata: requestMetadata('KmsHealthCheck') } });
        expect(res.status, res.text).to.equal(200);
      } finally {
        await proxy.close();
      }
    });

    it('--inline-secret puts the secret in the config; unknown stores, existing files and conflicting flags fail without writing', async () => {
      const dir = writeCliConfig({ healthCheckKeyLabel: health, header: HEADER });
      const consoleJson = join(dir.dir, 'kms.json');
      // Readable by other users: the secret would be too, so it is refused.
      chmodSync(dir.path, 0o644);
      const untouched = readFileSync(dir.path, 'utf8');
      await fails(['credentials', 'create', '-c', dir.path, '--key-store', 'root', '--console-json', consoleJson, '--inline-secret'], `--inline-secret: ${dir.path} is readable by other users (mode 0644)`);
      expect(readFileSync(dir.path, 'utf8')).to.equal(untouched);
      expect(existsSync(consoleJson)).to.equal(false);
      chmodSync(dir.path, 0o640);
      await ok('credentials', 'create', '-c', dir.path, '--key-store', 'root', '--console-json', consoleJson, '--inline-secret');
      expect(statSync(dir.path).mode & 0o777).to.equal(0o640);
      const stored = parseYaml(readFileSync(dir.path, 'utf8')).keyStores[0].credentials[1];
      expect(stored.secretAccessKey).to.equal(JSON.parse(readFileSync(consoleJson, 'utf8')).XksProxyAuthenticationCredential.RawSecretAccessKey);
      expect(Math.abs(Date.parse(stored.createdAt) - Date.now())).to.be.below(60_000);

      const before = readFileSync(dir.path, 'utf8');
      await Promise.all([
        failsSpawned(['credentials', 'create', '-c', dir.path, '--key-store', 'nope', '--console-json', join(dir.dir, 'a.json')], 'has no key store named "nope" (key stores: root)'),
        fails(['credentials', 'create', '-c', dir.path, '--key-store', 'root', '--console-json', consoleJson], 'exists; use --force to overwrite it'),
      ]);
      await fails(['credentials', 'create', '-c', dir.path, '--key-store', 'root', '--console-json', join(dir.dir, 'b.json'), '--inline-secret', '--secret-file', join(dir.dir, 's')], 'give --secret-file or --inline-secret, not both');
      expect(readFileSync(dir.path, 'utf8')).to.equal(before);
      expect(existsSync(join(dir.dir, 'a.json'))).to.equal(false);
      expect(existsSync(join(dir.dir, 'b.json'))).to.equal(false);
    });

    it('--force over a group- and world-readable console JSON leaves the secret owner-only (0600), in a new file', async () => {
      const dir = writeCliConfig({ healthCheckKeyLabel: health, header: HEADER });
      const consoleJson = join(dir.dir, 'kms.json');
      const other = join(dir.dir, 'elsewhere.json');
      writeFileSync(consoleJson, '{"old": "upload"}\n', { mode: 0o644 });
      chmodSync(consoleJson, 0o644);
      linkSync(consoleJson, other); // a second name for the old file: it must not receive the secret
      chmodSync(dir.path, 0o600);
      await ok('credentials', 'create', '-c', dir.path, '--key-store', 'root', '--console-json', consoleJson, '--force', '--inline-secret');
      const secret = JSON.parse(readFileSync(consoleJson, 'utf8')).XksProxyAuthenticationCredential.RawSecretAccessKey as string;
      expect(secret).to.match(/^[A-Za-z0-9+/=]{43,64}$/);
      expect(statSync(consoleJson).mode & 0o777).to.equal(0o600);
      expect(readFileSync(other, 'utf8')).to.equal('{"old": "upload"}\n');
    });
  });
});
