import type { OperationServices } from './context';

export interface GetHealthStatusResponse {
  xksProxyFleetSize: number;
  xksProxyVendor: string;
  xksProxyModel: string;
  ekmVendor: string;
  ekmFleetDetails: Array<{ id: string; model: string; healthStatus: 'ACTIVE' | 'DEGRADED' | 'UNAVAILABLE' }>;
}

/**
 * Answers from the deep check the health monitor runs in the background, so the call stays far
 * inside KMS's 250 ms. Never subject to secondary authorization (spec MUST).
 */
export function getHealthStatus(services: OperationServices): GetHealthStatusResponse {
  const token = services.hsm.tokenInfo();
  return {
    xksProxyFleetSize: services.proxy.fleetSize,
    xksProxyVendor: services.proxy.vendor,
    xksProxyModel: services.proxy.model,
    ekmVendor: services.proxy.ekmVendor ?? token.manufacturerId,
    ekmFleetDetails: [
      {
        id: services.hsm.id,
        model: `${token.model} hw ${token.hardwareVersion} fw ${token.firmwareVersion}`,
        healthStatus: services.health.current().status,
      },
    ],
  };
}
