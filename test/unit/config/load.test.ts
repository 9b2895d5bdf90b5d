import { expect } from 'chai';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { buildRuntimeConfig, ConfigError, configFromText, loadConfigFile } from '../../../src/config/load';
import { renderConfigReference } from '../../../src/config/reference';
import { tempDir } from '../../support/temp-dir';

const SECRET = 'FYtE5EFA5FT0mCc3DrGUe2sti527BitkQ0Zr9MO9fvE';
const base = () => ({
  server: { port: 0, tls: { certFile: 'c.pem', keyFile: 'k.pem' } },
  hsm: { modulePath: '/usr/lib/softhsm/libsofthsm2.so', tokenLabel: 't', pinEnv: 'PIN' },
  keyStores: [{ name: 's', credentials: [{ accessKeyId: 'AKIAI2SFODNN7EXAMPLE', secretAccessKey: SECRET }], keys: { allTokenKeys: true } }],
});
const env = { PIN: '1234' };

function problemsOf(doc: unknown, environment: NodeJS.ProcessEnv = env): string[] {
  try {
    buildRuntimeConfig(doc, '/etc/xks', environment);
  } catch (err) {
    if (err instanceof ConfigError) return err.problems;
    throw err;
  }
  return [];
}

describe('config loading', () => {
  it('applies defaults and resolves paths against the config folder', () => {
    const config = buildRuntimeConfig(base(), '/etc/xks', env);
    expect(config.server.certFile).to.equal('/etc/xks/c.pem');
    expect(config.server.host).to.equal('0.0.0.0');
    expect(config.hsm.pin).to.equal('1234');
    expect(config.hsm.sessionPoolSize).to.equal(8);
    expect(config.limits).to.include({ maxPlaintextBytes: 8192, maxAadBytes: 8192, clockSkewSeconds: 300 });
    expect(config.keyStores[0]?.uriPrefix).to.equal('');
    expect(config.keyStores[0]?.credentials.get('AKIAI2SFODNN7EXAMPLE')).to.equal(SECRET);
  });

  it('reads secrets and the PIN from environment variables and files', () => {
    const dir = tempDir('xks-config-');
    writeFileSync(join(dir, 'pin'), '9999\n');
    writeFileSync(join(dir, 'secret'), `${SECRET}\n`);
    const doc = base();
    doc.hsm = { ...doc.hsm, pinEnv: undefined, pinFile: 'pin' } as never;
    doc.keyStores[0]!.credentials = [
      { accessKeyId: 'AKIAI2SFODNN7EXAMPLE', secretAccessKeyFile: 'secret' },
      { accessKeyId: 'BBBBBBBBBBBBBBBBBBBB22', secretAccessKeyEnv: 'S2' },
    ] as never;
    const config = buildRuntimeConfig(doc, dir, { S2: SECRET.replace('F', 'G') });
    expect(config.hsm.pin).to.equal('9999');
    expect(config.keyStores[0]?.credentials.size).to.equal(2);
    expect(config.keyStores[0]?.credentials.get('BBBBBBBBBBBBBBBBBBBB22')).to.equal(SECRET.replace('F', 'G'));
  });

  const invalid: Array<[string, (doc: ReturnType<typeof base>) => void, RegExp]> = [
    ['an unknown field', (d) => ((d as never as Record<string, unknown>).extra = 1), /\(top level\): unknown field "extra"/],
    ['a bad access key ID', (d) => (d.keyStores[0]!.credentials[0]!.accessKeyId = 'lowercase-is-bad-here'), /keyStores\.0\.credentials\.0\.accessKeyId/],
    ['a short secret', (d) => (d.keyStores[0]!.credentials[0]!.secretAccessKey = 'short'), /secretAccessKey/],
    ['no token selector', (d) => delete (d.hsm as { tokenLabel?: string }).tokenLabel, /tokenLabel or tokenSerial/],
    ['a missing PIN variable', (d) => (d.hsm.pinEnv = 'NOPE'), /NOPE is not set/],
    ['a bad prefix', (d) => ((d.keyStores[0] as Record<string, unknown>).uriPrefix = 'no-slash'), /keyStores\.0\.uriPrefix/],
    ['a too small plaintext limit', (d) => ((d as Record<string, unknown>).limits = { maxPlaintextBytes: 100 }), /limits\.maxPlaintextBytes/],
    ['an AAD limit two bytes cannot encode', (d) => ((d as Record<string, unknown>).limits = { maxAadBytes: 70000 }), /limits\.maxAadBytes/],
    ['a key store serving nothing', (d) => (d.keyStores[0]!.keys = {} as never), /serves no key/],
    ['a bad externalKeyId', (d) => (d.keyStores[0]!.keys = { map: [{ externalKeyId: 'a/b' }] } as never), /externalKeyId/],
    ['a missing keyStores', (d) => delete (d as Partial<typeof d>).keyStores, /missing required field "keyStores"/],
  ];
  for (const [name, mutate, expected] of invalid) {
    it(`rejects ${name}, naming the field`, () => {
      const doc = base();
      mutate(doc);
      const problems = problemsOf(doc);
      expect(problems.join('\n')).to.match(expected);
    });
  }

  it('rejects duplicate prefixes, names and two secret sources', () => {
    const doc = base();
    doc.keyStores.push({ ...doc.keyStores[0]! });
    doc.keyStores[0]!.credentials[0] = { accessKeyId: 'AKIAI2SFODNN7EXAMPLE', secretAccessKey: SECRET, secretAccessKeyEnv: 'X' } as never;
    const problems = problemsOf(doc).join('\n');
    expect(problems).to.match(/duplicate uriPrefix/);
    expect(problems).to.match(/duplicate key store name/);
    expect(problems).to.match(/exactly one of secretAccessKey/);
  });

  it('refuses a key mapping that names the health-check key, which is never served', () => {
    const mapped = (entry: { externalKeyId: string; label?: string }, healthCheckKeyLabel?: string) =>
      problemsOf({ ...base(), hsm: { ...base().hsm, ...(healthCheckKeyLabel ? { healthCheckKeyLabel } : {}) }, keyStores: [{ ...base().keyStores[0]!, keys: { map: [entry] } }] }).join('\n');
    expect(mapped({ externalKeyId: 'innocent', label: 'xks-health-check' })).to.match(/keyStores\.0\.keys\.map\.0: maps the health-check key/);
    expect(mapped({ externalKeyId: 'hc' }, 'hc')).to.match(/maps the health-check key/);
    expect(mapped({ externalKeyId: 'innocent', label: 'customer-key' })).to.equal('');
  });

  it('refuses a KMS API path under /kms/xks/v1/ (the XKS routes are matched first)', () => {
    const kmsApi = (path: string) => ({ path, keyStore: 's', credentials: [{ accessKeyId: 'AKIAI2SFODNN7EXAMPLF', secretAccessKey: SECRET, actions: ['kms:*'], keys: ['*'] }] });
    expect(problemsOf({ ...base(), kmsApi: kmsApi('/a/kms/xks/v1/health') }).join('\n')).to.match(/kmsApi\.path: must not be under \/kms\/xks\/v1\//);
    expect(problemsOf({ ...base(), kmsApi: kmsApi('/kms') }).join('\n')).to.not.match(/kmsApi\.path/);
  });

  it('never echoes a secret or PIN in its errors', () => {
    const doc = base();
    doc.keyStores[0]!.credentials[0]!.secretAccessKey = 'not valid but secret!!';
    const problems = problemsOf(doc, { PIN: 'pin-value-1234' }).join('\n');
    expect(problems).not.to.include('not valid but secret');
    expect(problems).not.to.include('pin-value-1234');
  });

  it('never echoes a secret that a typo made part of a field name (flow mapping without its colon)', () => {
    const dir = tempDir('xks-config-');
    const path = join(dir, 'config.yaml');
    for (const typo of [`secretAccessKey ${SECRET}`, `secretAccessKey=${SECRET}`, SECRET, 'pin:1234']) {
      writeFileSync(path, [
        'server: {port: 0, tls: {certFile: c.pem, keyFile: k.pem}}',
        'hsm: {modulePath: /usr/lib/softhsm/libsofthsm2.so, tokenLabel: t, pinEnv: PIN}',
        'keyStores:',
        '  - name: s',
        '    keys: {allTokenKeys: true}',
        `    credentials: [{accessKeyId: AKIAI2SFODNN7EXAMPLE, ${typo}}]`,
        '',
      ].join('\n'));
      let problems = '';
      try {
        configFromText(path, readFileSync(path, 'utf8'), { env: { PIN: '5678' } });
      } catch (err) {
        problems = (err as ConfigError).problems.join('\n');
      }
      expect(problems, typo).to.match(/keyStores\.0\.credentials\.0: unknown field/);
      expect(problems, typo).not.to.include(SECRET.slice(0, 12));
      expect(problems, typo).not.to.include('1234');
    }
    // An ordinary misspelling is still named.
    expect(problemsOf({ ...base(), hsm: { ...base().hsm, sessionPoolSzie: 4 } }).join('\n')).to.include('hsm: unknown field "sessionPoolSzie"');
  });

  it('validates the shipped example config', () => {
    const config = loadConfigFile(join(__dirname, '../../../../config/xks-proxy.example.yaml'), {
      env: { XKS_HSM_PIN: '1234', XKS_SECRET_PROD_A: SECRET },
    });
    expect(config.keyStores[0]?.keys.get('retired-key')?.enabled).to.equal(false);
    // Every example credential is dated: xks_credential_age_seconds counts from createdAt.
    expect(config.keyStores.map((s) => s.security?.credentialsWithoutCreatedAt.size)).to.deep.equal(config.keyStores.map(() => 0));
  });

  it('keeps docs/config-reference.md in step with the schema (npm run docs:config)', () => {
    const committed = readFileSync(join(__dirname, '../../../../docs/config-reference.md'), 'utf8');
    expect(committed).to.equal(renderConfigReference());
  });
});
