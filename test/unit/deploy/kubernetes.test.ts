/**
 * deploy/kubernetes: every manifest is schema-checked against the Kubernetes (and prometheus-operator)
 * OpenAPI schemas shipped by kubernetes-models, and the pieces are checked to fit together: probes,
 * ports, selectors, Secret/ConfigMap names, mount paths vs. the embedded proxy config (itself checked
 * against the proxy's config schema), shutdown timing, and the PrometheusRule vs. the rules file.
 */
import { expect } from 'chai';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import Ajv from 'ajv';
import { parse, parseAllDocuments } from 'yaml';
import { Namespace } from 'kubernetes-models/v1/Namespace';
import { ServiceAccount } from 'kubernetes-models/v1/ServiceAccount';
import { ConfigMap } from 'kubernetes-models/v1/ConfigMap';
import { Secret } from 'kubernetes-models/v1/Secret';
import { Service } from 'kubernetes-models/v1/Service';
import { Deployment } from 'kubernetes-models/apps/v1/Deployment';
import { PodDisruptionBudget } from 'kubernetes-models/policy/v1/PodDisruptionBudget';
import { HorizontalPodAutoscaler } from 'kubernetes-models/autoscaling/v2/HorizontalPodAutoscaler';
import { NetworkPolicy } from 'kubernetes-models/networking.k8s.io/v1/NetworkPolicy';
import { ServiceMonitor } from '@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/ServiceMonitor';
import { PrometheusRule } from '@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/PrometheusRule';
import { ConfigSchema } from '../../../src/config/schema';

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Doc = Record<string, any>;
const DIR = join(__dirname, '../../../../deploy/kubernetes');
const MODELS: Record<string, new (data: never) => { validate(): void }> = {
  'v1/Namespace': Namespace,
  'v1/ServiceAccount': ServiceAccount,
  'v1/ConfigMap': ConfigMap,
  'v1/Secret': Secret,
  'v1/Service': Service,
  'apps/v1/Deployment': Deployment,
  'policy/v1/PodDisruptionBudget': PodDisruptionBudget,
  'autoscaling/v2/HorizontalPodAutoscaler': HorizontalPodAutoscaler,
  'networking.k8s.io/v1/NetworkPolicy': NetworkPolicy,
  'monitoring.coreos.com/v1/ServiceMonitor': ServiceMonitor,
  'monitoring.coreos.com/v1/PrometheusRule': PrometheusRule,
};

function load(file: string): Doc[] {
  return parseAllDocuments(readFileSync(join(DIR, file), 'utf8')).map((d) => {
    expect(d.errors, file).to.deep.equal([]);
    return d.toJS() as Doc;
  });
}

const matches = (selector: Record<string, string>, labels: Record<string, string>): boolean =>
  Object.entries(selector).every(([k, v]) => labels[k] === v);

describe('deploy/kubernetes manifests', () => {
  const kustomization = parse(readFileSync(join(DIR, 'kustomization.yaml'), 'utf8')) as Doc;
  const files = readdirSync(DIR).filter((f) => f.endsWith('.yaml') && f !== 'kustomization.yaml');
  const all = files.flatMap((file) => load(file).map((doc) => ({ file, doc })));
  const find = (kind: string, name?: string): Doc => {
    const hit = all.find((e) => e.doc.kind === kind && (name === undefined || e.doc.metadata?.name === name));
    if (!hit) throw new Error(`no ${kind} ${name ?? ''} in deploy/kubernetes`);
    return hit.doc;
  };
  const deployment = (): Doc => find('Deployment', 'xks-proxy');
  const container = (): Doc => deployment().spec.template.spec.containers[0];
  const proxyConfig = (): Doc => parse(find('ConfigMap', 'xks-proxy-config').data['config.yaml']) as Doc;

  it('lists every manifest in kustomization.yaml except the example Secrets', () => {
    expect(kustomization.kind).to.equal('Kustomization');
    expect([...kustomization.resources].sort()).to.deep.equal(files.filter((f) => f !== 'secrets.example.yaml').sort());
  });

  it('validates every object against its Kubernetes / prometheus-operator schema', () => {
    expect(all.length).to.be.greaterThan(10);
    for (const { file, doc } of all) {
      const Model = MODELS[`${doc.apiVersion}/${doc.kind}`];
      expect(Model, `${file}: no schema for ${doc.apiVersion} ${doc.kind}`).to.be.a('function');
      expect(() => new Model!(doc as never).validate(), `${file} ${doc.kind}/${doc.metadata?.name}`).not.to.throw();
      if (doc.kind !== 'Namespace') expect(doc.metadata.namespace, `${file} ${doc.kind}`).to.equal(kustomization.namespace);
    }
  });

  it('the schema check does catch a broken manifest (control)', () => {
    const broken = structuredClone(deployment());
    broken.spec.template.spec.containers[0].readinessProbe.httpGet.port = { name: 'admin' };
    expect(() => new Deployment(broken as never).validate()).to.throw();
  });

  it('probes: readiness on /ready (HSM-aware), liveness and startup on /ping, all on the admin port', () => {
    const c = container();
    const ports = Object.fromEntries(c.ports.map((p: Doc) => [p.name, p.containerPort]));
    expect(ports).to.deep.equal({ https: proxyConfig().server.port, admin: proxyConfig().admin.port });
    expect(c.readinessProbe.httpGet).to.deep.equal({ path: '/ready', port: 'admin' });
    expect(c.livenessProbe.httpGet).to.deep.equal({ path: '/ping', port: 'admin' });
    expect(c.startupProbe.httpGet).to.deep.equal({ path: '/ping', port: 'admin' });
    expect(proxyConfig().admin.host).to.equal('0.0.0.0');
  });

  it('leaves memory for every worker at the RSS docs/operations.md reports, the primary and the /tmp tmpfs', () => {
    const mib = (quantity: string): number => {
      const m = /^(\d+)(Mi|Gi)$/.exec(quantity);
      if (!m) throw new Error(`unexpected quantity ${quantity}`);
      return Number(m[1]) * (m[2] === 'Gi' ? 1024 : 1);
    };
    const { limits } = container().resources;
    const workers = Number(limits.cpu); // XKS_WORKERS is limits.cpu
    const tmpfs = mib(deployment().spec.template.spec.volumes.find((v: Doc) => v.name === 'tmp').emptyDir.sizeLimit);
    const workerMib = 300e6 / 2 ** 20; // "a worker's RSS settled at 230-300 MB"
    const primaryMib = 90; // "the cluster primary ~90 MB"
    expect(mib(limits.memory)).to.be.at.least(workers * workerMib + primaryMib + tmpfs);
  });

  it('runs non-root, read-only, without capabilities or privilege escalation', () => {
    const pod = deployment().spec.template.spec;
    expect(pod.securityContext).to.deep.include({ runAsNonRoot: true, runAsUser: 10001 });
    expect(pod.securityContext.seccompProfile.type).to.equal('RuntimeDefault');
    expect(pod.automountServiceAccountToken).to.equal(false);
    expect(container().securityContext).to.deep.equal({ allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: { drop: ['ALL'] } });
  });

  it('the embedded proxy config passes the proxy\'s own schema, and its files are where the volumes are mounted', () => {
    const config = proxyConfig();
    const validate = new Ajv({ strict: false }).compile(ConfigSchema);
    expect(validate(structuredClone(config)), JSON.stringify(validate.errors)).to.equal(true);

    const c = container();
    const pod = deployment().spec.template.spec;
    const mounts = Object.fromEntries(c.volumeMounts.map((m: Doc) => [m.name, m.mountPath]));
    const volumes = Object.fromEntries(pod.volumes.map((v: Doc) => [v.name, v]));
    for (const name of Object.keys(mounts)) expect(volumes, `volume ${name}`).to.have.property(name);
    const mountOf = (path: string): string => {
      const volume = Object.keys(mounts).find((n) => path.startsWith(`${mounts[n]}/`));
      if (!volume) throw new Error(`${path} is on no mounted volume`);
      return volume;
    };
    const configArg = c.args[c.args.indexOf('--config') + 1];
    expect(volumes[mountOf(configArg)].configMap.name).to.equal('xks-proxy-config');
    expect(configArg.endsWith('/config.yaml')).to.equal(true);

    const secrets = load('secrets.example.yaml');
    const secretOf = (path: string): Doc => {
      const volume = volumes[mountOf(path)];
      const secret = secrets.find((s) => s.metadata.name === volume.secret?.secretName);
      expect(secret, `${path}: mounted from an example Secret`).to.not.equal(undefined);
      const key = path.slice(mounts[mountOf(path)].length + 1);
      expect(secret!.stringData, `${path}: key ${key}`).to.have.property(key);
      return secret!;
    };
    expect(secretOf(config.server.tls.certFile).type).to.equal('kubernetes.io/tls');
    secretOf(config.server.tls.keyFile);
    secretOf(config.hsm.pinFile);
    for (const store of config.keyStores) for (const cred of store.credentials) secretOf(cred.secretAccessKeyFile);
    // The secret file's mtime is the pod's age (kubelet writes the volume per pod): the age needs createdAt.
    for (const store of config.keyStores) for (const cred of store.credentials) expect(cred.createdAt, `${store.name} ${cred.accessKeyId}: createdAt`).to.be.a('string');
    expect(mountOf(config.hsm.modulePath)).to.equal('hsm-client');
    // A vendor's client library needs its vendor's profile: left out, it is softhsm's (one PKCS#11
    // thread, keep-alive off, SoftHSM's tag-failure code), which a network HSM serves badly.
    expect(config.hsm.profile, 'hsm.profile for the mounted vendor library').to.be.oneOf(['generic', 'cloudhsm', 'luna', 'nshield']);
    expect(c.env.find((e: Doc) => e.name === 'XKS_WORKERS').valueFrom.resourceFieldRef.resource).to.equal('limits.cpu');
  });

  it('gives in-flight requests time to drain before SIGKILL', () => {
    const pod = deployment().spec.template.spec;
    const preStopSeconds = Number(container().lifecycle.preStop.exec.command[1]);
    expect(pod.terminationGracePeriodSeconds * 1000).to.be.greaterThan(proxyConfig().server.shutdownTimeoutMs + preStopSeconds * 1000);
    expect(deployment().spec.strategy.rollingUpdate.maxUnavailable).to.equal(0);
  });

  it('Services, PDB, HPA, NetworkPolicy and ServiceMonitor select the proxy pods and name real ports', () => {
    const podLabels = deployment().spec.template.metadata.labels;
    expect(matches(deployment().spec.selector.matchLabels, podLabels)).to.equal(true);
    const containerPorts = new Set(container().ports.map((p: Doc) => p.name));

    const kms = find('Service', 'xks-proxy');
    expect(matches(kms.spec.selector, podLabels)).to.equal(true);
    expect(kms.spec.ports.map((p: Doc) => p.targetPort)).to.deep.equal(['https']);
    expect(kms.metadata.annotations['service.beta.kubernetes.io/aws-load-balancer-healthcheck-path']).to.equal('/ready');
    expect(kms.metadata.annotations['service.beta.kubernetes.io/aws-load-balancer-healthcheck-port']).to.equal(String(proxyConfig().admin.port));

    const admin = find('Service', 'xks-proxy-admin');
    expect(matches(admin.spec.selector, podLabels)).to.equal(true);
    for (const p of [...kms.spec.ports, ...admin.spec.ports]) expect(containerPorts.has(p.targetPort), p.targetPort).to.equal(true);

    const monitor = find('ServiceMonitor');
    expect(matches(monitor.spec.selector.matchLabels, admin.metadata.labels)).to.equal(true);
    expect(matches(monitor.spec.selector.matchLabels, kms.metadata.labels)).to.equal(false);
    expect(monitor.spec.endpoints[0]).to.deep.include({ port: 'admin', path: '/metrics' });
    expect(admin.spec.ports.map((p: Doc) => p.name)).to.include('admin');

    const pdb = find('PodDisruptionBudget');
    expect(matches(pdb.spec.selector.matchLabels, podLabels)).to.equal(true);
    expect(pdb.spec.minAvailable).to.be.at.least(1);
    expect(deployment().spec.replicas).to.be.greaterThan(pdb.spec.minAvailable);

    const hpa = find('HorizontalPodAutoscaler');
    expect(hpa.spec.scaleTargetRef).to.deep.equal({ apiVersion: 'apps/v1', kind: 'Deployment', name: 'xks-proxy' });
    expect(hpa.spec.minReplicas).to.be.greaterThan(pdb.spec.minAvailable);

    const policy = find('NetworkPolicy');
    expect(matches(policy.spec.podSelector.matchLabels, podLabels)).to.equal(true);
    expect(policy.spec.policyTypes).to.deep.equal(['Ingress', 'Egress']);
    const ingressPorts = policy.spec.ingress.flatMap((r: Doc) => r.ports.map((p: Doc) => p.port));
    expect(ingressPorts.sort()).to.deep.equal(['admin', 'https']);
  });

  it('the PrometheusRule carries exactly the groups of deploy/prometheus/xks-proxy.rules.yaml', () => {
    const rules = parse(readFileSync(join(DIR, '../prometheus/xks-proxy.rules.yaml'), 'utf8')) as Doc;
    expect(find('PrometheusRule').spec.groups).to.deep.equal(rules.groups);
  });
});
