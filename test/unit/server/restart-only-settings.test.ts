/** One list of restart-only settings: a reload reports each change and keeps each running value. */
import { expect } from 'chai';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { buildRuntimeConfig } from '../../../src/config/load';
import type { RuntimeConfig } from '../../../src/config/runtime';
import { keepRestartOnlySettings, RESTART_ONLY_SETTINGS, restartOnlyChanges } from '../../../src/server/restart-only-settings';

const SECRET = 'FYtE5EFA5FT0mCc3DrGUe2sti527BitkQ0Zr9MO9fvE';
const doc = (server: Record<string, unknown> = {}, extra: Record<string, unknown> = {}) => ({
  server: { port: 0, tls: { certFile: 'c.pem', keyFile: 'k.pem' }, ...server },
  hsm: { modulePath: '/usr/lib/softhsm/libsofthsm2.so', tokenLabel: 't', pinEnv: 'PIN' },
  keyStores: [{ name: 's', credentials: [{ accessKeyId: 'AKIAI2SFODNN7EXAMPLE', secretAccessKey: SECRET }], keys: { allTokenKeys: true } }],
  ...extra,
});
const config = (server?: Record<string, unknown>, extra?: Record<string, unknown>): RuntimeConfig => buildRuntimeConfig(doc(server, extra), '/etc/xks', { PIN: '1234' });

describe('restart-only settings', () => {
  it('names every setting once', () => {
    const names = RESTART_ONLY_SETTINGS.map((s) => s.name);
    expect(new Set(names).size).to.equal(names.length);
  });

  it('reports nothing for the same config, and each changed restart-only setting by its file name', () => {
    const running = config();
    expect(restartOnlyChanges(running, config())).to.deep.equal([]);
    const next = config({ port: 9443, host: '127.0.0.1', maxConnections: 50, tls: { certFile: 'c.pem', keyFile: 'k.pem', ticketKeyRotationSeconds: 60 } });
    expect(restartOnlyChanges(running, next)).to.deep.equal(['server.host', 'server.port', 'server.maxConnections', 'server.tls.ticketKeyRotationSeconds']);
  });

  it('reports a new audit HMAC key as audit: the running log keeps its key until a restart (README "Rotating the audit key")', () => {
    const audited = (key: string) => buildRuntimeConfig(doc({}, { audit: { file: 'audit.log', hmacKeyEnv: 'AUDIT_KEY' } }), '/etc/xks', { PIN: '1234', AUDIT_KEY: key });
    const running = audited('a'.repeat(40));
    expect(restartOnlyChanges(running, audited('b'.repeat(40)))).to.deep.equal(['audit']);
    expect(keepRestartOnlySettings(running, audited('b'.repeat(40))).security?.audit?.hmacKey?.toString()).to.equal('a'.repeat(40));
  });

  it('keeps the running values, applies the rest, and leaves the next config untouched', () => {
    const running = config();
    const next = config({ port: 9443, maxConnections: 50, requestTimeoutMs: 7000, tls: { certFile: 'other.pem', keyFile: 'k.pem' } });
    const applied = keepRestartOnlySettings(running, next);
    expect(applied.server).to.include({ port: running.server.port, host: running.server.host, requestTimeoutMs: 7000, certFile: '/etc/xks/other.pem' });
    expect('maxConnections' in applied.server).to.equal(false);
    expect(applied.hsm).to.equal(running.hsm);
    expect(restartOnlyChanges(running, applied)).to.deep.equal([]);
    expect(next.server).to.include({ port: 9443, maxConnections: 50 });
  });

  it('README "Hot reload" names every restart-only setting, so an operator knows what a reload leaves alone', () => {
    const readme = fs.readFileSync(path.resolve(__dirname, '../../../../README.md'), 'utf8');
    const section = readme.slice(readme.indexOf('### Hot reload'), readme.indexOf('### SigV4 credential rotation runbook'));
    expect(RESTART_ONLY_SETTINGS.map((s) => s.name).filter((name) => !section.includes(`\`${name}\``))).to.deep.equal([]);
  });
});
