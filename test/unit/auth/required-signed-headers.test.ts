/**
 * SigV4Verifier's requiredSignedHeaders: headers a protocol takes meaning from (the KMS API's
 * x-amz-target) must be covered by the signature, as host and x-amz-date are. Signed by
 * @smithy/signature-v4, verified by the real verifier.
 */
import { expect } from 'chai';
import { SigV4Verifier } from '../../../src/auth/sigv4';
import { HOST, lookup, NOW, SERVICE, setHeader, signWithSmithy } from '../sigv4/helpers';

const headers = { host: HOST, 'content-type': 'application/x-amz-json-1.1', 'x-amz-target': 'TrentService.GenerateDataKeyWithoutPlaintext' };
const targetRequired = new SigV4Verifier({ service: SERVICE, now: () => NOW, requiredSignedHeaders: ['x-amz-target'] });

describe('SigV4Verifier requiredSignedHeaders (unit)', () => {
  it('refuses a signature that leaves a required header out: MissingSignedHeader, naming it', async () => {
    const unsignedTarget = await signWithSmithy({ headers, unsignableHeaders: ['x-amz-target'] });
    const result = targetRequired.verify(unsignedTarget, lookup);
    expect(result).to.deep.include({ ok: false, reason: 'MissingSignedHeader', detail: 'SignedHeaders does not include x-amz-target' });
    // Nor does swapping the unsigned value help.
    expect(targetRequired.verify(setHeader(unsignedTarget, 'x-amz-target', 'TrentService.GenerateDataKey'), lookup)).to.include({ ok: false, reason: 'MissingSignedHeader' });
  });

  it('accepts the header signed, and then a changed value no longer verifies', async () => {
    const signed = await signWithSmithy({ headers });
    expect(targetRequired.verify(signed, lookup)).to.include({ ok: true });
    expect(targetRequired.verify(setHeader(signed, 'x-amz-target', 'TrentService.GenerateDataKey'), lookup)).to.include({ ok: false, reason: 'SignatureMismatch' });
  });

  it('without the option only host and x-amz-date are required (the XKS API: its operation is in the signed path)', async () => {
    const unsignedTarget = await signWithSmithy({ headers, unsignableHeaders: ['x-amz-target'] });
    expect(new SigV4Verifier({ service: SERVICE, now: () => NOW }).verify(unsignedTarget, lookup)).to.include({ ok: true });
  });

  it('takes lower-case header names only', () => {
    expect(() => new SigV4Verifier({ service: SERVICE, requiredSignedHeaders: ['X-Amz-Target'] })).to.throw(/lower-case/);
    expect(() => new SigV4Verifier({ service: SERVICE, requiredSignedHeaders: [''] })).to.throw(/lower-case/);
  });
});
