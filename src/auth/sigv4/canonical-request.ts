// Step 5: rebuild the canonical request (in one pass for KMS's shape, through aws4 for any other) and
// compute the signature the client should have sent.
import { hash } from 'node:crypto';
import { RequestSigner, type Request as Aws4Request } from 'aws4';
import { sha256Hex } from './payload-hash';
import { SigningKeys } from './signing-key';
import type { StepResult } from './verifier';

// Node decodes header bytes as latin1; signers hash the raw (UTF-8) bytes, and aws4 hashes
// strings as UTF-8, so turn the string back into the bytes that were on the wire.
function fromLatin1(value: string): string {
  return /[^\x00-\x7f]/.test(value) ? Buffer.from(value, 'latin1').toString('utf8') : value;
}

/**
 * The request's headers in one pass over node's rawHeaders: lowercase name -> values trimmed and
 * comma-joined (as the canonical request has them), and how many Authorization headers came.
 * A plain object of strings, not a Map of arrays: this runs on every request.
 */
export interface HeaderValues {
  values: Record<string, string>;
  authorizationCount: number;
  /** The first Authorization value as received (untrimmed: its parser checks the raw text). */
  authorization?: string;
}

export function readHeaders(rawHeaders: readonly string[]): HeaderValues {
  const values: Record<string, string> = Object.create(null);
  let authorizationCount = 0;
  let authorization: string | undefined;
  for (let i = 0; i + 1 < rawHeaders.length; i += 2) {
    const name = String(rawHeaders[i]).toLowerCase();
    const raw = fromLatin1(String(rawHeaders[i + 1]));
    if (name === 'authorization' && authorizationCount++ === 0) authorization = raw;
    const value = raw.trim();
    const previous = values[name];
    values[name] = previous === undefined ? value : `${previous},${value}`;
  }
  return authorization === undefined ? { values, authorizationCount } : { values, authorizationCount, authorization };
}

/** What the canonical request and string to sign are built from (no secret: nothing here signs). */
export interface CanonicalInput {
  method: string;
  url: string;
  /** Exactly the signed headers: lowercase name -> joined value. */
  signedHeaders: ReadonlyMap<string, string>;
  body: Buffer;
  amzDate: string;
  region: string;
  service: string;
}

export interface CanonicalRequestInput extends CanonicalInput {
  accessKeyId: string;
  secretAccessKey: string;
  /** The verifier's signing-key cache; without one the key is derived for this call only. */
  signingKeys?: SigningKeys;
}

export interface CanonicalForm {
  canonicalRequest: string;
  stringToSign: string;
  /** The SignedHeaders list; must equal the client's string exactly. */
  signedHeaders: string;
  /** The scope (date/region/service/aws4_request); must equal the client's. */
  credentialScope: string;
}

export interface ExpectedSignature {
  signature: string;
  /** The canonical SignedHeaders list; must equal the client's string exactly. */
  signedHeaders: string;
  /** The canonical scope (date/region/service/aws4_request); must equal the client's. */
  credentialScope: string;
}

// Not in @types/aws4, but read by RequestSigner: names listed here survive HEADERS_TO_IGNORE.
interface Aws4VerifyRequest extends Aws4Request {
  extraHeadersToInclude: Record<string, boolean>;
}

const METHOD = /^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,32}$/;
// A segment that routers and the SigV4 normaliser could read differently.
const UNNORMALIZED_PATH = /\/\/|\/\.\.?(?:\/|$)/;

function mismatch(detail: string): { ok: false; reason: 'SignatureMismatch'; detail: string } {
  return { ok: false, reason: 'SignatureMismatch', detail };
}

export function computeExpectedSignature(input: CanonicalRequestInput): StepResult<ExpectedSignature> {
  // aws4 turns a missing method into POST (with a body) or GET, and a path without '/' into one
  // with it: reject what it would rewrite.
  if (!METHOD.test(input.method)) return mismatch('request method is empty or not a token');
  if (!input.url.startsWith('/')) return mismatch('request target is not an absolute path');
  const queryIx = input.url.indexOf('?');
  const path = queryIx < 0 ? input.url : input.url.slice(0, queryIx);
  // SigV4 signs the normalised path, so '/a/../b' verifies as '/b'; KMS never sends those forms.
  if (UNNORMALIZED_PATH.test(path)) return mismatch('request path has empty, "." or ".." segments');

  const form = canonicalize(input);
  if (!form.ok) return form;
  const signingKey = (input.signingKeys ?? new SigningKeys()).get(input.accessKeyId, input.secretAccessKey, input.amzDate.slice(0, 8), input.region, input.service);
  return {
    ok: true,
    value: {
      signature: signingKey.sign(form.value.stringToSign),
      signedHeaders: form.value.signedHeaders,
      credentialScope: form.value.credentialScope,
    },
  };
}

/**
 * The canonical request and string to sign of a request, as SigV4 defines them (the path
 * normalised, the query sorted and encoded). Pure: computeExpectedSignature adds the shape checks
 * and the signing; the AWS test-suite vectors check this step alone.
 */
export function canonicalize(input: CanonicalInput): StepResult<CanonicalForm> {
  const queryIx = input.url.indexOf('?');
  const path = queryIx < 0 ? input.url : input.url.slice(0, queryIx);
  const direct = directCanonicalRequest(input.method, path, queryIx, input.signedHeaders, input.body);
  if (direct !== undefined) {
    const credentialScope = `${input.amzDate.slice(0, 8)}/${input.region}/${input.service}/aws4_request`;
    return {
      ok: true,
      value: {
        canonicalRequest: direct,
        stringToSign: `AWS4-HMAC-SHA256\n${input.amzDate}\n${credentialScope}\n${hash('sha256', direct, 'hex')}`,
        signedHeaders: [...input.signedHeaders.keys()].join(';'),
        credentialScope,
      },
    };
  }

  const headers: Record<string, string> = Object.create(null);
  const include: Record<string, boolean> = Object.create(null);
  for (const [name, value] of input.signedHeaders) {
    headers[name] = value;
    include[name] = true;
  }
  const request: Aws4VerifyRequest = {
    method: input.method,
    path: input.url,
    headers,
    body: input.body,
    service: input.service,
    region: input.region,
    // Otherwise aws4 adds and signs its own Content-Type, Content-Length and X-Amz-Date.
    doNotModifyHeaders: true,
    extraHeadersToInclude: include,
  };

  let form: CanonicalForm;
  try {
    // Credentials are only read by aws4's own signature(), which is never called here.
    const signer = new RequestSigner(request, { accessKeyId: '', secretAccessKey: '' });
    // With doNotModifyHeaders aws4 never reads x-amz-date (it falls back to Date or "now").
    signer.datetime = input.amzDate;
    const canonicalRequest = signer.canonicalString();
    // stringToSign() would rebuild it (re-hashing the body): reuse the one just computed.
    signer.canonicalString = () => canonicalRequest;
    form = {
      canonicalRequest,
      stringToSign: signer.stringToSign(),
      signedHeaders: signer.signedHeaders(),
      credentialScope: signer.credentialString(),
    };
  } catch {
    // parsePath runs decodeURI, which throws on malformed %-escapes.
    return mismatch('request target could not be canonicalized');
  }

  // aws4's query parsing silently drops parameters (empty names, __proto__, past 1000 keys);
  // every parameter received must appear in the canonical query.
  if (queryIx >= 0) {
    const received = input.url.slice(queryIx + 1).split('&').filter((p) => p !== '').length;
    const canonicalQuery = form.canonicalRequest.split('\n')[2] ?? '';
    const signed = canonicalQuery === '' ? 0 : canonicalQuery.split('&').length;
    if (received !== signed) return mismatch('query string has parameters that cannot be canonicalized');
  }
  return { ok: true, value: form };
}

// Every path aws4 leaves as it is: unreserved characters only, so neither parsePath's re-encoding
// nor the per-segment RFC 3986 encoding changes it.
const PLAIN_PATH = /^\/[A-Za-z0-9\-._~/]*$/;

/**
 * The canonical request of the shape KMS sends (no query string, a plain path), built in one string
 * instead of through a new aws4 RequestSigner per request; exactly what aws4's canonicalString()
 * gives for it (a unit test compares the two). undefined for any other shape: aws4 then builds it.
 */
export function directCanonicalRequest(method: string, path: string, queryIx: number, signedHeaders: ReadonlyMap<string, string>, body: Buffer): string | undefined {
  // '.' and '..' segments and empty ones are normalised away by SigV4: aws4 does that.
  if (queryIx >= 0 || !PLAIN_PATH.test(path) || UNNORMALIZED_PATH.test(path)) return undefined;
  let names = '';
  let canonicalHeaders = '';
  let previous = '';
  for (const [name, value] of signedHeaders) {
    // aws4 sorts the names; the verifier's come sorted (parseSignedHeaders), other callers may not.
    if (name <= previous || name !== name.toLowerCase()) return undefined;
    previous = name;
    names = names === '' ? name : `${names};${name}`;
    // aws4: value.toString().trim().replace(/\s+/g, ' ')
    canonicalHeaders += `${name}:${value.trim().replace(/\s+/g, ' ')}\n`;
  }
  // aws4 takes a signed x-amz-content-sha256 as the payload hash (payload-hash.ts checks it), else hashes the body.
  const bodyHash = signedHeaders.get('x-amz-content-sha256') || sha256Hex(body);
  return `${method}\n${path}\n\n${canonicalHeaders}\n${names}\n${bodyHash}`;
}
