// Composes the steps: parse Authorization, check scope and date, look up the secret,
// check the payload hash, rebuild the canonical request and its signature, compare in constant time.
import { timingSafeEqual } from 'node:crypto';
import { parseAuthorizationHeader } from './authorization-header';
import { checkScope, parseCredential, scopeString } from './credential-scope';
import { checkClockSkew, parseAmzDate } from './request-date';
import { CONTENT_SHA256_HEADER, checkPayloadHash } from './payload-hash';
import { computeExpectedSignature, readHeaders } from './canonical-request';
import { SigningKeys } from './signing-key';

export interface IncomingSignedRequest {
  method: string;
  /** Raw request target as received: path plus optional ?query (node's req.url). */
  url: string;
  /** node's req.rawHeaders: [name, value, name, value, ...] */
  rawHeaders: string[];
  body: Buffer;
}

export interface SigV4VerifierOptions {
  service: string;
  maxClockSkewMs?: number;
  now?: () => number;
  /**
   * Lower-case headers the protocol takes meaning from outside the signed path (the KMS API's
   * x-amz-target names the operation): a signature must cover them too, else it can be replayed with
   * another value. Added to host and x-amz-date.
   */
  requiredSignedHeaders?: readonly string[];
}

export type SecretLookup = (accessKeyId: string) => string | undefined;

export type SigV4FailureReason =
  | 'MissingAuthorization' | 'MalformedAuthorization' | 'UnsupportedAlgorithm'
  | 'MissingSignedHeader' | 'MalformedDate' | 'RequestExpired' | 'ScopeMismatch'
  | 'UnknownAccessKey' | 'PayloadHashMismatch' | 'SignatureMismatch';

export type SigV4Result =
  | { ok: true; accessKeyId: string; region: string }
  /** allowedSkewSeconds: the limit a RequestExpired broke (the configured skew), which the client is told. */
  | { ok: false; reason: SigV4FailureReason; detail: string; accessKeyId?: string; allowedSkewSeconds?: number };

export type SigV4Failure = Extract<SigV4Result, { ok: false }>;

/** What each step returns: a value, or the failure to report. */
export type StepResult<T> = { ok: true; value: T } | SigV4Failure;

export const DEFAULT_MAX_CLOCK_SKEW_MS = 300_000;

// KMS signs both (spec Appendix A); without them a signature is replayable to other hosts/times.
const REQUIRED_SIGNED_HEADERS = ['host', 'x-amz-date'] as const;

export class SigV4Verifier {
  private readonly service: string;
  private readonly maxClockSkewMs: number;
  private readonly now: () => number;
  private readonly requiredSignedHeaders: readonly string[];
  private readonly signingKeys = new SigningKeys();

  constructor(options: SigV4VerifierOptions) {
    if (!/^[a-z0-9-]+$/.test(options.service)) {
      throw new Error('SigV4Verifier: service must be a non-empty [a-z0-9-]+ name');
    }
    const skew = options.maxClockSkewMs ?? DEFAULT_MAX_CLOCK_SKEW_MS;
    if (!Number.isFinite(skew) || skew < 0) {
      throw new Error('SigV4Verifier: maxClockSkewMs must be a finite number >= 0');
    }
    const extra = options.requiredSignedHeaders ?? [];
    if (!extra.every((name) => /^[a-z0-9-]+$/.test(name))) {
      throw new Error('SigV4Verifier: requiredSignedHeaders must be lower-case [a-z0-9-]+ names');
    }
    this.service = options.service;
    this.maxClockSkewMs = skew;
    this.now = options.now ?? Date.now;
    this.requiredSignedHeaders = [...REQUIRED_SIGNED_HEADERS, ...extra];
  }

  /** Never throws: any unexpected error is reported as a failure. */
  verify(request: IncomingSignedRequest, lookupSecret: SecretLookup): SigV4Result {
    try {
      return this.verifySteps(request, lookupSecret);
    } catch {
      return { ok: false, reason: 'SignatureMismatch', detail: 'request could not be verified' };
    }
  }

  private verifySteps(request: IncomingSignedRequest, lookupSecret: SecretLookup): SigV4Result {
    // aws4 fills in what is missing (no method + body = POST), so check types before it sees them.
    if (
      typeof request.method !== 'string' || typeof request.url !== 'string' ||
      !Array.isArray(request.rawHeaders) || !Buffer.isBuffer(request.body)
    ) {
      return { ok: false, reason: 'SignatureMismatch', detail: 'request method, target, headers or body are not in raw form' };
    }
    const received = readHeaders(request.rawHeaders);

    if (received.authorizationCount === 0) return { ok: false, reason: 'MissingAuthorization', detail: 'request has no Authorization header' };
    if (received.authorizationCount > 1) {
      return { ok: false, reason: 'MalformedAuthorization', detail: 'request has more than one Authorization header' };
    }
    const auth = parseAuthorizationHeader(received.authorization!);
    if (!auth.ok) return auth;
    const parsedScope = parseCredential(auth.value.credential);
    if (!parsedScope.ok) return parsedScope;
    const scope = parsedScope.value;
    const accessKeyId = scope.accessKeyId;
    // A literal, not { ...failure, accessKeyId }: V8 gives each such spread copy a hidden class of its own.
    const fail = (failure: SigV4Failure): SigV4Failure => ({ ok: false, reason: failure.reason, detail: failure.detail, accessKeyId });

    for (const name of this.requiredSignedHeaders) {
      if (!auth.value.signedHeaders.includes(name)) {
        return fail({ ok: false, reason: 'MissingSignedHeader', detail: `SignedHeaders does not include ${name}` });
      }
    }
    const signedValues = new Map<string, string>();
    for (const name of auth.value.signedHeaders) {
      const value = received.values[name];
      if (value === undefined) {
        return fail({ ok: false, reason: 'MissingSignedHeader', detail: `signed header ${name} is not in the request` });
      }
      signedValues.set(name, value);
    }

    const amzDate = signedValues.get('x-amz-date')!;
    const requestTime = parseAmzDate(amzDate);
    if (!requestTime.ok) return fail(requestTime);
    const expired = checkClockSkew(requestTime.value, this.now(), this.maxClockSkewMs);
    // With the limit it broke, which the client is told.
    if (expired) return { ok: false, reason: expired.reason, detail: expired.detail, accessKeyId, allowedSkewSeconds: expired.allowedSkewSeconds };

    const scopeFailure = checkScope(scope, amzDate, this.service);
    if (scopeFailure) return scopeFailure;

    let secret: string | undefined;
    try {
      secret = lookupSecret(accessKeyId);
    } catch {
      return fail({ ok: false, reason: 'UnknownAccessKey', detail: 'secret lookup failed for the access key ID' });
    }
    if (typeof secret !== 'string' || secret === '') {
      return fail({ ok: false, reason: 'UnknownAccessKey', detail: 'access key ID is not configured' });
    }

    const payloadFailure = checkPayloadHash(signedValues.get(CONTENT_SHA256_HEADER), request.body);
    if (payloadFailure) return fail(payloadFailure);

    const expected = computeExpectedSignature({
      method: request.method,
      url: request.url,
      signedHeaders: signedValues,
      body: request.body,
      accessKeyId,
      secretAccessKey: secret,
      amzDate,
      region: scope.region,
      service: this.service,
      signingKeys: this.signingKeys,
    });
    if (!expected.ok) return fail(expected);
    // aws4 filters and reorders headers itself; a different list means it signed something else.
    if (expected.value.signedHeaders !== auth.value.signedHeadersRaw) {
      return fail({ ok: false, reason: 'SignatureMismatch', detail: 'canonical SignedHeaders differs from the request' });
    }
    if (expected.value.credentialScope !== scopeString(scope)) {
      return fail({ ok: false, reason: 'SignatureMismatch', detail: 'canonical credential scope differs from the request' });
    }
    if (!constantTimeEqual(expected.value.signature, auth.value.signature)) {
      return fail({ ok: false, reason: 'SignatureMismatch', detail: 'signature does not match' });
    }
    return { ok: true, accessKeyId, region: scope.region };
  }
}

function constantTimeEqual(a: string, b: string): boolean {
  const x = Buffer.from(a, 'utf8');
  const y = Buffer.from(b, 'utf8');
  // timingSafeEqual throws on different lengths; the length of a hex signature is public anyway.
  return x.length === y.length && timingSafeEqual(x, y);
}
