/**
 * Property-based fuzzing (fast-check, bounded runs) of the KMS API surface (kmsApi on) on the real
 * HTTPS server and real SoftHSM, with requests signed by the AWS SDK's signer (service kms) and
 * written byte for byte. Whatever a caller sends: an answer within the deadline in KMS's error shape
 * ({"__type","message"}, x-amzn-ErrorType, the status KMS uses), never KMSInternalException, a
 * message that echoes nothing of the request; a 2xx Encrypt or GenerateDataKey decrypts back.
 * A failing run prints its seed and path; replay with FC_SEED=<seed> (and FC_PATH=<path>).
 */
import { expect } from 'chai';
import fc from 'fast-check';
import { KMS_ERRORS } from '../../src/kms-api/errors';
import { KMS_REGION, startKmsHarness, type KmsHarness } from '../support/kms-api';
import { b64 } from '../support/xks-client';
import { editAt, exchange, memberName, requestBytes, signRaw, SPEC_MESSAGE, toTree, treePaths, writeTree, type JsonTree, type RawAnswer } from '../support/fuzz-http';

const SEED = process.env.FC_SEED ? Number(process.env.FC_SEED) : 20261208;
const run = (numRuns: number): fc.Parameters<unknown> => ({ numRuns: numRuns * Number(process.env.FUZZ_SCALE ?? 1), seed: SEED, ...(process.env.FC_PATH ? { path: process.env.FC_PATH } : {}), endOnFailure: true });
const DEADLINE_MS = 2000;
const MARKER = 'ZQXJ';
const JSON_11 = 'application/x-amz-json-1.1';

describe('fuzz: KMS API on the real server (integration)', function () {
  this.timeout(120_000);
  let h: KmsHarness;
  let host: string;
  let blob: string;

  const call = async (target: string, bodyText: string, credential = h.kms.admin, extra: Record<string, string> = {}) => {
    const request = await signRaw({
      path: '/', host, credential, service: 'kms', region: KMS_REGION,
      headers: { 'content-type': JSON_11, 'x-amz-target': target, ...extra }, body: Buffer.from(bodyText),
    });
    return { request, answer: await exchange(h.proxy.port, h.ca, requestBytes(request), DEADLINE_MS + 1000) };
  };

  before(async () => {
    h = await startKmsHarness({ configure: (doc) => void (doc.limits.requestDeadlineMs = 1000) });
    host = new URL(h.kms.endpoint).host;
    const { answer } = await call('TrentService.Encrypt', JSON.stringify({ KeyId: 'alias/app', Plaintext: b64('kms fuzz'), EncryptionContext: { purpose: 'fuzz' } }));
    expect(answer.status, answer.text).to.equal(200);
    blob = JSON.parse(answer.text).CiphertextBlob as string;
  });
  after(async () => h?.stop());

  const OPERATIONS = ['Encrypt', 'Decrypt', 'ReEncrypt', 'GenerateDataKey', 'GenerateDataKeyWithoutPlaintext', 'GenerateRandom', 'DescribeKey', 'ListKeys', 'ListAliases'] as const;
  type Operation = (typeof OPERATIONS)[number];
  const context = { purpose: 'fuzz' };
  const baseBody = (op: Operation): Record<string, unknown> => {
    switch (op) {
      case 'Encrypt': return { KeyId: 'alias/app', Plaintext: b64('kms fuzz'), EncryptionContext: context };
      case 'Decrypt': return { CiphertextBlob: blob, EncryptionContext: context, KeyId: 'app-key', EncryptionAlgorithm: 'SYMMETRIC_DEFAULT' };
      case 'ReEncrypt': return { CiphertextBlob: blob, SourceEncryptionContext: context, DestinationKeyId: 'other-key', DestinationEncryptionContext: { b: 'c' } };
      case 'GenerateDataKey': return { KeyId: 'app-key', KeySpec: 'AES_256', EncryptionContext: context };
      case 'GenerateDataKeyWithoutPlaintext': return { KeyId: `arn:aws:kms:${KMS_REGION}:111122223333:alias/app`, NumberOfBytes: 32 };
      case 'GenerateRandom': return { NumberOfBytes: 16 };
      case 'DescribeKey': return { KeyId: 'alias/app' };
      case 'ListKeys': return { Limit: 10 };
      case 'ListAliases': return { KeyId: 'app-key' };
    }
  };

  const marked = (s: string) => `${s}~${MARKER}~`;
  const keyId = fc.oneof(
    fc.constantFrom('app-key', 'other-key', 'alias/app', 'alias/nope', 'alias/', 'key/app-key', 'alias/aws/kms', 'disabled-key', '', 'arn:', 'arn:aws:kms:us-east-1:111122223333:key/app-key', 'arn:aws:kms:eu-west-1:111122223333:key/app-key', 'arn:aws:kms:us-east-1:111122223333:alias/app', 'arn:aws:kms:us-east-1:111122223333:key/alias/app', 'arn:aws-cn:kms:us-east-1:111122223333:key/app-key', 'k'.repeat(2049), 'k'.repeat(129)),
    fc.string({ unit: 'binary', maxLength: 30 }).map(marked),
  ).map((s): JsonTree => ({ raw: JSON.stringify(s) }));
  const encryptionContext = fc.oneof(
    fc.dictionary(fc.string({ unit: 'binary', maxLength: 8 }), fc.string({ unit: 'binary', maxLength: 8 }), { maxKeys: 4 }).map((d) => toTree(d)),
    fc.constantFrom(0, 1, 8191, 8192, 8193).map((n): JsonTree => toTree(n === 0 ? {} : { k: 'v'.repeat(n - 1) })),
    fc.constantFrom<JsonTree>({ raw: '{"a":"\\ud800"}' }, { raw: '{"\\udfff":"b"}' }, { raw: '{"__proto__":"x"}' }, { raw: '{"a":1}' }, { raw: '{"":"b"}' }, { raw: '["a"]' }, { raw: '"a=b"' }, { raw: '{"a":{"b":"c"}}' }, { raw: '{"a":null}' }),
  );
  const anyValue: fc.Arbitrary<JsonTree> = fc.oneof(
    fc.jsonValue({ maxDepth: 2 }).map((v) => toTree(typeof v === 'string' ? marked(v) : v)),
    fc.constantFrom('1e400', '-0', '1.5', '1024', '1025', '0', '-1', '9007199254740993', 'true', 'null', '"true"', '"AES_128"', '"AES_256"', '"SYMMETRIC_DEFAULT"', '"RSAES_OAEP_SHA_256"', '"\\ud800"', '""').map((raw): JsonTree => ({ raw })),
    fc.uint8Array({ maxLength: 40 }).map((a) => Buffer.from(a).toString('base64')).chain((s) => fc.constantFrom(s, s.replace(/=+$/, ''), s.replace(/\+/g, '-'), `${s}==`)).map((s): JsonTree => ({ raw: JSON.stringify(s) })),
    fc.constantFrom(0, 1, 4096, 4097, 6144, 6145).map((n): JsonTree => ({ raw: JSON.stringify(b64(Buffer.alloc(n, 1))) })),
    keyId,
    encryptionContext,
  );
  const MEMBERS = ['KeyId', 'Plaintext', 'CiphertextBlob', 'EncryptionContext', 'SourceEncryptionContext', 'DestinationEncryptionContext', 'DestinationKeyId', 'SourceKeyId', 'KeySpec', 'NumberOfBytes', 'GrantTokens', 'DryRun', 'EncryptionAlgorithm', 'Limit', 'Marker', 'CustomKeyStoreId', 'Recipient', '__proto__', 'constructor'];
  const mutation = fc.oneof(
    fc.record({ kind: fc.constant('set' as const), name: fc.constantFrom(...MEMBERS), value: anyValue }),
    fc.record({ kind: fc.constant('remove' as const), at: fc.nat() }),
    fc.record({ kind: fc.constant('replace' as const), at: fc.nat(), value: anyValue }),
    fc.record({ kind: fc.constant('duplicate' as const), at: fc.nat() }),
  );
  type Mutation = typeof mutation extends fc.Arbitrary<infer T> ? T : never;

  function apply(tree: JsonTree, m: Mutation): JsonTree {
    const paths = treePaths(tree);
    const at = 'at' in m ? m.at : 0;
    const path = paths.length === 0 ? [] : (paths[at % paths.length] as Array<string | number>);
    if (!('members' in tree)) return tree;
    switch (m.kind) {
      case 'set': return { members: [...tree.members.filter(([k]) => memberName(k) !== m.name), [m.name, m.value]] };
      case 'remove': return editAt(tree, path, () => undefined);
      case 'replace': return editAt(tree, path, () => m.value);
      case 'duplicate': {
        const top = tree.members[at % Math.max(1, tree.members.length)];
        return top ? { members: [...tree.members, top] } : tree;
      }
    }
  }

  const target = fc.oneof(
    { weight: 8, arbitrary: fc.constantFrom(...OPERATIONS).map((op) => ({ op: op as Operation | undefined, target: `TrentService.${op}` })) },
    fc.constantFrom('TrentService.CreateKey', 'TrentService.constructor', 'TrentService.toString', 'TrentService.', 'Foo.Encrypt', 'TrentService.encrypt', `TrentService.${'A'.repeat(65)}`, '').map((t) => ({ op: undefined, target: t })),
  );

  function checkAnswer(what: string, answer: RawAnswer): Record<string, unknown> {
    const line = `${what} -> ${answer.status} ${answer.text.slice(0, 300)}`;
    expect(answer.timedOut, `no answer in time: ${line}`).to.equal(false);
    expect(answer.status, `an HTTP answer: ${line}`).to.not.equal(0);
    expect(answer.elapsedMs, line).to.be.below(DEADLINE_MS);
    let body: Record<string, unknown>;
    try {
      body = JSON.parse(answer.text) as Record<string, unknown>;
    } catch {
      throw new Error(`the answer is not JSON: ${line}`);
    }
    if (answer.status === 200) return body;
    const type = body.__type as keyof typeof KMS_ERRORS;
    expect(KMS_ERRORS, line).to.have.property(type);
    expect(answer.status, `the status KMS gives ${type}: ${line}`).to.equal(KMS_ERRORS[type]);
    expect(type, `never an internal error for what a caller sent: ${line}`).to.not.equal('KMSInternalException');
    expect(answer.headers['x-amzn-errortype'], line).to.equal(type);
    expect(body.message, line).to.be.a('string').and.match(SPEC_MESSAGE);
    expect(body.message as string, `the message echoes the request: ${line}`).not.to.include(MARKER);
    return body;
  }

  async function decryptsTo(ciphertextBlob: unknown, encryptionContext: unknown, plaintext: unknown): Promise<void> {
    const { answer } = await call('TrentService.Decrypt', JSON.stringify({ CiphertextBlob: ciphertextBlob, ...(encryptionContext === undefined ? {} : { EncryptionContext: encryptionContext }) }));
    expect(answer.status, answer.text).to.equal(200);
    expect(JSON.parse(answer.text).Plaintext).to.equal(plaintext);
  }

  it('(4) every operation with structurally mutated members, and unknown targets', async () => {
    await fc.assert(
      fc.asyncProperty(target, fc.array(mutation, { maxLength: 3 }), fc.boolean(), async ({ op, target: t }, mutations, limited) => {
        let tree = toTree(op ? baseBody(op) : {});
        for (const m of mutations) tree = apply(tree, m);
        const text = writeTree(tree);
        const { answer } = await call(t, text, limited ? h.kms.limited : h.kms.admin);
        const body = checkAnswer(`${t} ${text.slice(0, 200)}`, answer);
        if (answer.status !== 200) return;
        const sent = JSON.parse(text) as Record<string, unknown>;
        const names = (tree as { members: Array<[string | { raw: string }, JsonTree]> }).members.map(([k]) => memberName(k));
        expect(new Set(names).size, `a body that repeats a member name was served: ${text.slice(0, 200)}`).to.equal(names.length);
        if (op === 'Encrypt') await decryptsTo(body.CiphertextBlob, sent.EncryptionContext ?? undefined, sent.Plaintext);
        if (op === 'GenerateDataKey') await decryptsTo(body.CiphertextBlob, sent.EncryptionContext ?? undefined, body.Plaintext);
        if (op === 'Decrypt') expect(body.Plaintext).to.equal(b64('kms fuzz'));
      }),
      run(250),
    );
  });

  it('(4b) signature-level mutations on the KMS API: target unsigned or changed after signing, another region, a changed body', async () => {
    await fc.assert(
      fc.asyncProperty(fc.constantFrom('target-after', 'target-unsigned', 'region', 'body-after', 'service', 'content-type') , async (kind) => {
        const body = Buffer.from(JSON.stringify(baseBody('DescribeKey')));
        const request = await signRaw({
          path: '/', host, credential: h.kms.admin, service: kind === 'service' ? 'kms-xks-proxy' : 'kms', region: kind === 'region' ? 'eu-west-1' : KMS_REGION,
          headers: { 'content-type': JSON_11, 'x-amz-target': 'TrentService.DescribeKey' }, body,
          ...(kind === 'target-unsigned' ? { unsignableHeaders: new Set(['x-amz-target']) } : {}),
        });
        if (kind === 'target-after') request.headers = request.headers.map(([k, v]) => [k, k === 'x-amz-target' ? 'TrentService.GenerateRandom' : v]);
        if (kind === 'body-after') request.body = Buffer.from(JSON.stringify(baseBody('ListKeys')));
        if (kind === 'content-type') request.headers = request.headers.map(([k, v]) => [k, k === 'content-type' ? 'application/json' : v]);
        const answer = await exchange(h.proxy.port, h.ca, requestBytes(request), DEADLINE_MS + 1000);
        checkAnswer(kind, answer);
        expect(answer.status, `${kind}: ${answer.text}`).to.not.equal(200);
      }),
      run(30),
    );
  });

  it('after all that: still serving, and no request was answered 500', async () => {
    const { answer } = await call('TrentService.DescribeKey', JSON.stringify({ KeyId: 'alias/app' }));
    expect(answer.status, answer.text).to.equal(200);
    const lines = h.logs.map((l) => JSON.parse(l) as Record<string, unknown>).filter((l) => typeof l.status === 'number');
    expect(lines.length).to.be.greaterThan(200);
    expect(lines.filter((l) => (l.status as number) >= 500 && l.status !== 503)).to.deep.equal([]);
  });
});
