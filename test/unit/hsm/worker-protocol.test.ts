/**
 * The PKCS#11 worker messages: a batch of jobs, and of replies, crosses as one ArrayBuffer whose
 * Buffers arrive as views (not copies), every field as it was sent; an HsmError crosses as data
 * with its kind and CKR name intact.
 */
import { expect } from 'chai';
import { HsmError } from '../../../src/hsm/errors';
import type { DecryptJob, EncryptJob, GcmJob, Pkcs11Job } from '../../../src/hsm/gcm-jobs';
import { decodeJobs, decodeReplies, encodeJobs, encodeReplies } from '../../../src/hsm/pkcs11-worker-codec';
import { errorReply, fromErrorReply, type JobReply } from '../../../src/hsm/pkcs11-worker-protocol';

/** What the thread boundary does to a message: a structured clone, the ArrayBuffer transferred. */
function crossed(data: ArrayBuffer): ArrayBuffer {
  return structuredClone(data, { transfer: [data] });
}

describe('hsm: PKCS#11 worker protocol', () => {
  const session = Buffer.from('0100000000000000', 'hex');
  const handle = Buffer.from('0200000000000000', 'hex');

  it('a batch of each kind of job arrives field for field, its Buffers views of the one message', () => {
    const ciphertext = Buffer.from('ciphertext');
    const tag = Buffer.alloc(16, 7);
    const encrypt: EncryptJob = { op: 'encrypt', session, key: { label: 'clé-ü', handle, recheck: true }, ivMode: 'hsm-appends', profileName: 'luna', plaintext: Buffer.from('plain'), aad: Buffer.alloc(0), verify: true, digestPrefix: Buffer.from('aad and metadata') };
    const decrypt: DecryptJob = { op: 'decrypt', session, key: { label: 'k', handle, recheck: false }, ciphertext, tag, iv: Buffer.alloc(12, 1), aad: Buffer.from('aad') };
    const attributes: GcmJob = { op: 'attributes', session, key: { label: 'other', recheck: true } };
    const plainEncrypt: EncryptJob = { ...encrypt, key: { label: 'p', recheck: false }, ivMode: 'caller', verify: false, digestPrefix: undefined };
    const other = Buffer.from('0300000000000000', 'hex');
    // The session pool's jobs between them: the PIN (any UTF-8) and the slot arrive as sent.
    const pool: Pkcs11Job[] = [
      { op: 'touch', session: other },
      { op: 'token', label: 'tøken' },
      { op: 'open', slot: Buffer.from('05', 'hex'), pin: 'p1n-ü' },
      { op: 'login', session: other, pin: '1234' },
      { op: 'close', session: other },
      { op: 'logout', session },
      { op: 'labels', session: other },
      { op: 'keyId', session: other, key: { label: 'k', handle, recheck: false } },
    ];
    const jobs = [encrypt, ...pool, decrypt, attributes, plainEncrypt];
    const data = encodeJobs(jobs);
    const arrived = decodeJobs(crossed(data));
    expect(arrived).to.deep.equal(jobs);
    const d = arrived[9] as DecryptJob;
    for (const name of ['session', 'ciphertext', 'tag', 'iv', 'aad'] as const) expect(Buffer.isBuffer(d[name]), name).to.equal(true);
    // Views, not copies: the tag right after the ciphertext, in the same memory.
    expect(d.ciphertext.buffer).to.equal(d.tag.buffer);
    expect(d.ciphertext.byteOffset + d.ciphertext.length).to.equal(d.tag.byteOffset);
    expect('handle' in (arrived[10] as GcmJob).key, 'an absent handle stays absent').to.equal(false);
  });

  it('replies arrive in order: encrypt, decrypt, attribute, keep-alive and session results, optional fields only when set, and errors', () => {
    const iv = Buffer.alloc(12, 9);
    const replies: JobReply[] = [
      { result: { value: { iv, ciphertext: Buffer.from('c'), tag: Buffer.alloc(16), verification: 'decrypted-back', randomSeconds: 0.000012, digest: Buffer.alloc(32, 3) }, key: { handle, checked: true, findSeconds: 0.5 } } },
      { result: { value: { iv, ciphertext: Buffer.alloc(0), tag: Buffer.alloc(16, 1) }, key: { handle, checked: false } } },
      { result: { value: Buffer.from('plaintext'), key: { handle, checked: false } } },
      { result: { value: { label: 'k', isAes: true, valueLen: 32, encrypt: true, decrypt: false }, key: { handle, checked: true } } },
      { error: { kind: 'AuthenticationFailed', message: 'C_Decrypt failed: CKR_ENCRYPTED_DATA_INVALID', returnCode: 'CKR_ENCRYPTED_DATA_INVALID' } },
      { error: { kind: 'KeyNotFound', message: 'no AES-256 secret key labelled "ü"' } },
      { result: true },
      { result: false },
      { error: { kind: 'Device', message: 'C_GenerateRandom failed: CKR_SESSION_HANDLE_INVALID', returnCode: 'CKR_SESSION_HANDLE_INVALID' } },
      { result: Buffer.from('0700000000000000', 'hex') },
      { error: { kind: 'Device', message: 'C_Login as user failed: CKR_PIN_INCORRECT', returnCode: 'CKR_PIN_INCORRECT' } },
      { result: true },
      { result: true },
      { result: true },
      { result: ['k', 'ü-key'] },
      { result: [] },
      { result: { value: Buffer.from('creation record'), key: { handle, checked: true } } },
      { result: { slot: Buffer.from('05', 'hex'), description: { label: 'tøken', manufacturerId: 'SoftHSM project', model: 'SoftHSM v2', serialNumber: 'a1', hardwareVersion: '2.6', firmwareVersion: '2.6', libraryDescription: 'x', libraryVersion: '2.6' } } },
    ];
    const ops = ['encrypt', 'encrypt', 'decrypt', 'attributes', 'decrypt', 'encrypt', 'touch', 'touch', 'touch', 'open', 'open', 'login', 'close', 'logout', 'labels', 'labels', 'keyId', 'token'] as const;
    expect(decodeReplies(ops, crossed(encodeReplies(ops, replies)))).to.deep.equal(replies);
  });

  it('a reply without a result or an error arrives as an Internal error, never as a success', () => {
    const [reply] = decodeReplies(['encrypt'], encodeReplies(['encrypt'], [{}]));
    expect(reply?.error?.kind).to.equal('Internal');
    expect(reply?.result).to.equal(undefined);
  });

  it("key administration's calls and answers arrive with every Buffer as bytes, nested or not, and null as null", () => {
    const material = Buffer.alloc(32, 9);
    const template = { label: 'k', value: material, token: true, private: true, encrypt: true, decrypt: true, wrap: false, unwrap: false, sign: false, verify: false, derive: false, extractable: false, sensitive: true };
    const jobs: Pkcs11Job[] = [
      { op: 'admin', session, call: { name: 'createAesKey', template } },
      { op: 'admin', session, call: { name: 'aes256Keys' } },
      { op: 'admin', session, call: { name: 'unwrapAesKey', mechanism: 'aes-key-wrap-pad', kwp: 'CKM_AES_KEY_WRAP_KWP', unwrappingKey: handle, wrapped: Buffer.from('wrapped'), template: { ...template, value: undefined } } },
    ];
    // Buffer.toJSON would copy the material into an array of numbers that no one can zero.
    const toJSON = Buffer.prototype.toJSON;
    let copies = 0;
    Buffer.prototype.toJSON = function (this: Buffer) {
      copies += 1;
      return toJSON.call(this);
    };
    let data: ArrayBuffer;
    try {
      data = encodeJobs(jobs);
    } finally {
      Buffer.prototype.toJSON = toJSON;
    }
    expect(copies, 'Buffer.toJSON calls while encoding').to.equal(0);
    expect(Buffer.from(data).includes(material), 'the material is in the message as bytes').to.equal(true);
    expect(Buffer.from(data).includes(Buffer.from(material.toString('base64'))), 'and not as text').to.equal(false);
    const [create, search, unwrap] = decodeJobs(crossed(data));
    expect(create).to.deep.equal(jobs[0]);
    expect(Buffer.isBuffer((create as { call: { template: { value: Buffer } } }).call.template.value)).to.equal(true);
    expect(search).to.deep.equal(jobs[1]);
    expect((unwrap as { call: { template: object } }).call.template).not.to.have.property('value');
    expect((unwrap as { call: { unwrappingKey: Buffer } }).call.unwrappingKey.equals(handle)).to.equal(true);

    const found = [{ handle, info: { label: 'k', isAes: true, valueLen: 32 } }];
    const ops = ['admin', 'admin', 'admin'] as const;
    const replies = decodeReplies(ops, crossed(encodeReplies(ops, [{ result: found }, { result: null }, { result: handle }])));
    expect(replies).to.deep.equal([{ result: found }, { result: null }, { result: handle }]);
  });

  it('an HsmError crosses as data with its kind, message and CKR name', () => {
    const error = fromErrorReply(structuredClone(errorReply(new HsmError('Device', 'C_EncryptInit failed: CKR_DEVICE_ERROR', 'CKR_DEVICE_ERROR'))));
    expect(error).to.be.instanceOf(HsmError);
    expect(error).to.include({ kind: 'Device', message: 'C_EncryptInit failed: CKR_DEVICE_ERROR', returnCode: 'CKR_DEVICE_ERROR' });
    expect(fromErrorReply(errorReply(new HsmError('KeyNotFound', 'no key'))).returnCode).to.equal(undefined);
  });
});
