/**
 * SIGTERM with KMS-like kept-alive connections (the real CLI, 1 and 2 workers): the drain answers
 * the request in flight, closes each connection once its answer is out (Connection: close), and
 * the process exits as soon as that is done, not at the end of server.shutdownTimeoutMs; under
 * steady traffic on kept-alive connections no request is cut. Node's server.close() alone left a
 * connection that was busy at SIGTERM open, taking requests, until the grace period cut it.
 */
import { expect } from 'chai';
import { Agent, request as httpsRequest } from 'node:https';
import { Sha256 } from '@aws-crypto/sha256-js';
import { HttpRequest } from '@smithy/protocol-http';
import { SignatureV4 } from '@smithy/signature-v4';
import { startCliProxy, type CliProxy } from '../support/cli-proxy';
import { waitFor } from '../support/wait';
import { b64, requestMetadata, XksClient, type XksResponse } from '../support/xks-client';

const encryptBody = (text: string) => ({ requestMetadata: requestMetadata('Encrypt'), plaintext: b64(text), encryptionAlgorithm: 'AES_GCM' });

/** A signed Encrypt on `agent`'s kept-alive connection: half its body now, the rest when the returned function is called. */
async function halfSentEncrypt(p: CliProxy, agent: Agent): Promise<() => Promise<XksResponse>> {
  const url = new URL(p.url);
  const path = `/kms/xks/v1/keys/${p.keys.main}/encrypt`;
  const body = Buffer.from(JSON.stringify(encryptBody('in flight')));
  const signer = new SignatureV4({ service: 'kms-xks-proxy', region: 'us-east-1', credentials: p.credential, sha256: Sha256 });
  const signed = await signer.sign(new HttpRequest({ method: 'POST', protocol: 'https:', hostname: url.hostname, port: Number(url.port), path, body, headers: { host: url.host, 'content-type': 'application/json' } }));
  let sendRest: () => void = () => undefined;
  const response = new Promise<XksResponse>((resolve, reject) => {
    const req = httpsRequest(
      { host: url.hostname, port: url.port, method: 'POST', path, ca: p.ca, servername: 'localhost', agent, headers: { ...(signed.headers as Record<string, string>), 'content-length': String(body.length) } },
      (res) => {
        let text = '';
        res.on('data', (d: Buffer) => (text += d.toString()));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, text, json: text ? JSON.parse(text) : undefined }));
      },
    );
    req.on('error', reject);
    req.write(body.subarray(0, Math.floor(body.length / 2)));
    sendRest = () => req.end(body.subarray(Math.floor(body.length / 2)));
  });
  // Let the first half reach the proxy before SIGTERM.
  await new Promise((resolve) => setTimeout(resolve, 100));
  return () => {
    sendRest();
    return response;
  };
}

for (const workers of [1, 2]) {
  describe(`SIGTERM drains kept-alive connections (integration, real CLI, --workers ${workers})`, function () {
    this.timeout(60_000);
    let p: CliProxy | undefined;
    afterEach(async () => p?.stop());

    it('answers the request in flight with Connection: close and exits long before the grace period ends', async () => {
      p = await startCliProxy({ workers, shutdownTimeoutMs: 8000 });
      const proxy = p;
      const agent = new Agent({ keepAlive: true, maxSockets: 1, ca: proxy.ca });
      const client = new XksClient(proxy.url, proxy.ca, proxy.credential, { agent });
      // The kept-alive connection KMS would hold.
      expect((await client.send(`/kms/xks/v1/keys/${proxy.keys.main}/encrypt`, { body: encryptBody('warm') })).status).to.equal(200);
      const finish = await halfSentEncrypt(proxy, agent);
      const sigtermAt = Date.now();
      proxy.child.kill('SIGTERM');
      // Every worker: the kept-alive connection is one worker's, and another's line may come first.
      if (workers > 1) await waitFor(() => new Set(proxy.logs.filter((l) => l.message === 'worker draining').map((l) => l.worker)).size === workers, "every worker's draining line");
      else await waitFor(() => proxy.stderr().includes('received SIGTERM') || proxy.logs.some((l) => /shutting down|draining/.test(String(l.message))), 'the drain to begin');
      const answer = await finish();
      expect(answer.status, answer.text).to.equal(200);
      expect(answer.headers.connection).to.equal('close');
      const code = await proxy.exited;
      agent.destroy();
      expect(code).to.equal(0);
      expect(Date.now() - sigtermAt, 'exit after the only in-flight request').to.be.lessThan(4000);
      expect(proxy.logs.filter((l) => (l.forcedConnections as number | undefined) ?? 0 > 0)).to.deep.equal([]);
    });

    it('under steady traffic on kept-alive connections, every request the proxy took is answered, and it exits long before the grace period ends', async () => {
      p = await startCliProxy({ workers, shutdownTimeoutMs: 8000 });
      const proxy = p;
      const agent = new Agent({ keepAlive: true, maxSockets: 4, ca: proxy.ca });
      const client = new XksClient(proxy.url, proxy.ca, proxy.credential, { agent, nodeHash: true });
      const outcomes: Record<string, number> = {};
      let sigtermAt = 0;
      const loop = async (): Promise<void> => {
        for (;;) {
          const outcome = await client.send(`/kms/xks/v1/keys/${proxy.keys.main}/encrypt`, { body: encryptBody('x') }).then(
            (r) => `status ${r.status}`,
            (e: NodeJS.ErrnoException) => e.code ?? e.message,
          );
          outcomes[outcome] = (outcomes[outcome] ?? 0) + 1;
          // Refused: the listener is closed, as it should be once draining; a client moves on.
          if (sigtermAt && outcome === 'ECONNREFUSED') return;
        }
      };
      const loops = [loop(), loop(), loop(), loop()];
      await new Promise((r) => setTimeout(r, 500));
      sigtermAt = Date.now();
      proxy.child.kill('SIGTERM');
      await proxy.exited;
      const exitMs = Date.now() - sigtermAt;
      await Promise.all(loops);
      agent.destroy();
      const taken = proxy.logs.filter((l) => l.message === 'xks request');
      const detail = `client outcomes ${JSON.stringify(outcomes)}; proxy statuses ${JSON.stringify(taken.map((l) => l.status).filter((s) => s !== 200))}`;
      expect(exitMs, detail).to.be.lessThan(3000);
      // Every request the proxy took was answered 200, and each of those answers reached the client.
      expect(taken.every((l) => l.status === 200), detail).to.equal(true);
      expect(outcomes['status 200'], detail).to.equal(taken.length);
      // Only connection refusals (and resets of a request written onto a connection that was idle at
      // SIGTERM, which node's server.close() closes at once) otherwise.
      expect(Object.keys(outcomes).filter((o) => !['status 200', 'ECONNREFUSED', 'ECONNRESET'].includes(o)), detail).to.deep.equal([]);
    });
  });
}
