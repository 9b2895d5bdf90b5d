// Shared fixtures: sign requests with independent signers and turn them into what node receives.
import { Sha256 } from '@aws-crypto/sha256-js';
import { HttpRequest } from '@smithy/protocol-http';
import { SignatureV4 } from '@smithy/signature-v4';
import * as aws4 from 'aws4';
import { SigV4Verifier, type IncomingSignedRequest, type SecretLookup } from '../../../src/auth/sigv4';

export const SERVICE = 'kms-xks-proxy';
export const REGION = 'us-east-1';
export const AKID = 'AKIAI2SFODNN7EXAMPLE';
export const SECRET = 'FYtE5EFA5FT0mCc3DrGUe2sti527BitkQ0Zr9MO9fvE';
export const NOW = Date.UTC(2024, 9, 9, 12, 34, 56);
export const HOST = 'xks.example.com';
export const PATH = '/keystores/ks-1/kms/xks/v1/keys/key-1/encrypt';
export const BODY = Buffer.from(
  JSON.stringify({
    requestMetadata: { awsPrincipalArn: 'arn:aws:iam::123456789012:user/Alice', kmsOperation: 'Encrypt', kmsRequestId: '4112f4d6' },
    plaintext: 'SGVsbG8gV29ybGQh',
    encryptionAlgorithm: 'AES_GCM',
  }),
);

export const lookup: SecretLookup = (id) => (id === AKID ? SECRET : undefined);

export function verifier(now: number = NOW): SigV4Verifier {
  return new SigV4Verifier({ service: SERVICE, now: () => now });
}

export function amzDate(ms: number): string {
  return new Date(ms).toISOString().replace(/[:-]|\.\d{3}/g, '');
}

export function rfc3986(s: string): string {
  return encodeURIComponent(s).replace(/[!'()*]/g, (c) => '%' + c.charCodeAt(0).toString(16).toUpperCase());
}

// Wire casing, as clients send it, so the verifier's case-insensitivity is exercised.
function wireName(name: string): string {
  return name.replace(/(^|-)([a-z])/g, (_m, dash: string, c: string) => dash + c.toUpperCase());
}

function toRawHeaders(headers: Record<string, string>): string[] {
  return Object.entries(headers).flatMap(([k, v]) => [wireName(k), v]);
}

export interface SmithySignOptions {
  accessKeyId?: string;
  secretAccessKey?: string;
  region?: string;
  service?: string;
  signingDate?: number;
  applyChecksum?: boolean;
  path?: string;
  query?: Record<string, string>;
  headers?: Record<string, string>;
  body?: Buffer;
  unsignableHeaders?: string[];
  signableHeaders?: string[];
}

/** Signs with the AWS SDK v3 signer (which adds x-amz-content-sha256 unless applyChecksum is false). */
export async function signWithSmithy(o: SmithySignOptions = {}): Promise<IncomingSignedRequest> {
  const signer = new SignatureV4({
    service: o.service ?? SERVICE,
    region: o.region ?? REGION,
    credentials: { accessKeyId: o.accessKeyId ?? AKID, secretAccessKey: o.secretAccessKey ?? SECRET },
    sha256: Sha256,
    applyChecksum: o.applyChecksum ?? true,
  });
  const path = o.path ?? PATH;
  const body = o.body ?? BODY;
  const request = new HttpRequest({
    method: 'POST',
    protocol: 'https:',
    hostname: HOST,
    path,
    query: o.query ?? {},
    headers: o.headers ?? { host: HOST, 'content-type': 'application/json' },
    body,
  });
  const signed = await signer.sign(request, {
    signingDate: new Date(o.signingDate ?? NOW),
    ...(o.unsignableHeaders ? { unsignableHeaders: new Set(o.unsignableHeaders) } : {}),
    ...(o.signableHeaders ? { signableHeaders: new Set(o.signableHeaders) } : {}),
  });
  const query = Object.entries(o.query ?? {}).map(([k, v]) => `${rfc3986(k)}=${rfc3986(v)}`).join('&');
  return {
    method: 'POST',
    url: query ? `${path}?${query}` : path,
    rawHeaders: toRawHeaders(signed.headers as Record<string, string>),
    body,
  };
}

/** Signs with aws4's own default path (it adds and signs Content-Length). */
export function signWithAws4(o: { path?: string; body?: Buffer; date?: number } = {}): IncomingSignedRequest {
  const path = o.path ?? PATH;
  const body = o.body ?? BODY;
  const signed = aws4.sign(
    {
      host: HOST,
      method: 'POST',
      path,
      service: SERVICE,
      region: REGION,
      headers: { 'Content-Type': 'application/json', 'X-Amz-Date': amzDate(o.date ?? NOW) },
      body,
    },
    { accessKeyId: AKID, secretAccessKey: SECRET },
  );
  const headers: Record<string, string> = {};
  for (const [k, v] of Object.entries(signed.headers ?? {})) headers[k.toLowerCase()] = String(v);
  return { method: 'POST', url: path, rawHeaders: toRawHeaders(headers), body };
}

export function getHeader(req: IncomingSignedRequest, name: string): string | undefined {
  for (let i = 0; i < req.rawHeaders.length; i += 2) {
    if (req.rawHeaders[i]!.toLowerCase() === name) return req.rawHeaders[i + 1];
  }
  return undefined;
}

/** Returns a copy with the header replaced (or appended when absent). */
export function setHeader(req: IncomingSignedRequest, name: string, value: string): IncomingSignedRequest {
  const raw = [...req.rawHeaders];
  let found = false;
  for (let i = 0; i < raw.length; i += 2) {
    if (raw[i]!.toLowerCase() === name) {
      raw[i + 1] = value;
      found = true;
    }
  }
  if (!found) raw.push(name, value);
  return { ...req, rawHeaders: raw };
}

export function removeHeader(req: IncomingSignedRequest, name: string): IncomingSignedRequest {
  const raw: string[] = [];
  for (let i = 0; i < req.rawHeaders.length; i += 2) {
    if (req.rawHeaders[i]!.toLowerCase() !== name) raw.push(req.rawHeaders[i]!, req.rawHeaders[i + 1]!);
  }
  return { ...req, rawHeaders: raw };
}

export function editAuthorization(req: IncomingSignedRequest, edit: (value: string) => string): IncomingSignedRequest {
  return setHeader(req, 'authorization', edit(getHeader(req, 'authorization')!));
}

export function signatureOf(req: IncomingSignedRequest): string {
  return /Signature=([0-9a-f]+)/.exec(getHeader(req, 'authorization')!)![1]!;
}
