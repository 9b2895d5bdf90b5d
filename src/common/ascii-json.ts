/**
 * An answer's JSON text, already serialised and ASCII only (an operation's encodeResult), so its
 * length is its byte count. Kept as a string, not bytes: Node then sends the headers and the body
 * as one string write, where a Buffer body goes out as a two-part writev that TLS copies again
 * (two more ArrayBuffers per answer).
 */
export class AsciiJson {
  constructor(readonly text: string) {}

  /** JSON.stringify's text with every non-ASCII character as a \u escape: the same JSON value. */
  static of(value: unknown): AsciiJson {
    return new AsciiJson(JSON.stringify(value).replace(/[\u007f-\uffff]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`));
  }
}
