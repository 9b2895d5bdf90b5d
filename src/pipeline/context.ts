import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Deadline } from '../hsm';

/** The log line's (and audit entry's) fields: written by the steps, never read back to decide anything. */
export type LogFields = Record<string, string | number | undefined>;

/** The body of a request before (or without) its read: shared, never written to. */
export const NO_BODY = Buffer.alloc(0);

/**
 * One request's typed state, created once per request and handed to every step. Data that steps pass
 * to each other (caller, region, TLS client, body) lives here; `fields` only collects what is logged.
 */
export class RequestContext<Route, State> {
  readonly started = process.hrtime.bigint();
  status = 200;
  /** The wire errorName (XKS) or __type (KMS) of the answer; '' for a success. */
  errorName = '';
  /** Counted in the shared in-flight limit (and so released once at the end). */
  admitted = false;
  body: Buffer = NO_BODY;
  /** The parsed JSON body; undefined when it is not JSON or repeats a member name. */
  document: unknown = undefined;
  /** The SigV4 caller, set once the signature verified. */
  accessKeyId = '';
  region = '';
  /** With mutual TLS: the client certificate name that matched. */
  tlsClient: string | undefined = undefined;

  constructor(
    readonly req: IncomingMessage,
    readonly res: ServerResponse,
    /** The protocol's match: an XKS route or a KMS API target. */
    readonly route: Route,
    /** The config generation the request started on: read once, so a reload never splits a request. */
    readonly state: State,
    /** The metric labels of this request. */
    readonly operation: string,
    readonly keyStore: string,
    readonly deadline: Deadline,
    readonly fields: LogFields,
  ) {}
}
