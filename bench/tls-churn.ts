/**
 * Connection churn and its price (issue #16 part 4): new TLS connections per second during a run
 * (xks_tls_handshakes_total, full and resumed), the server CPU of one full and one resumed handshake,
 * and the server's idle CPU per second (the fixed cost a low request rate divides among few requests).
 */
import { connect as tlsConnect } from 'node:tls';

export interface HandshakeCounts {
  full: number;
  resumed: number;
}

async function metric(adminUrl: string, series: string): Promise<number> {
  const text = await (await fetch(`${adminUrl}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line ? Number(line.slice(series.length + 1)) : 0;
}

export async function handshakeCounts(adminUrl: string): Promise<HandshakeCounts> {
  return {
    full: await metric(adminUrl, 'xks_tls_handshakes_total{resumed="false"}'),
    resumed: await metric(adminUrl, 'xks_tls_handshakes_total{resumed="true"}'),
  };
}

/** "new TLS connections 0.1/s (full 0.1/s, resumed 0/s)" between two counts. */
export function churnNote(before: HandshakeCounts, after: HandshakeCounts, seconds: number): string {
  const rate = (n: number) => Math.round((n / seconds) * 100) / 100;
  const full = after.full - before.full;
  const resumed = after.resumed - before.resumed;
  return `new TLS connections ${rate(full + resumed)}/s (full ${rate(full)}/s, resumed ${rate(resumed)}/s)`;
}

/** Runs `run` and appends the TLS churn it caused to its row's note. */
export async function withChurn<T extends { note?: string }>(adminUrl: string | undefined, run: () => Promise<T>): Promise<T> {
  if (!adminUrl) return run();
  const before = await handshakeCounts(adminUrl);
  const started = Date.now();
  const row = await run();
  const note = churnNote(before, await handshakeCounts(adminUrl), (Date.now() - started) / 1000);
  row.note = row.note ? `${row.note}; ${note}` : note;
  process.stderr.write(`  ${note}\n`);
  return row;
}

/** One connection: handshake (resuming `session` if given), optionally one request so the server sends a ticket. */
function connectOnce(url: URL, session?: Buffer, wantTicket = false): Promise<Buffer | undefined> {
  return new Promise((resolve, reject) => {
    const socket = tlsConnect({ host: url.hostname, port: Number(url.port), rejectUnauthorized: false, servername: 'localhost', ...(session ? { session } : {}) });
    let ticket: Buffer | undefined;
    socket.on('session', (t: Buffer) => (ticket ??= t));
    socket.once('secureConnect', () => {
      if (!wantTicket) return socket.destroy();
      socket.write('GET /ping HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n');
      socket.resume();
    });
    socket.once('close', () => resolve(ticket));
    socket.once('error', reject);
  });
}

/**
 * Server CPU µs of one full and one resumed TLS handshake (connect, handshake, close; no request),
 * sequential, `count` of each.
 */
export async function handshakeCpu(url: string, cpuSeconds: () => number, count = 300): Promise<{ fullUs: number; resumedUs: number }> {
  const target = new URL(url);
  const perHandshake = async (session?: Buffer): Promise<number> => {
    const before = cpuSeconds();
    for (let i = 0; i < count; i++) await connectOnce(target, session);
    return Math.round(((cpuSeconds() - before) * 1e6) / count);
  };
  const fullUs = await perHandshake();
  const ticket = await connectOnce(target, undefined, true);
  const resumedUs = ticket ? await perHandshake(ticket) : Number.NaN;
  return { fullUs, resumedUs };
}

/** Server CPU µs per second with no requests at all (timers, health checks, metrics collection). */
export async function idleCpuUsPerSecond(cpuSeconds: () => number, seconds = 10): Promise<number> {
  const before = cpuSeconds();
  await new Promise((r) => setTimeout(r, seconds * 1000));
  return Math.round(((cpuSeconds() - before) * 1e6) / seconds);
}
