/**
 * deploy/systemd/xks-proxy.service checked by systemd itself (`systemd-analyze verify`, and the
 * offline `security` exposure score), plus the directives the operator guide promises; and the
 * Dockerfile's shape (scripts/container-test.sh builds and runs it for real).
 */
import { expect } from 'chai';
import { execFileSync, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';

const ROOT = join(__dirname, '../../../..');
const UNIT = join(ROOT, 'deploy/systemd/xks-proxy.service');

function directives(text: string): Map<string, string[]> {
  const out = new Map<string, string[]>();
  let section = '';
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (!line || line.startsWith('#')) continue;
    const header = /^\[(\w+)\]$/.exec(line);
    if (header) {
      section = header[1]!;
      continue;
    }
    const eq = line.indexOf('=');
    const key = `${section}.${line.slice(0, eq)}`;
    out.set(key, [...(out.get(key) ?? []), line.slice(eq + 1)]);
  }
  return out;
}

describe('deploy/systemd/xks-proxy.service', () => {
  const unit = directives(readFileSync(UNIT, 'utf8'));
  const one = (key: string): string | undefined => unit.get(key)?.at(-1);

  it('passes systemd-analyze verify with no warnings', () => {
    const result = spawnSync('systemd-analyze', ['verify', UNIT], { encoding: 'utf8' });
    expect(result.error, 'systemd-analyze missing: scripts/install-system-deps.sh installs systemd').to.equal(undefined);
    expect(result.status, result.stderr).to.equal(0);
    expect(result.stderr.trim()).to.equal('');
  });

  it('scores as well hardened in systemd-analyze security (exposure <= 2.0)', () => {
    const output = execFileSync('systemd-analyze', ['security', '--offline=yes', '--no-pager', UNIT], { encoding: 'utf8' });
    const score = Number(/Overall exposure level for xks-proxy\.service: ([\d.]+)/.exec(output)?.[1]);
    expect(score).to.be.a('number').and.to.be.at.most(2.0);
  });

  it('reloads with SIGHUP, drains on SIGTERM through the primary, and gives the drain time', () => {
    expect(one('Service.ExecReload')).to.equal('/bin/kill -HUP $MAINPID');
    expect(one('Service.KillMode')).to.equal('mixed');
    expect(one('Service.KillSignal')).to.equal('SIGTERM');
    // server.shutdownTimeoutMs defaults to 20 s.
    expect(Number(one('Service.TimeoutStopSec'))).to.be.greaterThan(20);
    expect(one('Service.ExecStart')).to.match(/ serve --config \/etc\/xks-proxy\/config\.yaml$/);
  });

  it('leaves the example config\'s audit log folder writable under ProtectSystem=strict', () => {
    // The example's audit section is commented out: its file is what an operator uncomments.
    const folder = dirname(/^#\s+file: (\/var\/log\/\S+)$/m.exec(readFileSync(join(ROOT, 'config/xks-proxy.example.yaml'), 'utf8'))?.[1] ?? '');
    expect(folder).to.match(/^\/var\/log\//);
    expect(`/var/log/${one('Service.LogsDirectory')}`).to.equal(folder);
    expect(one('Service.LogsDirectoryMode')).to.equal('0750');
  });

  it('has the hardening the operator guide lists', () => {
    for (const [key, value] of Object.entries({
      'Service.NoNewPrivileges': 'yes',
      'Service.ProtectSystem': 'strict',
      'Service.ProtectHome': 'yes',
      'Service.PrivateTmp': 'yes',
      'Service.PrivateDevices': 'yes',
      'Service.CapabilityBoundingSet': '',
      'Service.RestrictSUIDSGID': 'yes',
      'Service.User': 'xks-proxy',
      // A core dump holds the PIN and the SigV4 secrets (docs/operations.md "systemd").
      'Service.LimitCORE': '0',
    })) {
      expect(one(key), key).to.equal(value);
    }
  });
});

describe('Dockerfile', () => {
  const text = readFileSync(join(ROOT, 'Dockerfile'), 'utf8');
  const stages = [...text.matchAll(/^FROM \S+ AS (\S+)$/gm)].map((m) => m[1]);

  it('builds in a separate stage and ends on the production runtime target', () => {
    expect(stages).to.deep.equal(['build', 'app', 'softhsm', 'runtime']);
    expect(text).to.match(/^FROM app AS runtime$/m);
  });

  it('runs as a non-root user, with a HEALTHCHECK on /ping', () => {
    const users = [...text.matchAll(/^USER (\S+)$/gm)].map((m) => m[1]);
    expect(users.at(-1)).to.equal('10001:10001');
    expect(text).to.match(/^HEALTHCHECK .*healthcheck\.js"\]$/m);
    expect(readFileSync(join(ROOT, 'deploy/container/healthcheck.js'), 'utf8')).to.include("'http://127.0.0.1:9090/ping'");
  });

  it('runs every entrypoint under tini, so node is not PID 1 (a PID 1 cannot end itself by SIGKILL)', () => {
    const entrypoints = [...text.matchAll(/^ENTRYPOINT (.*)$/gm)].map((m) => JSON.parse(m[1] as string) as string[]);
    expect(entrypoints).to.have.length(2);
    for (const entrypoint of entrypoints) expect(entrypoint.slice(0, 2)).to.deep.equal(['/usr/bin/tini', '--']);
  });
});
