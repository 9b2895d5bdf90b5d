import { expect } from 'chai';
import { PassThrough } from 'node:stream';
import { createLogger } from '../../../src/observability/logger';

function capture(): { logger: ReturnType<typeof createLogger>; lines: () => Array<Record<string, unknown>>; raw: () => string } {
  const stream = new PassThrough();
  let text = '';
  stream.on('data', (d: Buffer) => (text += d.toString()));
  return {
    logger: createLogger({ level: 'info', stream }),
    lines: () => text.trim().split('\n').map((line) => JSON.parse(line) as Record<string, unknown>),
    raw: () => text,
  };
}

describe('logger', () => {
  it('writes one JSON object per line: timestamp, level, message, then the fields in call order', async () => {
    const { logger, raw } = capture();
    logger.info('xks request', { operation: 'Encrypt', status: 200, latencyMs: 1.5 });
    await new Promise((resolve) => setImmediate(resolve));
    const line = raw().trim();
    expect(line).to.match(/^\{"timestamp":"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z","level":"info","message":"xks request","operation":"Encrypt","status":200,"latencyMs":1.5\}$/);
  });

  it('drops fields that could carry secrets, whatever their case', async () => {
    const { logger, lines, raw } = capture();
    logger.warn('oops', { plaintext: 'CANARY-1', Authorization: 'CANARY-2', secretAccessKey: 'CANARY-3', PIN: 'CANARY-4', body: 'CANARY-5', additionalAuthenticatedData: 'CANARY-6', keep: 'yes' });
    await new Promise((resolve) => setImmediate(resolve));
    expect(raw()).not.to.include('CANARY');
    expect(lines()[0]).to.include({ level: 'warn', message: 'oops', keep: 'yes' });
  });

  it('never throws on values JSON.stringify cannot write (BigInt, cycles)', async () => {
    const { logger, lines } = capture();
    const cycle: Record<string, unknown> = { name: 'c' };
    cycle.self = cycle;
    logger.error('odd values', { big: 10n, cycle });
    await new Promise((resolve) => setImmediate(resolve));
    const [line] = lines();
    expect(line).to.include({ level: 'error', message: 'odd values', big: 10 });
    expect(line?.cycle).to.deep.equal({ name: 'c', self: '[Circular]' });
    expect(line?.timestamp).to.be.a('string');
  });
});
