/**
 * A lean HTTPS/1.1 client for the paced generator: keep-alive TLS connections, each sending one
 * pre-serialised request at a time (as KMS does: no pipelining) and reading just the status and
 * Content-Length of the answer. node:https's client allocated a ClientRequest, an IncomingMessage and
 * their header objects per request; at 2,000 req/s the generator's own GC then stalled it for up
 * to 190 ms, and a stall of the generator reads as the server's latency.
 */
import { connect, type TLSSocket } from 'node:tls';

export interface WireRequest {
  method: string;
  path: string;
  headers: Record<string, string>;
  body: string;
}

/** The request as bytes on the wire, with Content-Length (and Host) set if the headers lack them. */
export function serialize(request: WireRequest, host: string): Buffer {
  const body = Buffer.from(request.body, 'utf8');
  const names = new Set(Object.keys(request.headers).map((n) => n.toLowerCase()));
  const lines = [`${request.method} ${request.path} HTTP/1.1`];
  if (!names.has('host')) lines.push(`host: ${host}`);
  for (const [name, value] of Object.entries(request.headers)) lines.push(`${name}: ${value}`);
  if (!names.has('content-length')) lines.push(`content-length: ${String(body.length)}`);
  return Buffer.concat([Buffer.from(`${lines.join('\r\n')}\r\n\r\n`, 'latin1'), body]);
}

const HEADER_END = Buffer.from('\r\n\r\n');

/**
 * The parts of a response head the generator needs. `complete` is the byte length of head and body
 * together once known; undefined while the head is still incomplete.
 */
export function parseHead(data: Buffer): { status: string; complete: number; close: boolean } | undefined {
  const end = data.indexOf(HEADER_END);
  if (end === -1) return undefined;
  const head = data.toString('latin1', 0, end);
  const status = head.slice(9, 12);
  const length = /\r\ncontent-length:\s*(\d+)/i.exec(head);
  return { status, complete: end + 4 + (length ? Number(length[1]) : 0), close: /\r\nconnection:\s*close/i.test(head) };
}

/** One keep-alive connection; `send` only while idle. */
class Connection {
  private received: Buffer | undefined;
  private answer: ((status: string) => void) | undefined;
  closed = false;

  constructor(
    readonly socket: TLSSocket,
    private readonly onDone: (connection: Connection, reusable: boolean) => void,
  ) {
    socket.on('data', (chunk: Buffer) => this.read(chunk));
    const gone = (): void => this.fail();
    socket.on('error', gone);
    socket.on('close', gone);
  }

  send(bytes: Buffer, answer: (status: string) => void): void {
    this.answer = answer;
    this.received = undefined;
    this.socket.write(bytes);
  }

  private read(chunk: Buffer): void {
    this.received = this.received ? Buffer.concat([this.received, chunk]) : chunk;
    const head = parseHead(this.received);
    if (!head || this.received.length < head.complete) return;
    const answer = this.answer;
    this.answer = undefined;
    this.received = undefined;
    if (head.close) this.socket.end();
    // Idle again before the answer's handler runs: it may send the next request at once.
    this.onDone(this, !head.close);
    answer?.(head.status);
  }

  private fail(): void {
    if (this.closed) return;
    this.closed = true;
    this.socket.destroy();
    const answer = this.answer;
    this.answer = undefined;
    this.onDone(this, false);
    answer?.('error');
  }
}

/**
 * Connections to one server, opened when no idle one is left (the caller bounds how many requests it
 * has in flight); idle ones are reused last-in first-out (as node's Agent does), and a reconnect
 * resumes the last TLS session.
 */
export class LeanPool {
  private readonly idle: Connection[] = [];
  private readonly all = new Set<Connection>();
  private session: Buffer | undefined;

  constructor(
    private readonly host: string,
    private readonly port: number,
  ) {}

  /** Sends on an idle connection, or a new one; the caller keeps its own count under the maximum. */
  request(bytes: Buffer, answer: (status: string) => void): void {
    let connection = this.idle.pop();
    while (connection?.closed) connection = this.idle.pop();
    (connection ?? this.open()).send(bytes, answer);
  }

  private open(): Connection {
    const socket = connect({ host: this.host, port: this.port, rejectUnauthorized: false, session: this.session, ALPNProtocols: ['http/1.1'] });
    socket.setNoDelay(true);
    socket.on('session', (session: Buffer) => (this.session = session));
    const connection = new Connection(socket, (c, reusable) => {
      if (reusable && !c.closed) this.idle.push(c);
      else this.all.delete(c);
    });
    this.all.add(connection);
    return connection;
  }

  destroy(): void {
    for (const connection of this.all) connection.socket.destroy();
    this.all.clear();
    this.idle.length = 0;
  }
}
