/**
 * The settings a reload cannot change (HSM sessions, sockets, listeners, logger, audit file), by
 * their config-file names: a reload reports which of them changed and keeps their running values
 * (src/server/restart-only-settings.ts), and the generated reference marks each of them, so the
 * document and the reload read one list.
 */
export const RESTART_ONLY_FIELDS = [
  'hsm',
  'hsms',
  'cluster',
  'server.host',
  'server.port',
  // Set on the listener and its ticket-key timer when it starts.
  'server.handshakeTimeoutMs',
  'server.maxConnections',
  'server.reservedDescriptors',
  'server.tls.ticketKeyRotationSeconds',
  // Read by the SIGTERM handlers and, under serve --workers N, the primary's kill backstop, which
  // never reloads: one value for both until the restart.
  'server.shutdownTimeoutMs',
  'admin',
  'health',
  'logging',
  'audit',
] as const;

export type RestartOnlyField = (typeof RESTART_ONLY_FIELDS)[number];
