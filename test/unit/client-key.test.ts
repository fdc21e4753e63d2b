// The run's client key: every one must be a key ssh2 (which reads it) and OpenSSH's formats
// accept, including the one key in 256 whose public half starts with a zero byte (ssh2's
// own generator wrote those malformed). Judged by ssh2's parser and node:crypto's verify.
import t from 'tap';
import { createPublicKey, verify } from 'node:crypto';
import ssh2 from 'ssh2';
import { connectOnce, generateClientKey, SshConnectError } from '../../harness/vm/ssh.js';

const { utils } = ssh2;

t.test('every key parses, public and private agree, and its signatures verify', async (t) => {
  let leadingZero = 0;
  let keys = 0;
  let bad = 0;
  // Until three keys whose public half starts with 0x00 were among them (about 770 keys).
  while (leadingZero < 3 && keys < 20_000) {
    keys++;
    const k = generateClientKey('test-key');
    const priv = utils.parseKey(k.privateKey);
    const pub = utils.parseKey(k.publicKey);
    if (priv instanceof Error || pub instanceof Error || Array.isArray(priv) || Array.isArray(pub)) {
      bad++;
      continue;
    }
    const raw = pub.getPublicSSH().subarray(-32);
    if (raw[0] === 0) leadingZero++;
    if (!priv.getPublicSSH().equals(pub.getPublicSSH()) || priv.type !== 'ssh-ed25519' || pub.comment !== 'test-key') bad++;
    if (raw[0] === 0 || keys <= 5) {
      const data = Buffer.from(`message ${keys}`);
      const spki = createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: raw.toString('base64url') }, format: 'jwk' });
      if (!verify(null, data, spki, priv.sign(data) as Buffer)) bad++;
    }
  }
  t.equal(leadingZero, 3, `keys with a leading zero byte were among the ${keys}`);
  t.equal(bad, 0, 'no key was malformed, mismatched or signed wrongly');
});

// A key as ssh2's own generator wrote one in 256: the public half lost its leading zero byte.
const MALFORMED = `-----BEGIN OPENSSH PRIVATE KEY-----
b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMgAAAAtz
c2gtZWQyNTUxOQAAAB9AW42T0ZvtLCmfUiqfwEeSv4reFvknIPORfzYHuqy6AAAA
kDUmmy01JpstAAAAC3NzaC1lZDI1NTE5AAAAH0BbjZPRm+0sKZ9SKp/AR5K/it4W
+Scg85F/Nge6rLoAAAA/UANgxVYu1SPqhJ6YLDQFDKcKptlC7u1J5bMdFzuv90lA
W42T0ZvtLCmfUiqfwEeSv4reFvknIPORfzYHuqy6AAAACmt0cmlhbC1ydW4BAgME
BQ==
-----END OPENSSH PRIVATE KEY-----
`;

t.test('an unusable client key ends the attempt at once, marked as such (no retry can help)', async (t) => {
  const host = generateClientKey('host');
  const err = await connectOnce({ host: '127.0.0.1', port: 9, hostKeyPublic: host.publicKey, privateKey: MALFORMED }, 5000).then(
    () => undefined,
    (e: unknown) => e,
  );
  t.ok(err instanceof SshConnectError, 'an SshConnectError');
  t.equal((err as SshConnectError).clientUnusable, true);
  t.match((err as Error).message, /cannot start.*privateKey/i);
});
