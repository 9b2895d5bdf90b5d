// Step 1: parse the Authorization header.
// Shape: AWS4-HMAC-SHA256 Credential=<scope>, SignedHeaders=a;b, Signature=<64 hex>
import { setBounded } from '../../common/bounded-map';
import type { SigV4Failure, StepResult } from './verifier';

export const SIGV4_ALGORITHM = 'AWS4-HMAC-SHA256';

export interface ParsedAuthorization {
  credential: string;
  /** Lowercase, sorted, unique names, as listed by the client (frozen: parses may share it). */
  signedHeaders: readonly string[];
  /** The SignedHeaders value exactly as sent (compared with aws4's output later). */
  signedHeadersRaw: string;
  /** 64 lowercase hex characters. */
  signature: string;
}

// Real headers are ~250 bytes; the cap bounds work on hostile input.
const MAX_HEADER_LENGTH = 4096;
const MAX_SIGNED_HEADERS = 64;
// RFC 9110 token, lowercase only: SigV4 requires lowercase names.
const HEADER_NAME = /^[a-z0-9!#$%&'*+.^_`|~-]{1,128}$/;
const SIGNATURE = /^[0-9a-f]{64}$/;
const SCHEME = /^[A-Za-z][A-Za-z0-9._-]*$/;

function malformed(detail: string): SigV4Failure {
  return { ok: false, reason: 'MalformedAuthorization', detail };
}

const CANONICAL_START = `${SIGV4_ALGORITHM} Credential=`;
const SIGNED_HEADERS_PART = ', SignedHeaders=';
const SIGNATURE_PART = ', Signature=';
/** Printable ASCII other than space and comma: a parameter value the general parser would take whole. */
const PLAIN_VALUE = /^[\x21-\x2b\x2d-\x7e]+$/;

/**
 * Canonical headers' parses by everything before ", Signature=": KMS signs a day's requests with one
 * Credential and one SignedHeaders list, so per request only the signature is new. Only accepted
 * prefixes are kept, and at most this many (oldest out).
 */
const PARSED_PREFIXES_MAX = 64;
const parsedPrefixes = new Map<string, Omit<ParsedAuthorization, 'signature'>>();

/**
 * The header exactly as SigV4 signers (KMS, the AWS SDKs) write it, parsed without splitting:
 * undefined for any other spelling, which the general parser then reads (and explains). Accepts
 * only what the general parser accepts, with the same result.
 */
function parseCanonical(value: string): ParsedAuthorization | undefined {
  if (!value.startsWith(CANONICAL_START)) return undefined;
  const headersAt = value.indexOf(SIGNED_HEADERS_PART, CANONICAL_START.length);
  if (headersAt < 0) return undefined;
  const signatureAt = value.indexOf(SIGNATURE_PART, headersAt + SIGNED_HEADERS_PART.length);
  if (signatureAt < 0) return undefined;
  const signature = value.slice(signatureAt + SIGNATURE_PART.length);
  if (!SIGNATURE.test(signature)) return undefined;
  const prefix = value.slice(0, signatureAt);
  let parsed = parsedPrefixes.get(prefix);
  if (parsed === undefined) {
    const credential = value.slice(CANONICAL_START.length, headersAt);
    const signedHeadersRaw = value.slice(headersAt + SIGNED_HEADERS_PART.length, signatureAt);
    if (!PLAIN_VALUE.test(credential) || !PLAIN_VALUE.test(signedHeadersRaw)) return undefined;
    const signedHeaders = parseSignedHeaders(signedHeadersRaw);
    if (!signedHeaders.ok) return undefined;
    parsed = { credential, signedHeaders: Object.freeze(signedHeaders.value), signedHeadersRaw };
    setBounded(parsedPrefixes, prefix, parsed, PARSED_PREFIXES_MAX);
  }
  return { credential: parsed.credential, signedHeaders: parsed.signedHeaders, signedHeadersRaw: parsed.signedHeadersRaw, signature };
}

export function parseAuthorizationHeader(value: string): StepResult<ParsedAuthorization> {
  if (value.length > MAX_HEADER_LENGTH) return malformed('Authorization header is too long');
  const canonical = parseCanonical(value);
  if (canonical !== undefined) return { ok: true, value: canonical };
  // Checked first so that later details never echo control or non-ASCII bytes.
  if (!/^[\x20-\x7e\t]*$/.test(value)) return malformed('Authorization header has non-printable characters');

  const trimmed = value.trim();
  if (trimmed === '') return malformed('Authorization header is empty');

  const space = trimmed.search(/\s/);
  const algorithm = space < 0 ? trimmed : trimmed.slice(0, space);
  if (algorithm !== SIGV4_ALGORITHM) {
    return SCHEME.test(algorithm)
      ? { ok: false, reason: 'UnsupportedAlgorithm', detail: 'Authorization algorithm is not AWS4-HMAC-SHA256' }
      : malformed('Authorization header does not start with an algorithm name');
  }
  if (space < 0) return malformed('Authorization header has no parameters');

  // SDKs send ", " between parameters, some clients "," or extra spaces: accept any run of both.
  const parts = trimmed.slice(space).split(/[\s,]+/).filter((p) => p !== '');
  const params = new Map<string, string>();
  for (const part of parts) {
    const eq = part.indexOf('=');
    if (eq <= 0) return malformed('Authorization parameter is not of the form Name=value');
    const name = part.slice(0, eq);
    if (name !== 'Credential' && name !== 'SignedHeaders' && name !== 'Signature') {
      return malformed('Authorization header has an unexpected parameter');
    }
    if (params.has(name)) return malformed(`Authorization parameter ${name} is repeated`);
    params.set(name, part.slice(eq + 1));
  }

  const credential = params.get('Credential');
  const signedHeadersRaw = params.get('SignedHeaders');
  const signature = params.get('Signature');
  if (!credential) return malformed('Authorization header has no Credential');
  if (!signedHeadersRaw) return malformed('Authorization header has no SignedHeaders');
  if (!signature) return malformed('Authorization header has no Signature');
  if (!SIGNATURE.test(signature)) return malformed('Signature is not 64 lowercase hex characters');

  const signedHeaders = parseSignedHeaders(signedHeadersRaw);
  if (!signedHeaders.ok) return signedHeaders;

  return { ok: true, value: { credential, signedHeaders: signedHeaders.value, signedHeadersRaw, signature } };
}

export function parseSignedHeaders(raw: string): StepResult<string[]> {
  const names = raw.split(';');
  if (names.length > MAX_SIGNED_HEADERS) return malformed('SignedHeaders lists too many headers');
  for (let i = 0; i < names.length; i++) {
    const name = names[i]!;
    if (!HEADER_NAME.test(name)) return malformed('SignedHeaders has an empty or invalid header name');
    // The canonical list is sorted and unique; anything else cannot have come from a SigV4 signer.
    if (i > 0 && !(names[i - 1]! < name)) return malformed('SignedHeaders is not sorted or has duplicates');
  }
  // aws4 always deletes Authorization before signing, so it can never be a signed header.
  if (names.includes('authorization')) return malformed('SignedHeaders lists authorization');
  return { ok: true, value: names };
}
