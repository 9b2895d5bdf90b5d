/**
 * An XKS client for tests: requests signed by the AWS SDK's own signer (@smithy/signature-v4),
 * independent of the proxy's aws4-based verifier, sent over real HTTPS.
 */
import { createHash, createHmac, type Hash, type Hmac } from 'node:crypto';
import { request as httpsRequest, type RequestOptions } from 'node:https';
import { Sha256 } from '@aws-crypto/sha256-js';
import { HttpRequest } from '@smithy/protocol-http';
import { SignatureV4 } from '@smithy/signature-v4';

export interface Credential {
  accessKeyId: string;
  secretAccessKey: string;
}

export interface XksResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  text: string;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  json: any;
}

export interface SendOptions {
  method?: string;
  credential?: Credential | null;
  region?: string;
  service?: string;
  signingDate?: Date;
  headers?: Record<string, string>;
  /** Raw body; objects are JSON-encoded. */
  body?: string | Buffer | object;
  /** Send (and sign) no Content-Type header. */
  noContentType?: boolean;
  /** Change the request after signing (tamper tests). */
  afterSign?: (req: { path: string; headers: Record<string, string>; body: Buffer }) => void;
  /** Send only this many bytes of the body, then close the connection (a client that leaves mid-body); answers status 0. */
  cutBodyAfter?: number;
}

/** SHA-256 for the SDK signer from node:crypto: the signer's logic stays the SDK's, hashing gets fast (load tests). */
export class NodeSha256 {
  private hash: Hash | Hmac;
  private readonly secret: Buffer | undefined;
  constructor(secret?: string | ArrayBuffer | ArrayBufferView) {
    this.secret =
      secret === undefined
        ? undefined
        : typeof secret === 'string'
          ? Buffer.from(secret)
          : ArrayBuffer.isView(secret)
            ? Buffer.from(secret.buffer, secret.byteOffset, secret.byteLength)
            : Buffer.from(secret);
    this.hash = this.fresh();
  }
  update(data: string | Uint8Array): void {
    this.hash.update(data);
  }
  digest(): Promise<Uint8Array> {
    return Promise.resolve(new Uint8Array(this.hash.digest()));
  }
  reset(): void {
    this.hash = this.fresh();
  }
  private fresh(): Hash | Hmac {
    return this.secret === undefined ? createHash('sha256') : createHmac('sha256', this.secret);
  }
}

/** Client certificate for mutual TLS, and connection reuse. */
export interface ClientTls {
  cert?: string | Buffer;
  key?: string | Buffer;
  /** A keep-alive agent (load tests): no TLS handshake per request. Default: a new connection each time. */
  agent?: import('node:https').Agent;
  /** Hash with node:crypto instead of the SDK's pure-JS SHA-256 (load tests). */
  nodeHash?: boolean;
}

export class XksClient {
  constructor(
    readonly baseUrl: string,
    readonly ca: Buffer,
    readonly defaultCredential: Credential,
    readonly tls: ClientTls = {},
  ) {}

  async send(path: string, options: SendOptions = {}): Promise<XksResponse> {
    const url = new URL(this.baseUrl);
    const body =
      options.body === undefined
        ? Buffer.alloc(0)
        : Buffer.isBuffer(options.body)
          ? options.body
          : Buffer.from(typeof options.body === 'string' ? options.body : JSON.stringify(options.body));
    const headers: Record<string, string> = {
      host: url.host,
      'content-type': 'application/json',
      ...(options.headers ?? {}),
    };
    if (options.noContentType) delete headers['content-type'];
    const method = options.method ?? 'POST';
    const credential = options.credential === undefined ? this.defaultCredential : options.credential;
    let signedHeaders = headers;
    if (credential) {
      const signer = new SignatureV4({
        service: options.service ?? 'kms-xks-proxy',
        region: options.region ?? 'us-east-1',
        credentials: credential,
        sha256: this.tls.nodeHash ? NodeSha256 : Sha256,
      });
      const signed = await signer.sign(
        new HttpRequest({ method, protocol: 'https:', hostname: url.hostname, port: Number(url.port), path, headers, body }),
        options.signingDate ? { signingDate: options.signingDate } : {},
      );
      signedHeaders = signed.headers as Record<string, string>;
    }
    const mutable = { path, headers: { ...signedHeaders }, body };
    options.afterSign?.(mutable);
    if (options.cutBodyAfter !== undefined) return cutRequest(url, this.ca, method, mutable.path, mutable.headers, mutable.body, options.cutBodyAfter);
    return rawRequest(url, this.ca, method, mutable.path, mutable.headers, mutable.body, this.tls);
  }
}

export function rawRequest(
  url: URL,
  ca: Buffer,
  method: string,
  path: string,
  headers: Record<string, string>,
  body: Buffer,
  tls: ClientTls = {},
): Promise<XksResponse> {
  return new Promise((resolve, reject) => {
    const req = httpsRequest(
      requestOptions(url, ca, method, path, headers, body, tls),
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          let json: unknown;
          try {
            json = JSON.parse(text);
          } catch {
            json = undefined;
          }
          resolve({ status: res.statusCode ?? 0, headers: res.headers, text, json });
        });
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

function requestOptions(url: URL, ca: Buffer, method: string, path: string, headers: Record<string, string>, body: Buffer, tls: ClientTls = {}): RequestOptions {
  return {
    host: url.hostname,
    port: url.port,
    method,
    path,
    ca,
    servername: 'localhost',
    headers: { ...headers, 'content-length': String(body.length) },
    agent: tls.agent ?? false,
    ...(tls.cert ? { cert: tls.cert } : {}),
    ...(tls.key ? { key: tls.key } : {}),
  };
}

/** Sends the headers and the first `bytes` of the body, then closes the connection once the server has had them. */
function cutRequest(url: URL, ca: Buffer, method: string, path: string, headers: Record<string, string>, body: Buffer, bytes: number): Promise<XksResponse> {
  return new Promise((resolve) => {
    const req = httpsRequest(requestOptions(url, ca, method, path, headers, body));
    req.on('error', () => undefined);
    req.on('close', () => resolve({ status: 0, headers: {}, text: '', json: undefined }));
    req.write(body.subarray(0, bytes));
    setTimeout(() => req.destroy(), 200);
  });
}

/** Base64 helpers for building XKS bodies. */
export const b64 = (data: string | Buffer): string => (typeof data === 'string' ? Buffer.from(data) : data).toString('base64');

export function requestMetadata(kmsOperation: string, extra: Record<string, string> = {}): Record<string, string> {
  return {
    awsPrincipalArn: 'arn:aws:iam::123456789012:user/Alice',
    kmsKeyArn: 'arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab',
    kmsOperation,
    kmsRequestId: `req-${Math.random().toString(36).slice(2)}`,
    ...extra,
  };
}
