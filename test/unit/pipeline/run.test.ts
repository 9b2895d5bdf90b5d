/**
 * runPipeline's order of steps and its error mapping, with a minimal protocol adapter over a real
 * node:http server; requests are signed by @smithy/signature-v4 and verified by the real verifier.
 */
import { expect } from 'chai';
import { createServer, request as httpRequest, type ClientRequest, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { PassThrough } from 'node:stream';
import { toXksError } from '../../../src/api/errors';
import { ProxyError } from '../../../src/core/errors';
import { Deadline, HsmError } from '../../../src/hsm';
import { toKmsError } from '../../../src/kms-api/errors';
import { createLogger } from '../../../src/observability/logger';
import { XksMetrics } from '../../../src/observability/metrics';
import { InFlightRequests } from '../../../src/pipeline/admission';
import { RequestContext } from '../../../src/pipeline/context';
import { runPipeline, type ProtocolAdapter } from '../../../src/pipeline/run';
import { BODY, lookup, NOW, signWithSmithy, verifier } from '../sigv4/helpers';

interface Toy {
  /** What the toy operation does. */
  handle: () => unknown;
  limit?: number;
}

interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Record<string, unknown>;
}

describe('request pipeline: order of steps and error mapping (unit, real HTTP)', () => {
  let server: Server;
  let port: number;
  let toy: Toy;
  let steps: string[];
  let logText: string;
  let inFlightCounts: number[];
  let wire: 'xks' | 'kms';
  const audited: Array<Record<string, unknown>> = [];
  let auditThrows = false;
  let crashes = 0;

  const stream = new PassThrough();
  stream.on('data', (d: Buffer) => (logText += d.toString()));
  const inFlight = new InFlightRequests((n) => inFlightCounts.push(n));
  const adapter: ProtocolAdapter<Toy, undefined> = {
    logMessage: 'toy request',
    contentType: 'application/json',
    headers: ['X-Toy', '1'],
    sinks: { metrics: new XksMetrics(), logger: createLogger({ level: 'info', stream }), audit: {
        record: (f) => {
          if (auditThrows) throw new Error('audit sink failed');
          audited.push({ ...f });
        },
      },
    },
    inFlight,
    admissionWaitMs: () => 0,
    toWireError: (err) => (wire === 'xks' ? toXksError(err) : toKmsError(err)),
    inFlightLimit: (ctx) => ctx.route.limit,
    maxBodyBytes: () => 1024,
    methodMessage: () => 'toy accepts only POST',
    checkRoute: () => steps.push('route'),
    verifier: () => {
      steps.push('sigv4');
      return verifier(NOW);
    },
    secrets: () => lookup,
    admitCaller: (ctx) => steps.push(`caller ${ctx.accessKeyId}`),
    parsed: () => steps.push('parsed'),
    checkContentType: (_ctx, type) => {
      steps.push(`content-type ${type}`);
      if (type !== 'application/json') throw new ProxyError('Validation', 'Content-Type must be application/json');
    },
    handle: (ctx) => {
      steps.push('handle');
      expect(ctx.document).to.be.an('object');
      return ctx.route.handle();
    },
  };

  before(async () => {
    server = createServer((req, res) => {
      const ctx = new RequestContext(req, res, toy, undefined, 'Toy', 'ks-1', Deadline.after(1000), { operation: 'Toy' });
      // Counted only: in these tests the answer has gone out before the step that throws.
      runPipeline(adapter, ctx, () => crashes++);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    port = (server.address() as AddressInfo).port;
  });
  after(() => new Promise<void>((resolve) => server.close(() => resolve())));
  beforeEach(() => {
    toy = { handle: () => ({ ok: true }), limit: 4 };
    steps = [];
    logText = '';
    inFlightCounts = [];
    wire = 'xks';
    audited.length = 0;
    auditThrows = false;
    crashes = 0;
  });

  interface SendOptions { method?: string; body?: Buffer; contentType?: string; sign?: boolean; secret?: string; headers?: Record<string, string> }

  /** A request signed by @smithy/signature-v4, its body still to be written; `answer` settles with the response. */
  async function open(options: SendOptions = {}): Promise<{ req: ClientRequest; body: Buffer; answer: Promise<Answer> }> {
    const body = options.body ?? BODY;
    const signed = await signWithSmithy({ body, ...(options.secret ? { secretAccessKey: options.secret } : {}) });
    const headers: Record<string, string> = {};
    for (let i = 0; i < signed.rawHeaders.length; i += 2) headers[signed.rawHeaders[i] as string] = signed.rawHeaders[i + 1] as string;
    if (options.sign === false) delete headers.Authorization;
    headers['Content-Type'] = options.contentType ?? 'application/json';
    if (options.method !== 'GET') headers['Content-Length'] = String(body.length);
    Object.assign(headers, options.headers);
    let req: ClientRequest | undefined;
    const answer = new Promise<Answer>((resolve, reject) => {
      req = httpRequest({ host: '127.0.0.1', port, method: options.method ?? 'POST', path: signed.url, headers, setHost: false }, (res: IncomingMessage) => {
        let text = '';
        res.on('data', (d: Buffer) => (text += d.toString()));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: JSON.parse(text) as Record<string, unknown> }));
      });
      req.on('error', reject);
    });
    return { req: req as unknown as ClientRequest, body, answer };
  }

  async function send(options: SendOptions = {}): Promise<Answer> {
    const { req, body, answer } = await open(options);
    req.end(options.method === 'GET' ? undefined : body);
    return answer;
  }

  const logLine = async (): Promise<Record<string, unknown>> => {
    await new Promise((resolve) => setImmediate(resolve));
    return JSON.parse(logText.trim()) as Record<string, unknown>;
  };

  it('runs route, body, admission, SigV4, caller, JSON, Content-Type and the operation in that order, and answers once', async () => {
    const answer = await send();
    expect(answer.status).to.equal(200);
    expect(answer.body).to.deep.equal({ ok: true });
    expect(answer.headers['x-toy']).to.equal('1');
    expect(steps).to.deep.equal(['route', 'sigv4', 'caller AKIAI2SFODNN7EXAMPLE', 'parsed', 'content-type application/json', 'handle']);
    expect(inFlightCounts).to.deep.equal([1, 0]);
    expect(await logLine()).to.include({ message: 'toy request', operation: 'Toy', status: 200, accessKeyId: 'AKIAI2SFODNN7EXAMPLE' });
    expect(audited).to.have.length(1);
  });

  it('hands a request whose outcome could not be recorded to the crash handler, before and after the body', async () => {
    auditThrows = true;
    // After the body: the answer went out, then the audit step threw.
    const answered = await send();
    expect(answered.status).to.equal(200);
    // Before the body: the method is refused, then the audit step threw.
    const { req, answer } = await open({ method: 'GET' });
    req.end();
    const refused = await answer;
    expect(refused.status).to.equal(405);
    await new Promise((resolve) => setImmediate(resolve));
    expect(crashes).to.equal(2);
    expect(inFlightCounts).to.deep.equal([1, 0]);
  });

  it('sheds at the in-flight limit before SigV4, with the protocol\'s throttling error', async () => {
    toy.limit = 0;
    const answer = await send();
    expect(answer.status).to.equal(429);
    expect(answer.body).to.include({ errorName: 'ThrottlingException' });
    expect(steps).to.deep.equal(['route']);
    expect(inFlightCounts).to.deep.equal([]);
  });

  it('takes a slot only once the body is in: a request still sending its body holds none', async () => {
    toy.limit = 1;
    // Expect: 100-continue only makes the server say when it has dispatched the request.
    const slow = await open({ headers: { Expect: '100-continue' } });
    const dispatched = new Promise((resolve) => slow.req.once('continue', resolve));
    slow.req.flushHeaders();
    await dispatched;
    slow.req.write(slow.body.subarray(0, 10));
    let other: Answer;
    try {
      other = await send();
    } finally {
      slow.req.end(slow.body.subarray(10));
    }
    expect(other.status).to.equal(200);
    expect((await slow.answer).status).to.equal(200);
    expect(inFlightCounts).to.deep.equal([1, 0, 1, 0]);
  });

  it('refuses a method other than POST first: 405 with Allow in XKS terms, ValidationException in KMS terms', async () => {
    const xks = await send({ method: 'GET' });
    expect(xks.status).to.equal(405);
    expect(xks.body).to.include({ errorName: 'UnsupportedOperationException' });
    wire = 'kms';
    const kms = await send({ method: 'GET' });
    expect(kms.status).to.equal(400);
    expect(kms.body).to.deep.equal({ __type: 'ValidationException', message: 'The KMS API accepts only POST' });
    expect(steps).to.deep.equal([]);
  });

  it('stops at a bad signature: AuthenticationFailedException (XKS), InvalidSignatureException (KMS)', async () => {
    const xks = await send({ secret: 'wrong' });
    expect(xks.status).to.equal(401);
    expect(xks.body).to.include({ errorName: 'AuthenticationFailedException' });
    wire = 'kms';
    const kms = await send({ sign: false });
    expect(kms.status).to.equal(400);
    expect(kms.body).to.include({ __type: 'MissingAuthenticationTokenException' });
    expect(steps).to.deep.equal(['route', 'sigv4', 'route', 'sigv4']);
    expect(await logLine().catch(() => ({}))).to.be.an('object');
  });

  it('closes the connection after a body over the maximum', async () => {
    const answer = await send({ body: Buffer.alloc(2048, 0x20) });
    expect(answer.status).to.equal(501);
    expect(answer.headers.connection).to.equal('close');
    expect(steps).to.deep.equal(['route']);
  });

  it('maps a domain error through the protocol\'s one table, with the HSM return code logged and not answered', async () => {
    toy.handle = () => {
      throw new ProxyError('Internal', 'The HSM reported a device failure', new HsmError('Device', 'C_Encrypt failed: CKR_DEVICE_ERROR', 'CKR_DEVICE_ERROR'));
    };
    const answer = await send();
    expect(answer.status).to.equal(500);
    expect(answer.body).to.deep.equal({ errorName: 'InternalException', errorMessage: 'The HSM reported a device failure' });
    expect(JSON.stringify(answer.body)).not.to.include('CKR_');
    expect(await logLine()).to.include({ status: 500, errorName: 'InternalException', hsmReturnCode: 'CKR_DEVICE_ERROR' });
  });

  it('answers an unexpected exception as an internal error, logging its message but never sending it', async () => {
    toy.handle = () => {
      throw new TypeError('bug detail');
    };
    wire = 'kms';
    const answer = await send();
    expect(answer.status).to.equal(500);
    expect(answer.body).to.deep.equal({ __type: 'KMSInternalException', message: 'Internal error' });
    expect(await logLine()).to.include({ internalError: 'bug detail' });
  });

  it('releases the in-flight count after an error too', async () => {
    toy.handle = () => Promise.reject(new ProxyError('KeyNotFound', 'The key is not served by this key store'));
    const answer = await send();
    expect(answer.status).to.equal(404);
    expect(inFlightCounts).to.deep.equal([1, 0]);
  });
});
