/**
 * The demo's and the tests' SoftHSM token is created with its PINs on no command line: they went
 * to softhsm2-util as --so-pin/--pin, where ps, /proc/<pid>/cmdline and auditd's execve records
 * showed them to every local user. Every process ensureSoftHsmToken starts is recorded here, and
 * the token it made is checked for real: both PINs log in, a wrong one does not.
 */
import { expect } from 'chai';
import childProcess = require('node:child_process');
import { randomBytes } from 'node:crypto';
import { ensureSoftHsmToken, SOFTHSM_MODULE_PATH } from '../../src/hsm/softhsm';
import { tempDir } from '../support/temp-dir';

type Spawned = { file: string; args: readonly string[]; env: Record<string, string | undefined> };

/** Runs `work` with every child_process entry point recorded (then calls through). */
function recordingSpawns<T>(work: () => T): { result: T; spawned: Spawned[] } {
  const spawned: Spawned[] = [];
  const cp = childProcess as unknown as Record<string, (...args: unknown[]) => unknown>;
  const names = ['execFileSync', 'execSync', 'spawnSync', 'spawn', 'execFile', 'exec', 'fork'];
  const originals = names.map((name) => [name, cp[name]!] as const);
  for (const [name, original] of originals) {
    cp[name] = (...args: unknown[]) => {
      const [file, second, third] = args as [string, unknown, unknown];
      const argList = Array.isArray(second) ? (second as string[]) : [];
      const options = (Array.isArray(second) ? third : second) as { env?: Record<string, string | undefined> } | undefined;
      spawned.push({ file, args: argList, env: options?.env ?? process.env });
      return original(...args);
    };
  }
  const processConf = process.env.SOFTHSM2_CONF;
  try {
    return { result: work(), spawned };
  } finally {
    for (const [name, original] of originals) cp[name] = original;
    // ensureSoftHsmToken points this process at the new token folder; the other tests need the fixture's.
    if (processConf === undefined) delete process.env.SOFTHSM2_CONF;
    else process.env.SOFTHSM2_CONF = processConf;
  }
}

/** pkcs11-tool logging in to the token, listing objects unless `args` ask otherwise (the test's own throwaway PINs on its command line). */
function logsIn(confPath: string, label: string, args: string[]): boolean {
  const action = args.includes('--init-pin') ? [] : ['--list-objects'];
  const run = childProcess.spawnSync('pkcs11-tool', ['--module', SOFTHSM_MODULE_PATH, '--token-label', label, '--login', ...args, ...action], {
    env: { ...process.env, SOFTHSM2_CONF: confPath },
    encoding: 'utf8',
  });
  return run.status === 0;
}

describe('SoftHSM token provisioning keeps the PINs off command lines', function () {
  this.timeout(30_000);

  it('creates the token with no PIN in any started process\'s arguments or environment, and both PINs work', () => {
    const dir = tempDir('xks-softhsm-token-');
    const soPin = randomBytes(8).toString('hex');
    const userPin = randomBytes(8).toString('hex');
    const { result: token, spawned } = recordingSpawns(() => ensureSoftHsmToken(dir, 'pins-off-argv', soPin, userPin));
    expect(spawned.length).to.be.at.least(1);
    for (const child of spawned) {
      const visible = JSON.stringify([child.file, ...child.args, ...Object.values(child.env)]);
      expect(visible).not.to.include(soPin);
      expect(visible).not.to.include(userPin);
    }
    expect(logsIn(token.confPath, 'pins-off-argv', ['--pin', userPin])).to.equal(true);
    expect(logsIn(token.confPath, 'pins-off-argv', ['--pin', `${userPin}0`])).to.equal(false);
    // The SO PIN: only the SO can set a new user PIN (a wrong SO PIN cannot).
    const newUserPin = randomBytes(8).toString('hex');
    expect(logsIn(token.confPath, 'pins-off-argv', ['--login-type', 'so', '--so-pin', `${soPin}0`, '--init-pin', '--new-pin', newUserPin])).to.equal(false);
    expect(logsIn(token.confPath, 'pins-off-argv', ['--login-type', 'so', '--so-pin', soPin, '--init-pin', '--new-pin', newUserPin])).to.equal(true);
    expect(logsIn(token.confPath, 'pins-off-argv', ['--pin', newUserPin])).to.equal(true);
  });

  it('leaves a token that exists alone (its PINs stay), and adds another label next to it', () => {
    const dir = tempDir('xks-softhsm-token-');
    const { result: first } = recordingSpawns(() => ensureSoftHsmToken(dir, 'kept', '11111111', '22222222'));
    recordingSpawns(() => ensureSoftHsmToken(dir, 'kept', '33333333', '44444444'));
    expect(logsIn(first.confPath, 'kept', ['--pin', '22222222'])).to.equal(true);
    expect(logsIn(first.confPath, 'kept', ['--pin', '44444444'])).to.equal(false);
    recordingSpawns(() => ensureSoftHsmToken(dir, 'second', '55555555', '66666666'));
    expect(logsIn(first.confPath, 'second', ['--pin', '66666666'])).to.equal(true);
    const slots = childProcess.execFileSync('softhsm2-util', ['--show-slots'], { env: { ...process.env, SOFTHSM2_CONF: first.confPath }, encoding: 'utf8' });
    expect(slots.match(/Label:\s+kept\s*$/gm)).to.have.length(1);
  });
});
