/**
 * An answer's JSON text, already serialised and ASCII only (an operation's encodeResult), so its
 * length is its byte count. Kept as a string, not bytes: Node then sends the headers and the body
 * as one string write, where a Buffer body goes out as a two-part writev that TLS copies again
 * (two more ArrayBuffers per answer).
 */
export class AsciiJson {
  constructor(readonly text: string) {}
}
