// Property-based fuzzing (fast-check, bounded runs) of the SigV4 verifier: it never throws, never
// accepts garbage, accepts every correctly signed request, and rejects mutated Authorization headers
// unless the mutation left the credential, signed headers and signature intact.
import { expect } from 'chai';
import fc from 'fast-check';
import { HOST, lookup, signWithSmithy, verifier, getHeader, setHeader } from '../sigv4/helpers';

const RUNS = { numRuns: 200, ...(process.env.FC_SEED ? { seed: Number(process.env.FC_SEED) } : {}) };
const v = verifier();

describe('fuzz: SigV4 verifier', () => {
  it('arbitrary headers and bodies never throw and never verify', () => {
    const header = fc.tuple(fc.constantFrom('authorization', 'Authorization', 'x-amz-date', 'host', 'x-amz-content-sha256', 'content-type', 'x-other'), fc.string({ maxLength: 200 }));
    fc.assert(
      fc.property(fc.array(header, { maxLength: 8 }), fc.uint8Array({ maxLength: 64 }), fc.string({ maxLength: 80 }), (headers, body, url) => {
        const result = v.verify({ method: 'POST', url, rawHeaders: headers.flat(), body: Buffer.from(body) }, lookup);
        expect(result.ok).to.equal(false);
      }),
      RUNS,
    );
  });

  it('Authorization values built from plausible fragments never throw and never verify', async () => {
    const fragment = fc.constantFrom('AWS4-HMAC-SHA256', ' ', ',', ', ', 'Credential=', 'SignedHeaders=', 'Signature=', 'AKIAI2SFODNN7EXAMPLE', '/', '20241009', 'us-east-1', 'kms-xks-proxy', 'aws4_request', 'host;x-amz-date', '=', '0'.repeat(64), 'é', '\u0000');
    const signed = await signWithSmithy();
    fc.assert(
      fc.property(fc.array(fragment, { maxLength: 20 }), (parts) => {
        const result = v.verify(setHeader(signed, 'authorization', parts.join('')), lookup);
        expect(result.ok).to.equal(false);
      }),
      RUNS,
    );
  });

  it('every correctly signed request verifies; a one-character edit of its Authorization is refused unless harmless', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.uint8Array({ maxLength: 128 }),
        fc.constantFrom('us-east-1', 'eu-west-1', 'ap-southeast-2'),
        fc.nat(),
        fc.integer({ min: 32, max: 126 }),
        fc.constantFrom('insert', 'delete', 'replace'),
        async (body, region, position, code, edit) => {
          const signed = await signWithSmithy({ body: Buffer.from(body), region, headers: { host: HOST, 'content-type': 'application/json' } });
          expect(v.verify(signed, lookup)).to.deep.include({ ok: true, region });
          const original = getHeader(signed, 'authorization') as string;
          const at = position % (original.length + 1);
          const char = String.fromCharCode(code);
          const mutated =
            edit === 'insert' ? original.slice(0, at) + char + original.slice(at)
            : edit === 'delete' ? original.slice(0, at) + original.slice(at + 1)
            : original.slice(0, at) + char + original.slice(at + 1);
          const result = v.verify(setHeader(signed, 'authorization', mutated), lookup);
          if (result.ok) {
            // Accepted only if every token that matters survived (e.g. an extra space after a comma).
            for (const token of original.split(/[ ,]+/)) expect(mutated).to.include(token);
          }
        },
      ),
      RUNS,
    );
  });
});
