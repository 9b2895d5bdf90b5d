import { Type } from '@sinclair/typebox';
import { Metadata } from '../schema-parts';
import type { OperationServices } from './context';
import { xksOperation } from './operation';

export interface GetHealthStatusResponse {
  xksProxyFleetSize: number;
  xksProxyVendor: string;
  xksProxyModel: string;
  ekmVendor: string;
  ekmFleetDetails: Array<{ id: string; model: string; healthStatus: 'ACTIVE' | 'DEGRADED' | 'UNAVAILABLE' }>;
}

/** The spec caps ekmFleetDetails at ten entries; the config caps the cluster at ten HSMs. */
const MAX_FLEET_DETAILS = 10;

/**
 * Answers from the deep checks run in the background, one entry per HSM, so the call stays far
 * inside KMS's 250 ms. Never subject to secondary authorization (spec MUST).
 */
export function getHealthStatus(services: OperationServices): GetHealthStatusResponse {
  const members = services.health.members().slice(0, MAX_FLEET_DETAILS);
  const known = members.find((member) => member.token !== undefined)?.token;
  return {
    xksProxyFleetSize: services.proxy.fleetSize,
    xksProxyVendor: services.proxy.vendor,
    xksProxyModel: services.proxy.model,
    ekmVendor: services.proxy.ekmVendor ?? known?.manufacturerId ?? 'unknown',
    ekmFleetDetails: members.map((member) => ({
      id: member.id,
      model: member.token
        ? `${member.token.model} hw ${member.token.hardwareVersion} fw ${member.token.firmwareVersion}`
        : `${member.profile} HSM (not reached yet)`,
      healthStatus: member.healthStatus,
    })),
  };
}

/** Only the two fields the spec marks REQUIRED for GetHealthStatus; nothing else of its body is validated. */
export const getHealthStatusSchema = () =>
  Type.Object({
    requestMetadata: Type.Object({ kmsRequestId: Metadata.kmsRequestId, kmsOperation: Metadata.kmsOperation }),
  });

export const getHealthStatusOperation = xksOperation({
  name: 'GetHealthStatus',
  route: { path: 'health' },
  schema: getHealthStatusSchema,
  probe: true,
  handle: (services) => getHealthStatus(services),
});
