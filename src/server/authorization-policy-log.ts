import type { RuntimeConfig } from '../config/runtime';
import type { Logger } from '../observability/logger';

/** Logs each key store's loaded Cedar policies and their warnings (at start and after each reload). */
export function logAuthorizationPolicies(config: RuntimeConfig, logger: Logger): void {
  for (const store of config.keyStores) {
    const authz = store.security?.authorization;
    if (!authz) continue;
    logger.info('authorization policies loaded', {
      keyStore: store.name,
      policyFile: authz.policyFile,
      authzMode: authz.mode,
      policies: authz.policies.policyIds.join(','),
    });
    for (const warning of authz.policies.warnings) logger.warn('authorization policy warning', { keyStore: store.name, policyWarning: warning });
  }
}
