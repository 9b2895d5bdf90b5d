import { expect } from 'chai';
import { chmodSync, mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { ConfigFile } from '../../../src/config/schema';
import { describeReadable, readableByOthers, secretFilesOf } from '../../../src/config/secret-files';
import { tempDir } from '../../support/temp-dir';

const fromBase = (p: string): string => resolve('/etc/xks', p);
const credential = (extra: Record<string, string>) => ({ accessKeyId: 'AKIAI2SFODNN7EXAMPLE', ...extra });

function file(extra: Partial<ConfigFile>): ConfigFile {
  return {
    server: { tls: { certFile: 'c.pem', keyFile: 'k.pem' } },
    keyStores: [{ name: 's', credentials: [credential({ secretAccessKeyEnv: 'S' })], keys: { allTokenKeys: true } }],
    ...extra,
  } as ConfigFile;
}

describe('secret-bearing files of a config', () => {
  it('names the TLS key, each PIN file, each SigV4 secret file (XKS and KMS API) and the audit key file', () => {
    const config = file({
      hsms: [
        { modulePath: '/m.so', tokenLabel: 'a', pinFile: 'pin-a' },
        { modulePath: '/m.so', tokenLabel: 'b', pinEnv: 'PIN_B' },
      ],
      keyStores: [{ name: 's', credentials: [credential({ secretAccessKeyFile: 'secrets/xks' }), credential({ secretAccessKeyEnv: 'S' })], keys: { allTokenKeys: true } }],
      kmsApi: { credentials: [{ accessKeyId: 'AKIAKMS', secretAccessKeyFile: '/run/kms', actions: ['kms:Encrypt'], keys: ['*'] }] },
      audit: { file: 'audit.log', hmacKeyFile: 'audit.key' },
    } as Partial<ConfigFile>);
    expect(secretFilesOf(config, fromBase, '/etc/xks/config.yaml')).to.deep.equal([
      { setting: 'server.tls.keyFile', path: '/etc/xks/k.pem' },
      { setting: 'hsms.0.pinFile', path: '/etc/xks/pin-a' },
      { setting: 'keyStores.0.credentials.0.secretAccessKeyFile', path: '/etc/xks/secrets/xks' },
      { setting: 'kmsApi.credentials.0.secretAccessKeyFile', path: '/run/kms' },
      { setting: 'audit.hmacKeyFile', path: '/etc/xks/audit.key' },
    ]);
  });

  it('names the config file itself only when it holds a secret inline', () => {
    const inline = file({ hsm: { modulePath: '/m.so', tokenLabel: 't', pinFile: 'pin' }, keyStores: [{ name: 's', credentials: [credential({ secretAccessKey: 'x'.repeat(43) })], keys: { allTokenKeys: true } }] } as Partial<ConfigFile>);
    expect(secretFilesOf(inline, fromBase, '/etc/xks/config.yaml').map((f) => f.setting)).to.deep.equal(['server.tls.keyFile', 'hsm.pinFile', 'the config file (a secretAccessKey inline)']);
    const viaEnv = file({ hsm: { modulePath: '/m.so', tokenLabel: 't' } } as Partial<ConfigFile>);
    expect(secretFilesOf(viaEnv, fromBase, '/etc/xks/config.yaml').map((f) => f.setting)).to.deep.equal(['server.tls.keyFile']);
  });

  it('leaves out the audit key file of a disabled audit log', () => {
    const config = file({ audit: { enabled: false, file: 'audit.log', hmacKeyFile: 'audit.key' } } as Partial<ConfigFile>);
    expect(secretFilesOf(config, fromBase).map((f) => f.setting)).to.deep.equal(['server.tls.keyFile']);
  });

  describe('readable by other users', () => {
    const layout = () => {
      const dir = tempDir('xks-secret-modes-');
      chmodSync(dir, 0o755);
      const write = (name: string, mode: number): string => {
        const path = join(dir, name);
        writeFileSync(path, 'secret\n');
        chmodSync(path, mode);
        return path;
      };
      return { dir, write };
    };

    it('reports an o+r file in folders others can pass through, with its mode; not 0640 or 0600', () => {
      const { write } = layout();
      const files = [
        { setting: 'a', path: write('open', 0o644) },
        { setting: 'b', path: write('group', 0o640) },
        { setting: 'c', path: write('owner', 0o600) },
        { setting: 'd', path: write('odd', 0o604) },
      ];
      expect(readableByOthers(files)).to.deep.equal([
        { ...files[0], mode: '0644' },
        { ...files[3], mode: '0604' },
      ]);
    });

    it('does not report an o+r file in a folder others cannot enter (0750, 0700)', () => {
      const { dir } = layout();
      for (const [name, mode] of [['closed', 0o750], ['private', 0o700]] as const) {
        const sub = join(dir, name);
        mkdirSync(sub);
        chmodSync(sub, mode);
        writeFileSync(join(sub, 'pin'), '1234\n');
        chmodSync(join(sub, 'pin'), 0o644);
        expect(readableByOthers([{ setting: 'x', path: join(sub, 'pin') }]), name).to.deep.equal([]);
      }
    });

    it('judges a symlink (a Kubernetes Secret mount) by its target and the target\'s folders', () => {
      const { dir, write } = layout();
      const hidden = join(dir, 'hidden');
      mkdirSync(hidden);
      writeFileSync(join(hidden, 'pin'), '1234\n');
      chmodSync(join(hidden, 'pin'), 0o644);
      chmodSync(hidden, 0o700);
      symlinkSync(join(hidden, 'pin'), join(dir, 'link-to-hidden'));
      symlinkSync(write('open', 0o644), join(dir, 'link-to-open'));
      const found = readableByOthers([
        { setting: 'hidden', path: join(dir, 'link-to-hidden') },
        { setting: 'open', path: join(dir, 'link-to-open') },
      ]);
      expect(found.map((f) => f.setting)).to.deep.equal(['open']);
      expect(found[0]?.path, 'the setting\'s own path is reported').to.equal(join(dir, 'link-to-open'));
    });

    it('skips a file that does not exist (loading reports that)', () => {
      expect(readableByOthers([{ setting: 'x', path: '/nonexistent/xks/pin' }])).to.deep.equal([]);
    });

    it('says what to do, naming the setting, path and mode', () => {
      expect(describeReadable({ setting: 'hsm.pinFile', path: '/etc/xks/pin', mode: '0644' })).to.equal(
        'hsm.pinFile: /etc/xks/pin is readable by every user of this host (mode 0644); make it 0600 or 0640 (chmod o-r)',
      );
    });
  });
});
