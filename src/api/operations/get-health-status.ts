import { Type } from '@sinclair/typebox';
import { AsciiJson } from '../../common/ascii-json';
import type { FleetMemberHealth } from '../../hsm';
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
  return healthStatusOf(services.proxy, services.health.members().slice(0, MAX_FLEET_DETAILS));
}

function healthStatusOf(proxy: ProxyFacts, members: readonly FleetMemberHealth[]): GetHealthStatusResponse {
  const known = members.find((member) => member.token !== undefined)?.token;
  return {
    xksProxyFleetSize: proxy.fleetSize,
    xksProxyVendor: proxy.vendor,
    xksProxyModel: proxy.model,
    ekmVendor: proxy.ekmVendor ?? known?.manufacturerId ?? 'unknown',
    ekmFleetDetails: members.map((member) => ({
      id: member.id,
      model: member.token
        ? `${member.token.model} hw ${member.token.hardwareVersion} fw ${member.token.firmwareVersion}`
        : `${member.profile} HSM (not reached yet)`,
      healthStatus: member.healthStatus,
    })),
  };
}

type ProxyFacts = OperationServices['proxy'];

/** The last answer's text and what it was built from: an HSM's health changes seldom, KMS asks every few seconds. */
let last: { proxy: ProxyFacts; members: FleetMemberHealth[]; text: AsciiJson } | undefined;

/** getHealthStatus's answer as its JSON text, serialised again only when one of its inputs changed. */
export function healthStatusAnswer(services: OperationServices): AsciiJson {
  const { proxy } = services;
  const members = services.health.members().slice(0, MAX_FLEET_DETAILS);
  if (last !== undefined && sameProxy(last.proxy, proxy) && sameMembers(last.members, members)) return last.text;
  const text = AsciiJson.of(healthStatusOf(proxy, members));
  last = { proxy: { ...proxy }, members, text };
  return text;
}

function sameProxy(a: ProxyFacts, b: ProxyFacts): boolean {
  return a.fleetSize === b.fleetSize && a.vendor === b.vendor && a.model === b.model && a.ekmVendor === b.ekmVendor;
}

/** A token is replaced, never changed in place (cluster-member.ts reads it at each connect). */
function sameMembers(a: readonly FleetMemberHealth[], b: readonly FleetMemberHealth[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) {
    const x = a[i] as FleetMemberHealth;
    const y = b[i] as FleetMemberHealth;
    if (x.id !== y.id || x.profile !== y.profile || x.token !== y.token || x.healthStatus !== y.healthStatus) return false;
  }
  return true;
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
  handle: (services) => healthStatusAnswer(services),
});
