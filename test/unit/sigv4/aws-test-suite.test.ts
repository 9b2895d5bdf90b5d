// AWS's published SigV4 test suite against our verifier: every vector's canonical request, string to
// sign and signature, its signed request verified as node's HTTP parser delivers it, and mutations
// of it refused. Where a vector cannot be used as it is, the test says why and asserts that too.
import { Sha256 } from '@aws-crypto/sha256-js';
import { HttpRequest } from '@smithy/protocol-http';
import { SignatureV4 } from '@smithy/signature-v4';
import { expect } from 'chai';
import { hash } from 'node:crypto';
import { SigV4Verifier, type IncomingSignedRequest, type SigV4Result } from '../../../src/auth/sigv4';
import { canonicalize, readHeaders } from '../../../src/auth/sigv4/canonical-request';
import { SigningKey, deriveSigningKey } from '../../../src/auth/sigv4/signing-key';
import { NodeReceiver, SUITE, loadSuite, requestFromFile, toWireForm, type Vector } from './aws-test-suite';

const ALL_VECTORS = [
  'get-header-key-duplicate', 'get-header-value-multiline', 'get-header-value-order', 'get-header-value-trim',
  'get-unreserved', 'get-utf8', 'get-vanilla', 'get-vanilla-empty-query-key', 'get-vanilla-query',
  'get-vanilla-query-order-key', 'get-vanilla-query-order-key-case', 'get-vanilla-query-order-value',
  'get-vanilla-query-unreserved', 'get-vanilla-utf8-query',
  'normalize-path/get-relative', 'normalize-path/get-relative-relative', 'normalize-path/get-slash',
  'normalize-path/get-slash-dot-slash', 'normalize-path/get-slash-pointless-dot', 'normalize-path/get-slashes',
  'normalize-path/get-space',
  'post-header-key-case', 'post-header-key-sort', 'post-header-value-case',
  'post-sts-token/post-sts-header-after', 'post-sts-token/post-sts-header-before',
  'post-vanilla', 'post-vanilla-empty-query-value', 'post-vanilla-query',
  'post-x-www-form-urlencoded', 'post-x-www-form-urlencoded-parameters',
];

/** Not valid HTTP/1.1 as written: node's parser refuses the file; a client sends the wire form. */
const NOT_HTTP_AS_WRITTEN: Record<string, { parseError: string; because: string }> = {
  'get-utf8': { parseError: 'HPE_INVALID_URL', because: 'a request target must be ASCII; clients percent-encode /ሴ' },
  'get-vanilla-utf8-query': { parseError: 'HPE_INVALID_URL', because: 'a request target must be ASCII; clients percent-encode ?ሴ=bar' },
  'normalize-path/get-space': { parseError: 'HPE_INVALID_CONSTANT', because: 'a space ends the request target; clients send %20' },
  'get-header-value-multiline': { parseError: 'HPE_INVALID_HEADER_TOKEN', because: 'obs-fold is refused (RFC 9112 5.2); a client sends the header once per value' },
};

/**
 * SigV4 encodes the path of a non-S3 request twice (once for the wire, once more in the canonical
 * request: aws4, @smithy/signature-v4 and botocore all do). These vectors sign the raw, non-HTTP target
 * encoded once, so their signature cannot match the percent-encoded target a client sends; that wire
 * form is re-signed with the vector's inputs by an independent signer instead.
 */
const PATH_ENCODED_ONCE = new Set(['get-utf8', 'normalize-path/get-space']);

/**
 * Paths with empty, "." or ".." segments: SigV4 signs the normalised path, so such a request verifies
 * as another path; the verifier refuses them by design (routers could read them otherwise, KMS never
 * sends them). Their canonicalisation is still checked, and their signature against the normalised target.
 */
const UNNORMALISED_PATH = new Set([
  'normalize-path/get-relative', 'normalize-path/get-relative-relative', 'normalize-path/get-slash',
  'normalize-path/get-slash-dot-slash', 'normalize-path/get-slash-pointless-dot', 'normalize-path/get-slashes',
]);

/**
 * Defects of the published suite, kept as published. Both .creq files list content-length as signed,
 * but .sts and the signature were computed without it; for -parameters the signature was also computed
 * over "charset=utf8" while .req, .creq and .sreq say "charset=utf-8", and its .authz lists content-length
 * where its .sreq does not. `signed` turns a file into the request the signature was computed for.
 */
const SUITE_DEFECTS: Record<string, { sreqDiffers: boolean; signed: (text: string) => string; creqAsSigned: (creq: string) => string }> = {
  'post-x-www-form-urlencoded': {
    sreqDiffers: false,
    signed: (t) => t,
    creqAsSigned: (c) => c.replace(/^content-length:.*\n/m, '').replace('content-length;', ''),
  },
  'post-x-www-form-urlencoded-parameters': {
    sreqDiffers: true,
    signed: (t) => t.replace('charset=utf-8', 'charset=utf8'),
    creqAsSigned: (c) => c.replace(/^content-length:.*\n/m, '').replace('content-length;', '').replace('charset=utf-8', 'charset=utf8'),
  },
};

const lookup = (id: string): string | undefined => (id === SUITE.accessKeyId ? SUITE.secretAccessKey : undefined);
const suiteVerifier = new SigV4Verifier({ service: SUITE.service, now: () => SUITE.now });
const OK = { ok: true, accessKeyId: SUITE.accessKeyId, region: SUITE.region };

/** The Authorization value a .sreq carries. */
function authorizationIn(sreq: string): string {
  return /^Authorization: (.*)$/m.exec(sreq)![1]!;
}

function signedHeaderNames(authz: string): string[] {
  return /SignedHeaders=([^,]+)/.exec(authz)![1]!.split(';');
}

function signatureIn(authz: string): string {
  return /Signature=([0-9a-f]{64})/.exec(authz)![1]!;
}

/** The canonical form of a request, over exactly the headers named. */
function canonicalFormOf(request: IncomingSignedRequest, names: string[]) {
  const { values } = readHeaders(request.rawHeaders);
  const signedHeaders = new Map(names.map((n) => [n, values[n]!] as [string, string]));
  return canonicalize({
    method: request.method, url: request.url, signedHeaders, body: request.body,
    amzDate: values['x-amz-date']!, region: SUITE.region, service: SUITE.service,
  });
}

function withHeader(request: IncomingSignedRequest, name: string, edit: (v: string) => string): IncomingSignedRequest {
  const raw = [...request.rawHeaders];
  for (let i = 0; i < raw.length; i += 2) if (raw[i]!.toLowerCase() === name) raw[i + 1] = edit(raw[i + 1]!);
  return { ...request, rawHeaders: raw };
}

function expectFailure(result: SigV4Result, reason: string, detail?: string): void {
  expect(result.ok, JSON.stringify(result)).to.equal(false);
  if (result.ok) return;
  expect(result.reason).to.equal(reason);
  if (detail !== undefined) expect(result.detail).to.equal(detail);
}

function expectMutationsFail(request: IncomingSignedRequest): void {
  const flipped = withHeader(request, 'authorization', (a) => a.replace(/[0-9a-f]$/, (d) => (d === '0' ? '1' : '0')));
  expectFailure(suiteVerifier.verify(flipped, lookup), 'SignatureMismatch', 'signature does not match');
  const moved = withHeader(request, 'host', (h) => `other.${h}`);
  expectFailure(suiteVerifier.verify(moved, lookup), 'SignatureMismatch', 'signature does not match');
}

/** Signs a GET of `target` with the suite's credentials, scope and date, by the AWS SDK's signer. */
async function resignWithSmithy(target: string, host: string): Promise<string> {
  const signer = new SignatureV4({
    service: SUITE.service, region: SUITE.region, sha256: Sha256, applyChecksum: false,
    credentials: { accessKeyId: SUITE.accessKeyId, secretAccessKey: SUITE.secretAccessKey },
  });
  const signed = await signer.sign(new HttpRequest({ method: 'GET', protocol: 'https:', hostname: host, path: target, headers: { host } }), {
    signingDate: new Date(SUITE.now),
  });
  return [`GET ${target} HTTP/1.1`, `Host:${host}`, `X-Amz-Date:${signed.headers['x-amz-date']}`, `Authorization: ${signed.headers['authorization']}`].join('\n');
}

describe('sigv4 against the AWS SigV4 test suite (test/fixtures/aws-sig-v4-test-suite)', () => {
  const vectors = loadSuite();
  const node = new NodeReceiver();
  before(() => node.start());
  after(() => node.stop());

  async function viaNode(raw: string): Promise<IncomingSignedRequest> {
    const received = await node.receive(raw);
    if (!received.ok) throw new Error(`node refused the request: ${received.parseError}`);
    return received.request;
  }

  it('has every vector of the suite, each with .req, .creq, .sts, .authz and .sreq', () => {
    expect(vectors.map((v) => v.id).sort()).to.deep.equal([...ALL_VECTORS].sort());
    for (const v of vectors) {
      for (const text of [v.req, v.creq, v.sts, v.authz, v.sreq]) expect(text, v.id).to.not.equal('');
    }
  });

  it('the exception lists name only vectors of the suite', () => {
    const listed = [...Object.keys(NOT_HTTP_AS_WRITTEN), ...PATH_ENCODED_ONCE, ...UNNORMALISED_PATH, ...Object.keys(SUITE_DEFECTS)];
    for (const id of listed) expect(ALL_VECTORS, id).to.include(id);
  });

  for (const id of ALL_VECTORS) {
    describe(id, () => {
      const v = (): Vector => vectors.find((x) => x.id === id)!;
      const defect = SUITE_DEFECTS[id];
      const signed = (text: string): string => (defect ? defect.signed(text) : text);
      const notHttp = NOT_HTTP_AS_WRITTEN[id];
      /** The file as the verifier receives it: through node, or read here where node refuses it. */
      const receive = (text: string): Promise<IncomingSignedRequest> => (notHttp ? Promise.resolve(requestFromFile(text)) : viaNode(text));

      if (notHttp) {
        it(`not applicable through node as written because ${notHttp.because}: node refuses .req and .sreq with ${notHttp.parseError}`, async () => {
          for (const file of ['req', 'sreq'] as const) {
            expect(await node.receive(v()[file])).to.deep.equal({ ok: false, parseError: notHttp.parseError });
          }
        });
      } else {
        it('the files are valid HTTP as written (node parses them; no wire form needed)', () => {
          expect(toWireForm(v().req)).to.equal(v().req);
          expect(toWireForm(v().sreq)).to.equal(v().sreq);
        });
      }

      if (defect) {
        it('not applicable as published because its files disagree (suite defect): .sts hashes a different canonical request than .creq', () => {
          expect(hash('sha256', v().creq, 'hex')).to.not.equal(v().sts.split('\n')[3]);
          expect(hash('sha256', defect.creqAsSigned(v().creq), 'hex')).to.equal(v().sts.split('\n')[3]);
        });
      } else {
        it('the Authorization in .sreq is .authz, and .sts hashes .creq', () => {
          expect(authorizationIn(v().sreq)).to.equal(v().authz);
          expect(hash('sha256', v().creq, 'hex')).to.equal(v().sts.split('\n')[3]);
        });
      }

      if (PATH_ENCODED_ONCE.has(id)) {
        it('not applicable as published because it encodes the path once: ours is .creq with the path encoded again, as SDKs sign it', async () => {
          const request = await receive(v().req);
          const form = canonicalFormOf(request, signedHeaderNames(v().authz));
          expect(form.ok, JSON.stringify(form)).to.equal(true);
          if (!form.ok) return;
          const lines = v().creq.split('\n');
          lines[1] = lines[1]!.replace(/%/g, '%25');
          expect(form.value.canonicalRequest).to.equal(lines.join('\n'));
          expect(form.value.stringToSign).to.not.equal(v().sts);
        });
      } else {
        it('.req canonicalises to .creq and .sts, and its signature is the one in .authz', async () => {
          const request = await receive(signed(v().req));
          const names = signedHeaderNames(authorizationIn(v().sreq));
          const form = canonicalFormOf(request, names);
          expect(form.ok, JSON.stringify(form)).to.equal(true);
          if (!form.ok) return;
          expect(form.value.signedHeaders).to.equal(names.join(';'));
          expect(form.value.credentialScope).to.equal(`20150830/${SUITE.region}/${SUITE.service}/aws4_request`);
          expect(form.value.canonicalRequest).to.equal(defect ? defect.creqAsSigned(v().creq) : v().creq);
          expect(form.value.stringToSign).to.equal(v().sts);
          const key = deriveSigningKey(SUITE.secretAccessKey, '20150830', SUITE.region, SUITE.service);
          expect(new SigningKey(key).sign(form.value.stringToSign)).to.equal(signatureIn(v().authz));
        });
      }

      if (UNNORMALISED_PATH.has(id)) {
        it('not applicable to the verifier as sent because it refuses paths with empty, "." or ".." segments', async () => {
          const request = await receive(v().sreq);
          expectFailure(suiteVerifier.verify(request, lookup), 'SignatureMismatch', 'request path has empty, "." or ".." segments');
        });

        it('its signature verifies for the normalised target the suite signs (.creq line 2), and not when mutated', async () => {
          const request = await receive(v().sreq);
          const normalised = { ...request, url: v().creq.split('\n')[1]! };
          expect(normalised.url).to.not.equal(request.url);
          expect(suiteVerifier.verify(normalised, lookup)).to.deep.equal(OK);
          expectMutationsFail(normalised);
        });
      } else if (PATH_ENCODED_ONCE.has(id)) {
        it('not applicable to the verifier as published because its signature is over the path encoded once: SignatureMismatch', async () => {
          expectFailure(suiteVerifier.verify(await receive(v().sreq), lookup), 'SignatureMismatch', 'signature does not match');
        });
      } else {
        it('.sreq verifies, and fails with one signature digit changed or another host', async () => {
          const request = await receive(signed(v().sreq));
          expect(suiteVerifier.verify(request, lookup)).to.deep.equal(OK);
          expectMutationsFail(request);
        });
      }

      if (defect?.sreqDiffers) {
        it('.sreq exactly as published does not verify (its signature is for the request it was computed on)', async () => {
          expect(signed(v().sreq)).to.not.equal(v().sreq);
          expectFailure(suiteVerifier.verify(await receive(v().sreq), lookup), 'SignatureMismatch', 'signature does not match');
        });
      }

      if (notHttp && PATH_ENCODED_ONCE.has(id)) {
        it('its wire form (target percent-encoded) does not verify with the vector\'s signature, since SigV4 encodes it again', async () => {
          const request = await viaNode(toWireForm(v().sreq));
          expectFailure(suiteVerifier.verify(request, lookup), 'SignatureMismatch', 'signature does not match');
        });

        it('its wire form re-signed with the vector\'s inputs by @smithy/signature-v4 verifies through node, and not when mutated', async () => {
          const wire = await viaNode(toWireForm(v().req));
          const request = await viaNode(await resignWithSmithy(wire.url, 'example.amazonaws.com'));
          expect(request.url).to.equal(wire.url);
          expect(suiteVerifier.verify(request, lookup)).to.deep.equal(OK);
          expectMutationsFail(request);
        });
      } else if (notHttp) {
        it('its wire form verifies through node with the vector\'s own signature, and not when mutated', async () => {
          const request = await viaNode(toWireForm(v().sreq));
          expect(suiteVerifier.verify(request, lookup)).to.deep.equal(OK);
          expectMutationsFail(request);
        });
      }

      it('not applicable to the XKS verifier as signed because its scope service is "service": ScopeMismatch', async () => {
        const xks = new SigV4Verifier({ service: 'kms-xks-proxy', now: () => SUITE.now });
        const request = await receive(signed(v().sreq));
        expectFailure(xks.verify(request, lookup), 'ScopeMismatch', 'credential scope service is not kms-xks-proxy');
      });
    });
  }
});
