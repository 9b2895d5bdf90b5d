/**
 * Property-based fuzzing (fast-check, bounded runs) of the XKS API on the real HTTPS server and real
 * SoftHSM, with requests signed by the AWS SDK's signer and written byte for byte. Whatever a client
 * sends: an answer within the deadline, with a status from the spec's error table and its errorName
 * and a printable errorMessage that echoes nothing of the request (or a 2xx with a well-formed body,
 * and an Encrypt's ciphertext decrypts back); no 500; the server keeps serving.
 * A failing run prints its seed and path; replay with FC_SEED=<seed> (and FC_PATH=<path>).
 */
import { expect } from 'chai';
import fc from 'fast-check';
import { startHarness, type Harness } from '../support/proxy-harness';
import { b64, requestMetadata } from '../support/xks-client';
import {
  editAt, exchange, memberName, nodeAt, requestBytes, signRaw, SPEC_MESSAGE, toTree, treePaths, writeTree,
  type HeaderLines, type JsonTree, type RawAnswer, type RawRequest, type SignOptions,
} from '../support/fuzz-http';

const SEED = process.env.FC_SEED ? Number(process.env.FC_SEED) : 20261207;
const run = (numRuns: number): fc.Parameters<unknown> => ({ numRuns: numRuns * Number(process.env.FUZZ_SCALE ?? 1), seed: SEED, ...(process.env.FC_PATH ? { path: process.env.FC_PATH } : {}), endOnFailure: true });
/** An answer later than this is a hang (the proxy's own request budget is set to 1 s below). */
const DEADLINE_MS = 2000;
/** Put in every generated string and key ID: an errorMessage must never contain it. */
const MARKER = 'ZQXJ';

/** Every status the spec's error table gives a client-caused error, with its errorNames; 500 is not one. */
const XKS_ERRORS: Record<number, string[]> = {
  400: ['ValidationException', 'InvalidStateException', 'InvalidCiphertextException', 'InvalidKeyUsageException'],
  401: ['AuthenticationFailedException'],
  403: ['AccessDeniedException'],
  404: ['KeyNotFoundException', 'InvalidUriPathException'],
  // Spec: a method other than POST on an XKS URI gets 405.
  405: ['UnsupportedOperationException'],
  429: ['ThrottlingException'],
  501: ['UnsupportedOperationException'],
  503: ['DependencyTimeoutException'],
};

type Operation = 'encrypt' | 'decrypt' | 'metadata' | 'health';

interface Case {
  request: RawRequest;
  /** What the answer must (also) be, beyond the spec's shape. */
  expect?: 'ok' | 'not-ok' | 401;
  /** Raw bytes to write instead of requestBytes(request). */
  bytes?: Buffer;
}

describe('fuzz: XKS API on the real server (integration)', function () {
  this.timeout(120_000);
  let h: Harness;
  let host: string;
  let sealed: { ciphertext: string; initializationVector: string; authenticationTag: string; ciphertextMetadata?: string; aad: string; plaintext: string };

  before(async () => {
    h = await startHarness({ configure: (doc) => void (doc.limits.requestDeadlineMs = 1000) });
    host = new URL(h.client.baseUrl).host;
    const plaintext = b64('fuzz plaintext');
    const aad = b64('fuzz aad');
    const res = await h.client.send(`/kms/xks/v1/keys/${h.keys.main}/encrypt`, { body: { requestMetadata: requestMetadata('Encrypt'), plaintext, additionalAuthenticatedData: aad, encryptionAlgorithm: 'AES_GCM' } });
    expect(res.status, res.text).to.equal(200);
    sealed = { ...res.json, aad, plaintext };
  });
  after(async () => h?.stop());

  // ---- generators ----------------------------------------------------------------------------

  const marked = (s: string) => `${s}~${MARKER}~`;
  const bytesOf = (n: number) => Buffer.alloc(n, 0x5a);
  /** Base64 in every shape a lenient decoder takes and a strict one must refuse, and a few it must take. */
  const base64Variant = fc.tuple(fc.uint8Array({ maxLength: 40 }), fc.constantFrom('std', 'url', 'unpadded', 'overpadded', 'space', 'newline', 'padbits', 'nonascii', 'empty')).map(([raw, shape]) => {
    const s = Buffer.from(raw).toString('base64');
    switch (shape) {
      case 'url': return s.replace(/\+/g, '-').replace(/\//g, '_') + '-_';
      case 'unpadded': return s.replace(/=+$/, '') + (s.endsWith('=') ? '' : 'QQ');
      case 'overpadded': return `${s}==`;
      case 'space': return ` ${s}`;
      case 'newline': return `${s.slice(0, 4)}\n${s.slice(4)}`;
      case 'padbits': return 'QR==';
      case 'nonascii': return `${s}\u00e9AA=`;
      case 'empty': return '';
      default: return s;
    }
  });
  /** Decoded sizes at the spec's and the proxy's edges: IV 12/16, tag 16, metadata 20, plaintext 4300/8192, AAD 8192. */
  const edgeSize = fc.constantFrom(0, 1, 11, 12, 13, 15, 16, 17, 19, 20, 21, 24, 4299, 4300, 4301, 8191, 8192, 8193);
  const sizedBase64 = edgeSize.map((n) => b64(bytesOf(n)));
  const rawNumber = fc.constantFrom('1e400', '-1e400', '123456789012345678901234567890', '-0', '1E-400', '0.0', '9007199254740993', '1e2');
  const unicodeString = fc.oneof(
    fc.string({ unit: 'binary', maxLength: 24 }).map((s) => JSON.stringify(marked(s))),
    fc.constantFrom('"\\ud800"', `"\\udfff${MARKER}"`, '"\\u0000"', '"\\u0041\\u0045\\u0053\\u005f\\u0047\\u0043\\u004d"', '"\\ud83d\\ude00"', '"\\uDBFF\\uDFFF\\uDBFF"', '""'),
  ).map((raw): JsonTree => ({ raw }));
  const kmsOperation = fc.oneof(
    fc.constantFrom('Encrypt', 'Decrypt', 'ReEncrypt', 'GenerateDataKey', 'GenerateDataKeyWithoutPlaintext', 'GenerateDataKeyPair', 'CreateKey', 'DescribeKey', 'KmsHealthCheck', 'CreateCustomKeyStore', 'ConnectCustomKeyStore', 'UpdateCustomKeyStore', 'BulkEncrypt', ''),
    fc.string({ maxLength: 40 }),
  ).map((s): JsonTree => ({ raw: JSON.stringify(s) }));
  const anyValue: fc.Arbitrary<JsonTree> = fc.oneof(
    fc.jsonValue({ maxDepth: 2 }).map((v) => toTree(typeof v === 'string' ? marked(v) : v)),
    rawNumber.map((raw): JsonTree => ({ raw })),
    unicodeString,
    base64Variant.map((s): JsonTree => ({ raw: JSON.stringify(s) })),
    sizedBase64.map((s): JsonTree => ({ raw: JSON.stringify(s) })),
    kmsOperation,
    fc.constantFrom<JsonTree>({ raw: 'null' }, { raw: 'true' }, { raw: '[]' }, { raw: '{}' }, { raw: '"AES_GCM"' }, { raw: '"SHA_256"' }, { raw: '"aes_gcm"' }),
  );
  const memberNameArb = fc.oneof(
    fc.string({ maxLength: 10 }).map((s) => `${s}${MARKER}`),
    fc.constantFrom('__proto__', 'constructor', 'toString', 'hasOwnProperty', 'plaintext', 'requestMetadata', 'kmsOperation', 'awsPrincipalArn', ''),
  );

  type Mutation =
    | { kind: 'replace'; at: number; value: JsonTree }
    | { kind: 'remove'; at: number }
    | { kind: 'extra'; at: number; name: string; value: JsonTree }
    | { kind: 'duplicate'; at: number; escaped: boolean; value: JsonTree | undefined }
    | { kind: 'nest'; at: number; depth: number; object: boolean };
  const mutation: fc.Arbitrary<Mutation> = fc.oneof(
    fc.record({ kind: fc.constant('replace' as const), at: fc.nat(), value: anyValue }),
    fc.record({ kind: fc.constant('remove' as const), at: fc.nat() }),
    fc.record({ kind: fc.constant('extra' as const), at: fc.nat(), name: memberNameArb, value: anyValue }),
    fc.record({ kind: fc.constant('duplicate' as const), at: fc.nat(), escaped: fc.boolean(), value: fc.option(anyValue, { nil: undefined }) }),
    fc.record({ kind: fc.constant('nest' as const), at: fc.nat(), depth: fc.constantFrom(1, 2, 64, 700), object: fc.boolean() }),
  );

  /** Applies a mutation; reports whether the text now repeats a member name. */
  function apply(tree: JsonTree, m: Mutation): { tree: JsonTree; duplicated: boolean } {
    const paths = treePaths(tree);
    const path = paths.length === 0 ? [] : (paths[m.at % paths.length] as Array<string | number>);
    switch (m.kind) {
      case 'replace':
        return { tree: editAt(tree, path, () => m.value), duplicated: false };
      case 'remove':
        return { tree: editAt(tree, path, () => undefined), duplicated: false };
      case 'extra': {
        const target = [tree, nodeAt(tree, path)].filter((n): n is Extract<JsonTree, { members: unknown }> => n !== undefined && 'members' in n).pop();
        if (!target) return { tree, duplicated: false };
        const targetPath = target === tree ? [] : path;
        const duplicated = target.members.some(([k]) => memberName(k) === m.name);
        return { tree: editAt(tree, targetPath, (n) => ('members' in n ? { members: [...n.members, [m.name, m.value]] } : n)), duplicated };
      }
      case 'duplicate': {
        const name = path[path.length - 1];
        if (typeof name !== 'string') return { tree, duplicated: false };
        const parentPath = path.slice(0, -1);
        const spelled = m.escaped && name.length > 0 ? { raw: `"\\u${name.charCodeAt(0).toString(16).padStart(4, '0')}${JSON.stringify(name.slice(1)).slice(1)}` } : name;
        return {
          tree: editAt(tree, parentPath, (n) => ('members' in n ? { members: [...n.members, [spelled, m.value ?? (nodeAt(tree, path) as JsonTree)]] } : n)),
          duplicated: true,
        };
      }
      case 'nest':
        return {
          tree: editAt(tree, path, (n) => {
            let nested = n;
            for (let i = 0; i < m.depth; i++) nested = m.object ? { members: [['a', nested]] } : { items: [nested] };
            return nested;
          }),
          duplicated: false,
        };
    }
  }

  /** Whether any object in the tree repeats a member name (as a parser reads the names). */
  function repeatsName(tree: JsonTree): boolean {
    const stack: JsonTree[] = [tree];
    while (stack.length > 0) {
      const node = stack.pop() as JsonTree;
      if ('items' in node) stack.push(...node.items);
      if ('members' in node) {
        const names = node.members.map(([k]) => memberName(k));
        if (new Set(names).size !== names.length) return true;
        stack.push(...node.members.map(([, v]) => v));
      }
    }
    return false;
  }

  const baseBody = (operation: Operation): Record<string, unknown> => {
    switch (operation) {
      case 'encrypt': return { requestMetadata: requestMetadata('Encrypt'), plaintext: b64('fuzz plaintext'), encryptionAlgorithm: 'AES_GCM', additionalAuthenticatedData: b64('aad'), ciphertextDataIntegrityValueAlgorithm: 'SHA_256' };
      case 'decrypt': {
        const { aad, plaintext: _p, ...fields } = sealed;
        return { requestMetadata: requestMetadata('Decrypt'), encryptionAlgorithm: 'AES_GCM', additionalAuthenticatedData: aad, ...fields };
      }
      case 'metadata': return { requestMetadata: requestMetadata('DescribeKey') };
      case 'health': return { requestMetadata: { kmsRequestId: 'fuzz', kmsOperation: 'KmsHealthCheck' } };
    }
  };
  const operation = fc.constantFrom<Operation>('encrypt', 'decrypt', 'metadata', 'health');
  const keyId = fc.oneof(
    { weight: 6, arbitrary: fc.constantFrom('main', 'encryptOnly', 'decryptOnly', 'noUsage', 'known', 'health') },
    fc.constantFrom('disabled-key', `no-such-${MARKER}`, '.', '..', '', `${MARKER}.-_`, 'k'.repeat(128), `${MARKER}${'k'.repeat(125)}`),
    fc.stringMatching(/^[A-Za-z0-9._-]{0,130}$/).map((s) => `${s}${MARKER}`),
    fc.string({ unit: 'binary', maxLength: 12 }).map((s) => encodeURIComponent(`${s}${MARKER}`)),
  );
  const pathFor = (op: Operation, id: string): string => {
    if (op === 'health') return '/kms/xks/v1/health';
    const key = (h.keys as unknown as Record<string, string>)[id];
    return `/kms/xks/v1/keys/${typeof key === 'string' ? key : id}/${op}`;
  };

  // ---- the property --------------------------------------------------------------------------

  const signed = (options: Omit<SignOptions, 'host' | 'credential'> & Partial<Pick<SignOptions, 'host' | 'credential'>>) =>
    signRaw({ host, credential: h.credentials.first, headers: { 'content-type': 'application/json' }, ...options });
  const send = (c: Case) => exchange(h.proxy.port, h.ca, c.bytes ?? requestBytes(c.request), DEADLINE_MS + 1000);
  const mustHaveBody = (method: string) => method !== 'HEAD';

  /** The property every answer has; returns the parsed body. */
  function checkAnswer(c: Case, answer: RawAnswer): Record<string, unknown> | undefined {
    const what = `${c.request.method} ${c.request.target.slice(0, 120)} -> ${answer.status} ${answer.text.slice(0, 300)}`;
    expect(answer.timedOut, `no answer within ${DEADLINE_MS + 1000} ms: ${what}`).to.equal(false);
    expect(answer.status, `an HTTP answer, not a closed connection: ${what}`).to.not.equal(0);
    expect(answer.elapsedMs, `answered within ${DEADLINE_MS} ms: ${what}`).to.be.below(DEADLINE_MS);
    if (!mustHaveBody(c.request.method)) return undefined;
    expect(answer.headers['content-type'], what).to.match(/^application\/json/);
    let body: Record<string, unknown>;
    try {
      body = JSON.parse(answer.text) as Record<string, unknown>;
    } catch {
      throw new Error(`the answer is not JSON: ${what}`);
    }
    expect(body, what).to.be.an('object');
    if (answer.status === 200) {
      expect(body.errorName, what).to.equal(undefined);
    } else {
      expect(Object.keys(XKS_ERRORS).map(Number), `a status from the spec's error table: ${what}`).to.include(answer.status);
      expect(XKS_ERRORS[answer.status], `the errorName of status ${answer.status}: ${what}`).to.include(body.errorName);
      expect(body.errorMessage, what).to.be.a('string').and.match(SPEC_MESSAGE);
      expect(body.errorMessage as string, `errorMessage echoes the request: ${what}`).not.to.include(MARKER);
    }
    if (c.expect === 'ok') expect(answer.status, what).to.equal(200);
    if (c.expect === 'not-ok') expect(answer.status, what).to.not.equal(200);
    if (c.expect === 401) {
      expect(answer.status, what).to.equal(401);
      expect(body.errorName, what).to.equal('AuthenticationFailedException');
    }
    return body;
  }

  /** A 2xx Encrypt's output decrypts back to the plaintext it was given, with the same AAD. */
  async function roundTrip(path: string, sent: Record<string, unknown>, out: Record<string, unknown>): Promise<void> {
    expect(out.initializationVector, JSON.stringify(out)).to.be.a('string');
    expect([12, 16]).to.include(Buffer.from(out.initializationVector as string, 'base64').length);
    expect(Buffer.from(out.authenticationTag as string, 'base64').length).to.equal(16);
    const back = await h.client.send(path.replace(/\/encrypt$/, '/decrypt'), {
      body: {
        requestMetadata: requestMetadata('Decrypt'),
        encryptionAlgorithm: 'AES_GCM',
        ...(sent.additionalAuthenticatedData !== undefined ? { additionalAuthenticatedData: sent.additionalAuthenticatedData } : {}),
        ciphertext: out.ciphertext,
        initializationVector: out.initializationVector,
        authenticationTag: out.authenticationTag,
        ...(out.ciphertextMetadata !== undefined ? { ciphertextMetadata: out.ciphertextMetadata } : {}),
      },
    });
    // Only a key that cannot decrypt (encrypt-only) may refuse; anything else must give the plaintext back.
    if (back.status === 400 && back.json?.errorName === 'InvalidKeyUsageException') return;
    expect(back.status, back.text).to.equal(200);
    expect(back.json.plaintext).to.equal(sent.plaintext);
  }

  async function stillServing(): Promise<void> {
    const res = await h.client.send('/kms/xks/v1/health', { body: { requestMetadata: { kmsRequestId: 'alive', kmsOperation: 'KmsHealthCheck' } } });
    expect(res.status, res.text).to.equal(200);
  }

  it('(1) well-signed requests with structurally mutated JSON bodies', async () => {
    await fc.assert(
      fc.asyncProperty(operation, keyId, fc.array(mutation, { minLength: 0, maxLength: 3 }), async (op, id, mutations) => {
        let tree = toTree(baseBody(op));
        for (const m of mutations) tree = apply(tree, m).tree;
        const duplicated = repeatsName(tree);
        const text = writeTree(tree);
        const path = pathFor(op, id);
        const request = await signed({ path, body: Buffer.from(text) });
        const c: Case = { request, ...(duplicated ? { expect: 'not-ok' as const } : {}) };
        const answer = await send(c);
        const body = checkAnswer(c, answer);
        if (answer.status !== 200 || !body) return;
        const sent = JSON.parse(text) as Record<string, unknown>;
        if (op === 'encrypt') await roundTrip(path, sent, body);
        if (op === 'decrypt') expect(body.plaintext, text.slice(0, 300)).to.equal(sealed.plaintext);
        if (op === 'metadata') expect(body).to.include({ keySpec: 'AES_256' });
      }),
      run(250),
    );
    await stillServing();
  });

  it('(1b) every kmsOperation value, and sizes at every spec edge, on an otherwise valid request', async () => {
    const field = fc.constantFrom('plaintext', 'additionalAuthenticatedData', 'ciphertext', 'initializationVector', 'authenticationTag', 'ciphertextMetadata');
    await fc.assert(
      fc.asyncProperty(fc.constantFrom<Operation>('encrypt', 'decrypt', 'metadata', 'health'), kmsOperation, field, edgeSize, async (op, kmsOp, name, size) => {
        const value = b64(bytesOf(size));
        let tree = editAt(toTree(baseBody(op)), ['requestMetadata', 'kmsOperation'], () => kmsOp);
        const applies = (op === 'encrypt' && ['plaintext', 'additionalAuthenticatedData'].includes(name)) || (op === 'decrypt' && name !== 'plaintext');
        if (applies) tree = editAt(tree, [name], () => ({ raw: JSON.stringify(value) }));
        if (applies && nodeAt(tree, [name]) === undefined && 'members' in tree) tree = { members: [...tree.members, [name, { raw: JSON.stringify(value) }]] };
        const text = writeTree(tree);
        const path = pathFor(op, 'main');
        const c: Case = { request: await signed({ path, body: Buffer.from(text) }) };
        const answer = await send(c);
        const body = checkAnswer(c, answer);
        // The spec's minimums MUST be served: 4300 bytes of plaintext, 8192 of AAD; kmsOperation is never validated.
        if (op === 'encrypt' && (name === 'plaintext' ? size >= 1 && size <= 4300 : name !== 'additionalAuthenticatedData' || size <= 8192)) {
          expect(answer.status, `${name} of ${size} bytes: ${answer.text}`).to.equal(200);
          await roundTrip(path, JSON.parse(text) as Record<string, unknown>, body as Record<string, unknown>);
        }
        if (op === 'metadata' || op === 'health') expect(answer.status, answer.text).to.equal(200);
        if (op === 'decrypt' && answer.status === 200) expect((body as Record<string, unknown>).plaintext).to.equal(sealed.plaintext);
      }),
      run(120),
    );
    await stillServing();
  });

  type SigMutation =
    | { kind: 'name-case'; at: number; upper: boolean }
    | { kind: 'value-space'; at: number; pad: string }
    | { kind: 'inner-space'; name: 'host' | 'x-amz-date' }
    | { kind: 'duplicate'; at: number; same: boolean }
    | { kind: 'skew'; seconds: number }
    | { kind: 'region'; region: string }
    | { kind: 'service'; service: string }
    | { kind: 'scope-date'; days: number }
    | { kind: 'no-host' }
    | { kind: 'body-after'; edit: 'flip' | 'append' | 'bom' | 'other' }
    | { kind: 'content-sha'; change: 'wrong' | 'unsigned-payload' | 'removed' }
    | { kind: 'version'; version: string }
    | { kind: 'method-case' }
    | { kind: 'framing'; how: 'chunked' | 'bad-chunk' | 'cl-and-te' | 'upgrade' | 'expect-continue' | 'short-cl' | 'obs-fold' | 'nul-value' | 'many-headers' };
  const sigMutation: fc.Arbitrary<SigMutation> = fc.oneof(
    fc.record({ kind: fc.constant('name-case' as const), at: fc.nat(), upper: fc.boolean() }),
    fc.record({ kind: fc.constant('value-space' as const), at: fc.nat(), pad: fc.constantFrom(' ', '\t', '  \t ') }),
    fc.record({ kind: fc.constant('inner-space' as const), name: fc.constantFrom('host' as const, 'x-amz-date' as const) }),
    fc.record({ kind: fc.constant('duplicate' as const), at: fc.nat(), same: fc.boolean() }),
    fc.record({ kind: fc.constant('skew' as const), seconds: fc.oneof(fc.integer({ min: -420, max: 420 }), fc.constantFrom(-86_400 * 2, 86_400 * 365, -290, 290, -310, 310)) }),
    fc.record({ kind: fc.constant('region' as const), region: fc.oneof(fc.constantFrom('eu-west-1', 'us-gov-west-1', 'cn-north-1', 'ap-southeast-2'), fc.string({ minLength: 1, maxLength: 20 }).filter((s) => !s.includes('/'))) }),
    fc.record({ kind: fc.constant('service' as const), service: fc.oneof(fc.constantFrom('kms', 'KMS-XKS-PROXY', 'kms-xks-proxy ', 's3', 'kms-xks'), fc.stringMatching(/^[a-z0-9-]{1,20}$/)).filter((s) => s !== 'kms-xks-proxy') }),
    fc.record({ kind: fc.constant('scope-date' as const), days: fc.constantFrom(-1, 1, -365, 30) }),
    fc.constant({ kind: 'no-host' as const }),
    fc.record({ kind: fc.constant('body-after' as const), edit: fc.constantFrom('flip' as const, 'append' as const, 'bom' as const, 'other' as const) }),
    fc.record({ kind: fc.constant('content-sha' as const), change: fc.constantFrom('wrong' as const, 'unsigned-payload' as const, 'removed' as const) }),
    fc.record({ kind: fc.constant('version' as const), version: fc.constantFrom('HTTP/1.0', 'HTTP/1.2', 'HTTP/2.0', 'HTTP/0.9', 'http/1.1') }),
    fc.constant({ kind: 'method-case' as const }),
    fc.record({ kind: fc.constant('framing' as const), how: fc.constantFrom('chunked' as const, 'bad-chunk' as const, 'cl-and-te' as const, 'upgrade' as const, 'expect-continue' as const, 'short-cl' as const, 'obs-fold' as const, 'nul-value' as const, 'many-headers' as const) }),
  );

  const dayShift = (stamp: string, days: number): string => {
    const d = new Date(Date.UTC(Number(stamp.slice(0, 4)), Number(stamp.slice(4, 6)) - 1, Number(stamp.slice(6, 8)) + days));
    return d.toISOString().slice(0, 10).replace(/-/g, '');
  };

  it('(2) signature-level mutations of a well-signed request', async () => {
    const { createHash } = await import('node:crypto');
    await fc.assert(
      fc.asyncProperty(fc.constantFrom<Operation>('encrypt', 'metadata', 'health'), sigMutation, async (op, m) => {
        const path = pathFor(op, 'main');
        const body = Buffer.from(JSON.stringify(baseBody(op)));
        const base: Parameters<typeof signed>[0] = { path, body };
        let c: Case;
        switch (m.kind) {
          case 'skew': {
            c = { request: await signed({ ...base, signingDate: new Date(Date.now() + m.seconds * 1000) }) };
            if (Math.abs(m.seconds) <= 290) c.expect = 'ok';
            if (Math.abs(m.seconds) >= 310) c.expect = 401;
            break;
          }
          case 'region':
            c = { request: await signed({ ...base, region: m.region }) };
            break;
          case 'service':
            c = { request: await signed({ ...base, service: m.service }), expect: 401 };
            break;
          case 'no-host':
            c = { request: await signed({ ...base, unsignableHeaders: new Set(['host']) }), expect: 401 };
            break;
          default: {
            const request = await signed(base);
            const headers: HeaderLines = request.headers.map(([k, v]) => [k, v]);
            const pick = (at: number) => at % headers.length;
            c = { request: { ...request, headers } };
            if (m.kind === 'name-case') {
              const i = pick(m.at);
              const [k, v] = headers[i] as [string, string];
              headers[i] = [m.upper ? k.toUpperCase() : k.replace(/(^|-)([a-z])/g, (_s, dash: string, ch: string) => dash + ch.toUpperCase()), v];
              c.expect = 'ok';
            } else if (m.kind === 'value-space') {
              const i = pick(m.at);
              const [k, v] = headers[i] as [string, string];
              headers[i] = [k, `${m.pad}${v}${m.pad}`];
              c.expect = 'ok';
            } else if (m.kind === 'inner-space') {
              const i = headers.findIndex(([k]) => k.toLowerCase() === m.name);
              const [k, v] = headers[i] as [string, string];
              headers[i] = [k, `${v.slice(0, 4)} ${v.slice(4)}`];
              c.expect = 'not-ok';
            } else if (m.kind === 'duplicate') {
              const i = pick(m.at);
              const [k, v] = headers[i] as [string, string];
              const signedNames = /SignedHeaders=([^,]+)/.exec(headers.find(([n]) => n.toLowerCase() === 'authorization')?.[1] ?? '')?.[1]?.split(';') ?? [];
              headers.splice(i + 1, 0, [k, m.same ? v : `${v.slice(0, -1)}${v.endsWith('0') ? '1' : '0'}`]);
              // A signed header sent twice with two values is ambiguous: never served.
              if (!m.same && (signedNames.includes(k.toLowerCase()) || k.toLowerCase() === 'authorization')) c.expect = 'not-ok';
            } else if (m.kind === 'scope-date') {
              const i = headers.findIndex(([k]) => k.toLowerCase() === 'authorization');
              const [k, v] = headers[i] as [string, string];
              headers[i] = [k, v.replace(/\/(\d{8})\//, (_s, d: string) => `/${dayShift(d, m.days)}/`)];
              c.expect = 401;
            } else if (m.kind === 'body-after') {
              const text = body.toString();
              const changed =
                m.edit === 'flip' ? Buffer.from(text.replace('"requestMetadata"', '"requestMetadatb"'))
                : m.edit === 'append' ? Buffer.from(`${text} `)
                : m.edit === 'bom' ? Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), body])
                : Buffer.from(text.replace('"requestMetadata":{', '"requestMetadata":{"kmsViaService":"x",'));
              c.request = { ...c.request, body: changed };
              c.expect = 401;
            } else if (m.kind === 'content-sha') {
              // The SDK signs x-amz-content-sha256: a request whose signed payload hash is not its body's is refused.
              const i = headers.findIndex(([k]) => k.toLowerCase() === 'x-amz-content-sha256');
              if (m.change === 'removed') headers.splice(i, 1);
              else headers[i] = ['x-amz-content-sha256', m.change === 'wrong' ? createHash('sha256').update('other').digest('hex') : 'UNSIGNED-PAYLOAD'];
              c.expect = 401;
            } else if (m.kind === 'version') {
              c.bytes = requestBytes(c.request, m.version);
            } else if (m.kind === 'framing') {
              const chunked = (chunkLine: string) => {
                const lines = headers.filter(([k]) => k.toLowerCase() !== 'content-length');
                lines.push(['transfer-encoding', 'chunked'], ['connection', 'close']);
                const head = `POST ${c.request.target} HTTP/1.1\r\n${lines.map(([k, v]) => `${k}: ${v}`).join('\r\n')}\r\n\r\n`;
                return Buffer.concat([Buffer.from(head), Buffer.from(`${chunkLine}\r\n`), body, Buffer.from('\r\n0\r\n\r\n')]);
              };
              if (m.how === 'chunked') c.bytes = chunked(body.length.toString(16));
              if (m.how === 'bad-chunk') c.bytes = chunked('zz');
              if (m.how === 'cl-and-te') headers.push(['transfer-encoding', 'chunked']);
              if (m.how === 'upgrade') headers.push(['upgrade', 'websocket'], ['connection', 'upgrade']);
              if (m.how === 'expect-continue') headers.push(['expect', '100-continue']);
              if (m.how === 'short-cl') headers.push(['content-length', String(Math.max(0, body.length - 5))]);
              if (m.how === 'obs-fold') headers.push(['x-folded', 'a\r\n b']);
              if (m.how === 'nul-value') headers.push(['x-nul', 'a\u0000b']);
              if (m.how === 'many-headers') for (let i = 0; i < 2100; i++) headers.unshift([`x-h${i}`, 'v']);
              if (m.how === 'chunked' || m.how === 'expect-continue') c.expect = 'ok';
              if (m.how === 'short-cl') c.expect = 'not-ok';
            } else if (m.kind === 'method-case') {
              c.request = { ...c.request, method: 'post' };
              c.expect = 'not-ok';
            }
          }
        }
        checkAnswer(c, await send(c));
      }),
      run(200),
    );
    await stillServing();
  });

  const segment = fc.oneof(
    fc.constantFrom('kms', 'xks', 'v1', 'v2', 'keys', 'health', 'metadata', 'encrypt', 'decrypt', 'tenants', 'b', '..', '.', '%2e%2e', '%2F', '', 'KMS', 'ping', 'metrics', '%00', `${MARKER}`),
    fc.stringMatching(/^[A-Za-z0-9._~-]{1,20}$/).map((s) => `${s}${MARKER}`),
    fc.string({ unit: 'binary', maxLength: 8 }).map((s) => encodeURIComponent(s + MARKER)),
  );
  const target = fc.oneof(
    fc.array(segment, { maxLength: 8 }).map((parts) => `/${parts.join('/')}`),
    fc.constantFrom('/kms/xks/v1/health', '/kms/xks/v1/keys/KEY/encrypt', '/tenants/b/kms/xks/v1/health', '/kms/xks/v1/keys/KEY/metadata'),
  ).chain((path) =>
    fc.tuple(fc.constant(path.replace('KEY', 'main')), fc.constantFrom('', '?', '?a=b', `?x-amz-date=${MARKER}`, '?a=b&a=c', '#frag', `?${'q'.repeat(3000)}`, '?%zz')).map(([p, q]) => p + q),
  );
  const method = fc.constantFrom('CONNECT', 'POST', 'GET', 'PUT', 'DELETE', 'PATCH', 'HEAD', 'OPTIONS', 'TRACE', 'PROPFIND', 'SEARCH');

  it('(3) paths, methods, query strings and request targets, signed or not', async () => {
    await fc.assert(
      fc.asyncProperty(method, target, fc.boolean(), fc.constantFrom('origin', 'absolute', 'asterisk'), async (m, t, sign, form) => {
        const body = Buffer.from(JSON.stringify(baseBody('health')));
        const [path, query] = t.split('?') as [string, string | undefined];
        let request: RawRequest;
        if (sign && form === 'origin' && !t.includes('#') && !t.includes('%zz')) {
          const queryMembers = query === undefined ? undefined : Object.fromEntries(new URLSearchParams(query));
          request = await signed({ method: m, path, body, ...(queryMembers ? { query: queryMembers } : {}) });
          request.target = t;
        } else {
          request = { method: m, target: t, headers: [['host', host], ['content-type', 'application/json']], body };
        }
        if (form === 'absolute') request.target = `https://${host}${t}`;
        if (form === 'asterisk') request.target = '*';
        const c: Case = { request };
        checkAnswer(c, await send(c));
      }),
      run(200),
    );
    await stillServing();
  });

  it('after all that: still serving, no request was answered 500, nothing logged a crash', async () => {
    await stillServing();
    const lines = h.logs.map((l) => JSON.parse(l) as Record<string, unknown>);
    const answered = lines.filter((l) => typeof l.status === 'number');
    expect(answered.length).to.be.greaterThan(500);
    expect(answered.filter((l) => l.status === 500), 'no 500').to.deep.equal([]);
    expect(lines.filter((l) => /uncaught|unhandled|crash/i.test(String(l.message)))).to.deep.equal([]);
  });
});
