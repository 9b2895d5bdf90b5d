/**
 * GetHealthStatus's cached answer text: the same text while its inputs stay, a new one as soon as an
 * HSM's health, its token or the proxy's own facts change, and always the JSON getHealthStatus builds.
 */
import { expect } from 'chai';
import type { OperationServices } from '../../../src/api/operations/context';
import { getHealthStatus, healthStatusAnswer } from '../../../src/api/operations/get-health-status';
import type { FleetMemberHealth } from '../../../src/hsm';
import type { TokenInfo } from '../../../src/hsm/types';

const token = (model: string): TokenInfo => ({
  label: 'xks',
  manufacturerId: 'SoftHSM project',
  model,
  serialNumber: '1',
  hardwareVersion: '2.6',
  firmwareVersion: '2.6',
  libraryDescription: 'softhsm',
  libraryVersion: '2.6',
});

function servicesWith(members: FleetMemberHealth[], proxy: OperationServices['proxy']): OperationServices {
  return { health: { members: () => members.map((m) => ({ ...m })) }, proxy } as unknown as OperationServices;
}

describe('GetHealthStatus answer text (unit)', () => {
  const proxy = { fleetSize: 2, vendor: 'v', model: 'm' };
  const hsmA: FleetMemberHealth = { id: 'a', profile: 'softhsm', token: token('SoftHSM v2'), healthStatus: 'ACTIVE', serving: true };

  it('is the JSON of getHealthStatus, and the same text while nothing changes', () => {
    const services = servicesWith([hsmA], proxy);
    const first = healthStatusAnswer(services);
    expect(JSON.parse(first.text)).to.deep.equal(getHealthStatus(services));
    expect(healthStatusAnswer(services)).to.equal(first);
  });

  it('is built again when an HSM\'s health, its token or the proxy\'s facts change', () => {
    const members = [{ ...hsmA }];
    const services = servicesWith(members, { ...proxy });
    const first = healthStatusAnswer(services);
    members[0] = { ...hsmA, healthStatus: 'DEGRADED' };
    const degraded = healthStatusAnswer(services);
    expect(degraded).to.not.equal(first);
    expect(JSON.parse(degraded.text).ekmFleetDetails[0].healthStatus).to.equal('DEGRADED');
    members[0] = { ...hsmA, healthStatus: 'DEGRADED', token: token('SoftHSM v3') };
    expect(JSON.parse(healthStatusAnswer(services).text).ekmFleetDetails[0].model).to.match(/^SoftHSM v3 /);
    members.push({ id: 'b', profile: 'softhsm', token: undefined, healthStatus: 'UNAVAILABLE', serving: false });
    expect(JSON.parse(healthStatusAnswer(services).text).ekmFleetDetails).to.have.length(2);
    services.proxy.fleetSize = 3;
    expect(JSON.parse(healthStatusAnswer(services).text).xksProxyFleetSize).to.equal(3);
  });

  it('writes a non-ASCII token model as \\u escapes: ASCII text, the same JSON value', () => {
    const services = servicesWith([{ ...hsmA, token: token('Modèle ☃') }], proxy);
    const text = healthStatusAnswer(services).text;
    expect(text).to.match(/^[\x20-\x7e]*$/);
    expect(JSON.parse(text)).to.deep.equal(getHealthStatus(services));
  });
});
