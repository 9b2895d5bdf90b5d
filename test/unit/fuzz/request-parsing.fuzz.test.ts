// Property-based fuzzing (fast-check, bounded runs) of the request parser and validators.
// A failing run prints its seed and path; replay with FC_SEED=<seed>.
import { expect } from 'chai';
import fc from 'fast-check';
import { isStrictBase64 } from '../../../src/api/base64';
import { XksError } from '../../../src/api/errors';
import { compileRequestValidators } from '../../../src/api/schemas';
import { parseStrictJson } from '../../../src/pipeline/strict-json';

const RUNS = { numRuns: 300, ...(process.env.FC_SEED ? { seed: Number(process.env.FC_SEED) } : {}) };
const validators = compileRequestValidators({ maxPlaintextBytes: 8192, maxAadBytes: 8192 });
const CLIENT_ERRORS = ['ValidationException', 'UnsupportedOperationException'];

/** A validator either accepts or throws a spec client error; nothing else. */
function outcome(run: () => unknown): 'accepted' | string {
  try {
    run();
    return 'accepted';
  } catch (err) {
    expect(err).to.be.instanceOf(XksError);
    expect(CLIENT_ERRORS).to.include((err as XksError).errorName);
    expect((err as XksError).message).to.match(/^[\x20-\x7e]{1,511}$/);
    return (err as XksError).errorName;
  }
}

const metadata = fc.record({
  awsPrincipalArn: fc.string({ minLength: 1, maxLength: 64 }),
  kmsOperation: fc.string({ maxLength: 32 }),
  kmsRequestId: fc.string({ maxLength: 40 }),
  kmsKeyArn: fc.string({ minLength: 1, maxLength: 64 }),
});
const bytes = (max: number) => fc.uint8Array({ maxLength: max }).map((a) => Buffer.from(a).toString('base64'));
const encryptRequest = fc.record(
  { requestMetadata: metadata, plaintext: bytes(8192), encryptionAlgorithm: fc.constant('AES_GCM'), additionalAuthenticatedData: bytes(512) },
  { requiredKeys: ['requestMetadata', 'plaintext', 'encryptionAlgorithm'] },
);

describe('fuzz: request parsing and validation', () => {
  it('any JSON value: each validator accepts or answers a spec client error', () => {
    fc.assert(
      fc.property(fc.jsonValue(), (value) => {
        for (const validate of [validators.GetKeyMetadata, validators.Encrypt, validators.Decrypt]) outcome(() => validate(value));
      }),
      RUNS,
    );
  });

  it('every well-formed Encrypt request is accepted, whatever extra fields it carries', () => {
    fc.assert(
      fc.property(encryptRequest, fc.dictionary(fc.string({ minLength: 1, maxLength: 8 }).filter((k) => !['requestMetadata', 'plaintext', 'encryptionAlgorithm', 'additionalAuthenticatedData', 'ciphertextDataIntegrityValueAlgorithm', '__proto__'].includes(k)), fc.jsonValue(), { maxKeys: 3 }), (request, extra) => {
        expect(outcome(() => validators.Encrypt({ ...extra, ...request }))).to.equal('accepted');
      }),
      RUNS,
    );
  });

  it('a plaintext that is not strict standard Base64 is refused', () => {
    fc.assert(
      fc.property(encryptRequest, fc.string({ maxLength: 64 }), (request, plaintext) => {
        fc.pre(!isStrictBase64(plaintext));
        expect(outcome(() => validators.Encrypt({ ...request, plaintext }))).to.equal('ValidationException');
      }),
      RUNS,
    );
  });

  it('one field of a valid request replaced by any JSON value: accepted only if that value is itself valid', () => {
    fc.assert(
      fc.property(encryptRequest, fc.constantFrom('requestMetadata', 'plaintext', 'encryptionAlgorithm'), fc.jsonValue(), (request, field, value) => {
        const result = outcome(() => validators.Encrypt({ ...request, [field]: value }));
        if (field === 'encryptionAlgorithm') expect(result === 'accepted').to.equal(value === 'AES_GCM');
        if (field === 'plaintext' && (typeof value !== 'string' || !isStrictBase64(value))) expect(result).to.equal('ValidationException');
      }),
      RUNS,
    );
  });

  it('the strict JSON parser agrees with JSON.parse on valid JSON, never throws, and catches any duplicated member', () => {
    fc.assert(
      fc.property(fc.jsonValue(), (value) => {
        const parsed = parseStrictJson(JSON.stringify(value));
        expect(parsed.ok).to.equal(true);
        if (parsed.ok) expect(parsed.value).to.deep.equal(JSON.parse(JSON.stringify(value)));
      }),
      RUNS,
    );
    fc.assert(
      fc.property(fc.string({ maxLength: 200 }), (text) => {
        parseStrictJson(text);
      }),
      RUNS,
    );
    fc.assert(
      fc.property(fc.dictionary(fc.string({ maxLength: 6 }), fc.jsonValue({ maxDepth: 2 }), { minKeys: 1, maxKeys: 5 }), fc.nat(), fc.jsonValue({ maxDepth: 1 }), fc.boolean(), (object, pick, other, nested) => {
        const keys = Object.keys(object);
        const key = keys[pick % keys.length] as string;
        const text = JSON.stringify(object);
        // Re-add an existing member (possibly spelled with a \\u escape) at the end of the object.
        const spelled = key.length > 0 && pick % 2 === 0 ? `"\\u${key.charCodeAt(0).toString(16).padStart(4, '0')}${JSON.stringify(key.slice(1)).slice(1)}` : JSON.stringify(key);
        const duplicated = `${text.slice(0, -1)},${spelled}:${JSON.stringify(other)}}`;
        const wrapped = nested ? `{"outer":[1,${duplicated}]}` : duplicated;
        expect(parseStrictJson(wrapped)).to.deep.equal({ ok: false, reason: 'duplicate-key' });
      }),
      RUNS,
    );
  });
});
