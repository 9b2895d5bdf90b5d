/**
 * The PKCS#11 worker messages: a batch's Buffers travel in one ArrayBuffer (viewed, not copied, on
 * arrival) and an HsmError crosses as data with its kind and CKR name intact.
 */
import { expect } from 'chai';
import { HsmError } from '../../../src/hsm/errors';
import { errorReply, fromErrorReply, packBuffers, unpackBuffers } from '../../../src/hsm/pkcs11-worker-protocol';

describe('hsm: PKCS#11 worker protocol', () => {
  const session = Buffer.from('0100000000000000', 'hex');
  const handle = Buffer.from('0200000000000000', 'hex');

  it('packs every Buffer of a batch into one ArrayBuffer and views them again, other fields unchanged', () => {
    const ciphertext = Buffer.from('ciphertext');
    const tag = Buffer.alloc(16, 7);
    const jobs = [
      { op: 'decrypt', session, key: { label: 'k', handle, recheck: false }, ciphertext, tag, iv: Buffer.alloc(12, 1), aad: Buffer.alloc(0) },
      { op: 'attributes', session, key: { label: 'other', recheck: true } },
    ];
    const packed = packBuffers(jobs);
    expect(packed.data.byteLength).to.equal(8 + 8 + ciphertext.length + 16 + 12 + 8);
    // What crosses the thread boundary is a structured clone: the markers must survive it.
    const [decrypt, attributes] = unpackBuffers(structuredClone(packed, { transfer: [packed.data] })) as Array<Record<string, unknown>>;
    expect(decrypt).to.deep.include({ op: 'decrypt' });
    for (const name of ['session', 'ciphertext', 'tag', 'iv', 'aad'] as const) expect(Buffer.isBuffer(decrypt![name]), name).to.equal(true);
    expect((decrypt!.ciphertext as Buffer).equals(ciphertext)).to.equal(true);
    expect((decrypt!.tag as Buffer).equals(tag)).to.equal(true);
    expect((decrypt!.key as { handle: Buffer }).handle.equals(handle)).to.equal(true);
    expect(decrypt!.key).to.deep.include({ label: 'k', recheck: false });
    // Packed in order: the tag right after the ciphertext, one view of the same bytes.
    const c = decrypt!.ciphertext as Buffer;
    const t = decrypt!.tag as Buffer;
    expect(c.buffer).to.equal(t.buffer);
    expect(c.byteOffset + c.length).to.equal(t.byteOffset);
    expect(attributes).to.deep.include({ op: 'attributes', key: { label: 'other', recheck: true } });
    expect(Buffer.isBuffer(attributes!.session)).to.equal(true);
  });

  it("restores a result's Buffers three levels down (reply.result.value.iv), and leaves the packed source untouched", () => {
    const iv = Buffer.alloc(12, 9);
    const replies = [{ result: { value: { iv, ciphertext: Buffer.from('c'), tag: Buffer.alloc(16), verification: 'decrypted-back' }, key: { handle, checked: true } } }, { error: { kind: 'KeyNotFound', message: 'no key' } }];
    const packed = packBuffers(replies);
    expect(replies[0]!.result!.value.iv).to.equal(iv); // the caller's objects are not rewritten
    const [ok, failed] = unpackBuffers(structuredClone(packed)) as Array<{ result?: { value: { iv: Buffer; verification: string }; key: { handle: Buffer } }; error?: unknown }>;
    expect(ok!.result!.value.iv.equals(iv)).to.equal(true);
    expect(ok!.result!.value.verification).to.equal('decrypted-back');
    expect(ok!.result!.key.handle.equals(handle)).to.equal(true);
    expect(failed!.error).to.deep.equal({ kind: 'KeyNotFound', message: 'no key' });
  });

  it('an HsmError crosses as data with its kind, message and CKR name', () => {
    const error = fromErrorReply(structuredClone(errorReply(new HsmError('Device', 'C_EncryptInit failed: CKR_DEVICE_ERROR', 'CKR_DEVICE_ERROR'))));
    expect(error).to.be.instanceOf(HsmError);
    expect(error).to.include({ kind: 'Device', message: 'C_EncryptInit failed: CKR_DEVICE_ERROR', returnCode: 'CKR_DEVICE_ERROR' });
    expect(fromErrorReply(errorReply(new HsmError('KeyNotFound', 'no key'))).returnCode).to.equal(undefined);
  });
});
