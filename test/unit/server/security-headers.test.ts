import { expect } from 'chai';
import helmet from 'helmet';
import { apiHelmet, captureApiHeaders } from '../../../src/server/security-headers';

describe('API security headers', () => {
  it('captures exactly what helmet sets, plus Cache-Control: no-store', () => {
    const captured = new Map(captureApiHeaders().map(([name, value]) => [name.toLowerCase(), value]));
    expect(Object.fromEntries(captured)).to.deep.equal({
      'content-security-policy': "default-src 'none';frame-ancestors 'none'",
      'cross-origin-resource-policy': 'same-origin',
      'referrer-policy': 'no-referrer',
      'strict-transport-security': 'max-age=31536000; includeSubDomains',
      'x-content-type-options': 'nosniff',
      'x-frame-options': 'DENY',
      'cache-control': 'no-store',
    });
  });

  it('replays another helmet policy faithfully (the capture is not a hard-coded list)', () => {
    const captured = new Map(captureApiHeaders(helmet()).map(([name, value]) => [name.toLowerCase(), value]));
    expect(captured.get('x-dns-prefetch-control')).to.equal('off');
    expect(captured.get('content-security-policy')).to.include("default-src 'self'");
    expect(captured.get('cache-control')).to.equal('no-store');
  });

  it('refuses to start on a middleware that does not complete synchronously', () => {
    const deferred = ((_req: unknown, _res: unknown, next: () => void) => setImmediate(next)) as unknown as ReturnType<typeof apiHelmet>;
    expect(() => captureApiHeaders(deferred)).to.throw(/synchronously/);
  });
});
