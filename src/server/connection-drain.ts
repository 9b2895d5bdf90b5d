/**
 * Closing a server's kept-alive connections without cutting a request (the technique of the
 * http-terminator package): `server.close()` stops new connections and closes the idle ones once,
 * but a connection busy at that moment stays open after its answer and goes on taking requests
 * (KMS keeps its connections), so the drain waited out its whole grace period and then cut them.
 * Here each connection is closed as soon as its current answer is out: an answer not yet written
 * says `Connection: close`, and so does any request that still arrives on a connection meanwhile.
 */
import type { Server as HttpServer, ServerResponse } from 'node:http';
import type { Server as HttpsServer } from 'node:https';
import type { Socket } from 'node:net';
import { Server as TlsServer } from 'node:tls';

/** The response a socket is answering now (node sets it; http-terminator reads it the same way). */
type HttpSocket = Socket & { _httpMessage?: ServerResponse | null };

export class ConnectionDrain {
  private readonly sockets = new Set<HttpSocket>();

  constructor(private readonly server: HttpServer | HttpsServer) {
    // TLS: the socket HTTP runs on is the TLS one ('secureConnection'); plain HTTP: 'connection'.
    const event = server instanceof TlsServer ? 'secureConnection' : 'connection';
    server.on(event, (socket: HttpSocket) => {
      this.sockets.add(socket);
      socket.once('close', () => this.sockets.delete(socket));
    });
  }

  /**
   * Stops accepting, closes idle connections now and busy ones after their current answer;
   * after graceMs (if given) cuts the rest. Resolves once every connection is closed, with the
   * number that had to be cut.
   */
  close(graceMs?: number): Promise<number> {
    return new Promise((resolve) => {
      let forced = 0;
      let timer: NodeJS.Timeout | undefined;
      this.server.close(() => {
        clearTimeout(timer);
        resolve(forced);
      });
      // A request that still arrives on an open connection is answered, then its connection closes.
      this.server.prependListener('request', (_req, res: ServerResponse) => res.setHeader('Connection', 'close'));
      this.closeAfterCurrentAnswers();
      if (graceMs !== undefined) {
        timer = setTimeout(() => {
          forced = this.sockets.size;
          this.server.closeAllConnections();
        }, graceMs);
        timer.unref();
      }
    });
  }

  /**
   * Closes idle connections now and each busy one (of those `which` selects; all by default) once
   * its current answer is out. Also the mTLS gate's way to retire connections of an old policy.
   */
  closeAfterCurrentAnswers(which?: (socket: Socket) => boolean): void {
    // Idle by node's own account (a request still arriving is not idle; its answer will say close).
    this.server.closeIdleConnections();
    for (const socket of this.sockets) {
      const res = socket._httpMessage;
      if (res === undefined || res === null || (which !== undefined && !which(socket))) continue;
      if (!res.headersSent) res.setHeader('Connection', 'close');
      // Its answer went out saying keep-alive: end the connection once the answer is complete.
      else if (res.writableFinished) socket.end();
      else res.once('finish', () => socket.end());
    }
  }
}
