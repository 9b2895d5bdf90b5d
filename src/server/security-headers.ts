import type { IncomingMessage, ServerResponse } from 'node:http';
import helmet from 'helmet';

export type HeaderList = ReadonlyArray<readonly [name: string, value: string]>;

/**
 * helmet configured for a JSON API that no browser should render, frame or cache (OWASP REST
 * security cheat sheet): HSTS, nosniff, a deny-everything CSP, frame denial, no referrer, same-origin
 * resources. helmet's page-oriented defaults (its long document CSP, Origin-Agent-Cluster, COOP,
 * DNS-prefetch, IE and Flash headers) protect nothing here and are written on every response.
 */
export function apiHelmet(): ReturnType<typeof helmet> {
  return helmet({
    contentSecurityPolicy: { useDefaults: false, directives: { defaultSrc: ["'none'"], frameAncestors: ["'none'"] } },
    strictTransportSecurity: { maxAge: 31_536_000, includeSubDomains: true },
    xContentTypeOptions: true,
    xFrameOptions: { action: 'deny' },
    referrerPolicy: { policy: 'no-referrer' },
    crossOriginResourcePolicy: { policy: 'same-origin' },
    crossOriginOpenerPolicy: false,
    crossOriginEmbedderPolicy: false,
    originAgentCluster: false,
    xDnsPrefetchControl: false,
    xDownloadOptions: false,
    xPermittedCrossDomainPolicies: false,
    xXssProtection: false,
  });
}

/** Responses carry ciphertexts and key metadata: no shared or private cache may keep them. */
export const NO_STORE: readonly [string, string] = ['Cache-Control', 'no-store'];

/**
 * The API's headers (apiHelmet's, plus no-store), captured once by running helmet against a
 * recording response. helmet stays the single source of the policy; the XKS fast path replays its
 * output instead of running its middlewares on every request. The policy is static (no nonces),
 * so one capture holds for every response.
 */
export function captureApiHeaders(middleware = apiHelmet()): HeaderList {
  const headers = new Map<string, readonly [string, string]>();
  const recorder = {
    setHeader(name: string, value: string | number | readonly string[]) {
      headers.set(name.toLowerCase(), [name, String(value)]);
      return recorder;
    },
    removeHeader(name: string) {
      headers.delete(name.toLowerCase());
    },
    getHeader(name: string) {
      return headers.get(name.toLowerCase())?.[1];
    },
  };
  let completed = false;
  middleware({ method: 'POST', url: '/', headers: {} } as IncomingMessage, recorder as unknown as ServerResponse, (err?: unknown) => {
    if (err) throw err instanceof Error ? err : new Error(String(err));
    completed = true;
  });
  // A future helmet that answered or deferred would make a capture wrong: refuse to start instead.
  if (!completed) throw new Error('helmet did not complete synchronously; cannot capture its headers');
  headers.set(NO_STORE[0].toLowerCase(), NO_STORE);
  return [...headers.values()];
}
