/** The admin listener's answers when something goes wrong: plain, and never a stack trace. */
import { expect } from 'chai';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createAdminAppFrom, type AdminSource } from '../../../src/server/admin';

async function serve(source: AdminSource): Promise<{ url: string; server: Server }> {
  const server = createServer(createAdminAppFrom(source));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, server };
}

describe('admin listener: failures', () => {
  let admin: { url: string; server: Server };
  const failures: unknown[] = [];
  before(async () => {
    admin = await serve({
      readinessFailed: (err) => failures.push(err),
      metrics: async () => ({ contentType: 'text/plain', body: 'm 1\n' }),
      readiness: async () => {
        throw new Error('worker IPC failed at /opt/xks-proxy/dist/src/server/cluster/readiness.js');
      },
    });
  });
  after(() => admin.server.close());

  it('answers /ready 503 with a JSON reason when readiness cannot be determined, without the error or a stack trace', async () => {
    const res = await fetch(`${admin.url}/ready`);
    expect(res.status).to.equal(503);
    const text = await res.text();
    expect(JSON.parse(text)).to.deep.equal({ ready: false, reason: 'readiness could not be determined' });
    expect(text).not.to.match(/IPC|\/opt\/|at /);
    expect(failures.map((err) => (err as Error).message)).to.deep.equal(['worker IPC failed at /opt/xks-proxy/dist/src/server/cluster/readiness.js']);
  });

  it('answers an unknown path 404 in plain text, not an HTML page echoing the path', async () => {
    const res = await fetch(`${admin.url}/%3Cscript%3E`);
    expect(res.status).to.equal(404);
    expect(res.headers.get('content-type')).to.match(/^text\/plain/);
    expect(await res.text()).to.equal('not found\n');
  });
});
