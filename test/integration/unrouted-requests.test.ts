/**
 * A request no API takes (KMS configured with a wrong XksProxyUriPath, a scanner) is answered 404
 * InvalidUriPathException, and logged and counted like an API's: the wrong-path runbook and
 * XksProxyNonRetryableErrors look for it. /ping, the load balancer's probe, is neither.
 * (test/integration/log-redaction.test.ts checks that a hostile path itself is never logged.)
 */
import { expect } from 'chai';
import { metricsText, sample } from '../support/admin-http';
import { startHarness, type Harness } from '../support/proxy-harness';
import { requestMetadata } from '../support/xks-client';

describe('requests no API takes: logged and counted (integration)', function () {
  this.timeout(30_000);
  let h: Harness;
  before(async () => {
    h = await startHarness();
  });
  after(async () => h?.stop());

  const unrouted = (): Array<Record<string, unknown>> =>
    h.logs.map((l) => JSON.parse(l) as Record<string, unknown>).filter((l) => l.message === 'xks request' && l.operation === 'Unknown');
  const counted = async (): Promise<number | undefined> =>
    sample(await metricsText(h.proxy.adminUrl as string), 'xks_requests_total{operation="Unknown",key_store="",status="404",error_name="InvalidUriPathException"}');

  it('a signed request to a wrong XksProxyUriPath: 404, one warn line naming the prefix KMS used, one count', async () => {
    const res = await h.client.send('/wrong-prefix/kms/xks/v1/health', { body: { requestMetadata: requestMetadata('CreateCustomKeyStore') } });
    expect(res.status).to.equal(404);
    expect((res.json as { errorName?: string }).errorName).to.equal('InvalidUriPathException');
    const lines = unrouted();
    expect(lines).to.have.length(1);
    expect(lines[0]).to.include({ level: 'warn', status: 404, errorName: 'InvalidUriPathException', method: 'POST', uriPrefix: '/wrong-prefix' });
    expect(lines[0]).to.have.property('latencyMs').that.is.a('number');
    expect(JSON.stringify(lines[0])).not.to.match(/authorization|AWS4-HMAC-SHA256|Signature=/i);
    expect(await counted()).to.equal(1);
  });

  it('a GET of an unknown path is counted too; /ping is neither logged nor counted', async () => {
    const before = unrouted().length;
    expect((await h.client.send('/nothing-here', { method: 'GET', credential: null })).status).to.equal(404);
    expect((await h.client.send('/ping', { method: 'GET', credential: null })).status).to.equal(200);
    expect(unrouted().length).to.equal(before + 1);
    expect(unrouted().at(-1), 'a path not shaped like an XKS request is not logged: it is request data').not.to.have.property('uriPrefix');
    expect(await counted()).to.equal(2);
  });
});
