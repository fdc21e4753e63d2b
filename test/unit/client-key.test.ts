// The run's client key: every one must be a key ssh2 (which reads it) and OpenSSH's formats
// accept, including the one key in 256 whose public half starts with a zero byte (ssh2's
// own generator wrote those malformed). Judged by ssh2's parser and node:crypto's verify.
import t from 'tap';
import { createPublicKey, verify } from 'node:crypto';
import ssh2 from 'ssh2';
import { generateClientKey } from '../../harness/vm/ssh.js';

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
