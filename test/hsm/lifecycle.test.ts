import { expect } from 'chai';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Hsm, HsmError, HsmErrorKind, HsmObserver, createAesKey, ensureSoftHsmToken } from '../../src/hsm';
import { loadedModules } from '../../src/hsm/pkcs11/module';
import { softHsmFixture, uniqueLabel } from '../support/softhsm-fixture';
import { describeEachImplementation, openTestHsm } from './helpers';
import { tempDir } from '../support/temp-dir';

function moduleRefs(): number {
  return loadedModules().reduce((sum, entry) => sum + entry.refs, 0);
}

describeEachImplementation('hsm: lifecycle', ({ implementation, openTestHsm, hsmOptions, expectHsmError }) => {
  const label = uniqueLabel('life');

  before(async () => {
    const hsm = await openTestHsm();
    try {
      await createAesKey(hsm, { label });
    } finally {
      await hsm.close();
    }
  });

  it('reports token information', async () => {
    const hsm = await openTestHsm();
    try {
      const info = hsm.tokenInfo();
      expect(hsm.id).to.equal('hsm-test');
      expect(info.label).to.equal(implementation.token().label);
      expect(info.model).to.equal(implementation.identity.model);
      expect(info.manufacturerId).to.equal(implementation.identity.manufacturerId);
      expect(info.serialNumber).to.match(implementation.identity.serialNumber);
      expect(info.hardwareVersion).to.match(/^\d+\.\d+$/);
      expect(info.firmwareVersion).to.match(/^\d+\.\d+$/);
      expect(info.libraryDescription).to.equal(implementation.identity.libraryDescription);
      expect(info.libraryVersion).to.match(/^\d+\.\d+$/);
    } finally {
      await hsm.close();
    }
  });

  it('finds the token by serial as well as by label, where serials are unique', async () => {
    const byLabel = await openTestHsm();
    const serial = byLabel.tokenInfo().serialNumber;
    await byLabel.close();
    if (!implementation.uniqueSerial) {
      const error = await expectHsmError(openTestHsm({ tokenLabel: undefined, tokenSerial: serial }), 'Internal');
      expect(error.message).to.match(/^\d+ tokens match serial/);
      return;
    }
    const bySerial = await openTestHsm({ tokenLabel: undefined, tokenSerial: serial });
    try {
      expect(bySerial.tokenInfo().label).to.equal(implementation.token().label);
      expect((await bySerial.encrypt(label, Buffer.from('x'), Buffer.alloc(0))).iv).to.have.length(12);
    } finally {
      await bySerial.close();
    }
  });

  it('an unknown token is a Device error', async () => {
    const refs = moduleRefs();
    await expectHsmError(openTestHsm({ tokenLabel: 'no-such-token' }), 'Device');
    expect(moduleRefs()).to.equal(refs);
  });

  it('a second, different set of library parameters for a loaded library is refused, not ignored', async () => {
    const first = await openTestHsm();
    const refs = moduleRefs();
    try {
      const other = `${implementation.token().libraryParameters ?? ''} configdir='sql:/nonexistent'`;
      const error = await expectHsmError(openTestHsm({ libraryParameters: other }), 'Internal');
      expect(error.message).to.match(/is already loaded with other library parameters$/);
      expect(moduleRefs()).to.equal(refs);
    } finally {
      await first.close();
    }
  });

  it('invalid options are refused', async () => {
    await expectHsmError(openTestHsm({ sessionPoolSize: 0 }), 'Internal');
    await expectHsmError(openTestHsm({ tokenLabel: undefined }), 'Internal');
  });

  it('two Hsm instances share one loaded module; closing one leaves the other working', async () => {
    const refs = moduleRefs();
    const a = await openTestHsm({ id: 'hsm-a' });
    const b = await openTestHsm({ id: 'hsm-b' });
    expect(moduleRefs()).to.equal(refs + 2);
    expect(loadedModules().filter((m) => m.refs > 0)).to.have.length(1);
    await a.encrypt(label, Buffer.from('a'), Buffer.alloc(0));
    await a.close();
    expect(moduleRefs()).to.equal(refs + 1);
    // b's sessions are still logged in: a did not log the shared login out.
    const out = await b.encrypt(label, Buffer.from('b'), Buffer.alloc(0));
    expect((await b.decrypt(label, out.ciphertext, out.iv, out.tag, Buffer.alloc(0))).toString()).to.equal('b');
    await b.close();
    expect(moduleRefs()).to.equal(refs);
    // Finalized and loaded again from scratch.
    const c = await openTestHsm({ id: 'hsm-c' });
    try {
      expect((await c.encrypt(label, Buffer.from('c'), Buffer.alloc(0))).tag).to.have.length(16);
    } finally {
      await c.close();
    }
  });

  it('a wrong PIN rejects open() with a message that does not contain the PIN', async () => {
    const refs = moduleRefs();
    const wrongPin = 'Wr0ng-Pin-7731';
    let caught: unknown;
    try {
      await Hsm.open(hsmOptions({ pin: wrongPin }));
    } catch (error) {
      caught = error;
    }
    expect(caught).to.be.instanceOf(HsmError);
    const error = caught as HsmError;
    expect(error.kind).to.equal('Device');
    expect(error.returnCode).to.equal('CKR_PIN_INCORRECT');
    for (const text of [error.message, String(error), error.stack ?? '', JSON.stringify(error)]) {
      expect(text).not.to.include(wrongPin);
      expect(text).not.to.include(implementation.token().pin);
    }
    expect(moduleRefs()).to.equal(refs);
  });

  it('reports calls and session counts to the observer', async () => {
    const calls: Array<{ operation: string; outcome: 'ok' | HsmErrorKind; seconds: number }> = [];
    const sessions: Array<[number, number]> = [];
    const observer: HsmObserver = {
      hsmCall: (hsmId, operation, seconds, outcome) => {
        expect(hsmId).to.equal('hsm-observed');
        calls.push({ operation, outcome, seconds });
      },
      sessions: (_id, inUse, idle) => sessions.push([inUse, idle]),
    };
    const hsm = await Hsm.open(hsmOptions({ id: 'hsm-observed', sessionPoolSize: 2 }), observer);
    try {
      const out = await hsm.encrypt(label, Buffer.from('x'), Buffer.alloc(0));
      await hsm.decrypt(label, out.ciphertext, out.iv, out.tag, Buffer.alloc(0));
      await hsm.decrypt(label, out.ciphertext, out.iv, Buffer.alloc(16), Buffer.alloc(0)).catch(() => undefined);
      await hsm.keyAttributes(label);
      await hsm.encrypt(uniqueLabel('missing'), Buffer.from('x'), Buffer.alloc(0)).catch(() => undefined);
      await hsm.listAesKeyLabels();
    } finally {
      await hsm.close();
    }
    const summary = calls.map((c) => `${c.operation}:${c.outcome}`);
    // The job resolves the key before it draws the IV: a missing key costs no RNG call.
    expect(summary).to.deep.equal([
      'find:ok',
      'random:ok',
      'encrypt:ok',
      'decrypt:ok',
      'decrypt:AuthenticationFailed',
      'attributes:ok',
      'find:KeyNotFound',
      'encrypt:KeyNotFound',
      'find:ok',
    ]);
    for (const c of calls) expect(c.seconds).to.be.at.least(0);
    expect(sessions).to.deep.include([1, 1]);
    expect(sessions[sessions.length - 1]).to.deep.equal([0, 0]);
  });

  it('a throwing observer does not break operations', async () => {
    const observer: HsmObserver = {
      hsmCall: () => {
        throw new Error('metrics down');
      },
      sessions: () => {
        throw new Error('metrics down');
      },
    };
    const hsm = await Hsm.open(hsmOptions(), observer);
    try {
      expect((await hsm.encrypt(label, Buffer.from('x'), Buffer.alloc(0))).tag).to.have.length(16);
    } finally {
      await hsm.close();
    }
  });
});

describe('hsm: SoftHSM provisioning', () => {
  it('ensureSoftHsmToken re-run reuses the existing token and its keys', async () => {
    const fixture = softHsmFixture();
    const hsm = await openTestHsm();
    const serial = hsm.tokenInfo().serialNumber;
    const label = uniqueLabel('kept');
    await createAesKey(hsm, { label });
    await hsm.close();

    const token = ensureSoftHsmToken(fixture.dir, fixture.label, fixture.soPin, fixture.pin);
    expect(token).to.deep.equal({ confPath: fixture.confPath, tokenDir: path.join(fixture.dir, 'tokens'), label: fixture.label });
    expect(process.env.SOFTHSM2_CONF).to.equal(fixture.confPath);
    const slots = execFileSync('softhsm2-util', ['--show-slots'], { env: { ...process.env, SOFTHSM2_CONF: fixture.confPath }, encoding: 'utf8' });
    // The fixture's three tokens (main, peer and third), and no fourth one from the re-run.
    expect(slots.match(/Initialized:\s+yes/g)).to.have.length(3);

    const again = await openTestHsm();
    try {
      expect(again.tokenInfo().serialNumber).to.equal(serial);
      expect(await again.listAesKeyLabels()).to.include(label);
    } finally {
      await again.close();
    }
  });

  it('writes the documented configuration', () => {
    const text = fs.readFileSync(softHsmFixture().confPath, 'utf8');
    expect(text).to.include(`directories.tokendir = ${path.join(softHsmFixture().dir, 'tokens')}`);
    expect(text).to.include('objectstore.backend = file');
    expect(text).to.include('log.level = ERROR');
  });

  it('a failed token init does not echo the PINs', () => {
    const dir = tempDir('xks-softhsm-bad-');
    const conf = process.env.SOFTHSM2_CONF;
    try {
      // SoftHSM refuses PINs shorter than 4 characters.
      expect(() => ensureSoftHsmToken(dir, 'bad', 'Zq9', 'Xk7')).to.throw(HsmError).that.satisfies((e: HsmError) => {
        return !e.message.includes('Zq9') && !e.message.includes('Xk7') && e.kind === 'Device';
      });
      expect(process.env.SOFTHSM2_CONF).to.equal(conf);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
