import { expect } from 'chai';
import * as crypto from 'node:crypto';
import { Hsm, HsmError, HsmErrorKind, HsmOptions, createAesKey } from '../../src/hsm';
import { hsmInternals } from '../../src/hsm/hsm';
import type { AesKeyTemplate } from '../../src/hsm/pkcs11/templates';
import { PKCS11_IMPLEMENTATIONS, Pkcs11Implementation, SOFTHSM, implementationOptions } from '../support/pkcs11-implementations';

/** The helpers below, bound to one implementation's test token (SoftHSM when not given). */
export interface TestHsms {
  implementation: Pkcs11Implementation;
  hsmOptions(overrides?: Partial<HsmOptions>): HsmOptions;
  openTestHsm(overrides?: Partial<HsmOptions>): Promise<Hsm>;
  /** Asserts the promise rejects with an HsmError of this kind whose message does not leak the PIN. */
  expectHsmError(promise: Promise<unknown>, kind: HsmErrorKind): Promise<HsmError>;
}

export function testHsms(implementation: Pkcs11Implementation = SOFTHSM): TestHsms {
  const hsmOptionsFor = (overrides: Partial<HsmOptions> = {}): HsmOptions => implementationOptions(implementation, overrides);
  return {
    implementation,
    hsmOptions: hsmOptionsFor,
    openTestHsm: (overrides = {}) => Hsm.open(hsmOptionsFor(overrides)),
    expectHsmError: (promise, kind) => expectHsmErrorWithout(promise, kind, implementation.token().pin),
  };
}

export const { hsmOptions, openTestHsm, expectHsmError } = testHsms(SOFTHSM);

/** One describe per real PKCS#11 implementation, each given the helpers bound to its token. */
export function describeEachImplementation(title: string, body: (hsms: TestHsms) => void): void {
  for (const implementation of PKCS11_IMPLEMENTATIONS) {
    describe(`${title} (${implementation.name})`, () => body(testHsms(implementation)));
  }
}

async function expectHsmErrorWithout(promise: Promise<unknown>, kind: HsmErrorKind, pin: string): Promise<HsmError> {
  let caught: unknown;
  try {
    await promise;
  } catch (error) {
    caught = error;
  }
  expect(caught, `expected an HsmError of kind ${kind}`).to.be.instanceOf(HsmError);
  const error = caught as HsmError;
  expect(error.kind, error.message).to.equal(kind);
  expect(error.message).not.to.include(pin);
  return error;
}

/** Creates an AES key of known material on the SoftHSM test token, through a connection of its own. */
export async function createKnownAesKey(label: string, value: Buffer): Promise<void> {
  const hsm = await openTestHsm();
  try {
    await createAesKey(hsm, { label, value });
  } finally {
    await hsm.close();
  }
}

/** Creates an AES key straight through the PKCS#11 module, bypassing createAesKey's checks and the handle cache. */
export async function createRawAesKey(hsm: Hsm, label: string, value: Buffer): Promise<void> {
  const { module, withSession } = hsmInternals(hsm);
  const template: AesKeyTemplate = {
    label,
    value,
    token: true,
    private: true,
    encrypt: true,
    decrypt: true,
    wrap: false,
    unwrap: false,
    sign: false,
    verify: false,
    derive: false,
    extractable: true,
    sensitive: false,
  };
  await withSession((session) => {
    module.createAesKey(session, template);
  });
}

/** Destroys every secret key with this label, behind the handle cache's back. */
export async function destroyRawKeys(hsm: Hsm, label: string): Promise<number> {
  const { module, withSession } = hsmInternals(hsm);
  return withSession((session) => {
    const handles = module.findSecretKeys(session, { label });
    for (const handle of handles) module.destroyObject(session, handle);
    return handles.length;
  });
}

export function nodeEncrypt(key: Buffer, iv: Buffer, plaintext: Buffer, aad: Buffer): { ciphertext: Buffer; tag: Buffer } {
  const cipher = crypto.createCipheriv('aes-256-gcm', key, iv);
  cipher.setAAD(aad);
  const ciphertext = Buffer.concat([cipher.update(plaintext), cipher.final()]);
  return { ciphertext, tag: cipher.getAuthTag() };
}

export function nodeDecrypt(key: Buffer, iv: Buffer, ciphertext: Buffer, tag: Buffer, aad: Buffer): Buffer {
  const decipher = crypto.createDecipheriv('aes-256-gcm', key, iv);
  decipher.setAAD(aad);
  decipher.setAuthTag(tag);
  return Buffer.concat([decipher.update(ciphertext), decipher.final()]);
}
