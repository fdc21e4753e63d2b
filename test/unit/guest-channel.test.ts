// A short command's channel: its output, exit status, EOF and close can reach the client
// in one read, before a caller that awaited the channel listens. guestChannel() keeps the
// exit status from the moment the channel opens. Both ends are ssh2, on loopback.
import t from 'tap';
import type { AddressInfo } from 'node:net';
import ssh2 from 'ssh2';
import { guestChannel, type GuestChannel } from '../../harness/vm/guest.js';
import { generateClientKey } from '../../harness/vm/ssh.js';

const { Client, Server } = ssh2;

/** A server whose every exec answers "out", exit status 7, EOF and close in one go. */
async function quickServer(): Promise<{ port: number; close: () => void }> {
  // ktrial's own ed25519 writer: about one key in 256 from ssh2's generateKeyPairSync cannot be
  // parsed by ssh2 itself (a public half starting with a zero byte, mscdex/ssh2 issue 1390).
  const hostKey = generateClientKey('test-host').privateKey;
  const server = new Server({ hostKeys: [hostKey] }, (client) => {
    client.on('authentication', (ctx) => ctx.accept());
    client.on('session', (accept) => {
      accept().on('exec', (acceptExec) => {
        const stream = acceptExec();
        stream.write('out\n');
        stream.exit(7);
        stream.end();
      });
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return { port: (server.address() as AddressInfo).port, close: () => server.close() };
}

t.test('the exit status of a command that ended before anyone listened is kept', async (t) => {
  const server = await quickServer();
  t.teardown(server.close);
  const c = new Client();
  await new Promise<void>((resolve, reject) => {
    c.on('ready', () => resolve()).on('error', reject);
    c.connect({ host: '127.0.0.1', port: server.port, username: 'root', password: 'x' });
  });
  t.teardown(() => c.end());
  for (let i = 0; i < 5; i++) {
    const ch = await new Promise<GuestChannel>((resolve, reject) => c.exec('true', (e, s) => (e ? reject(e) : resolve(guestChannel(s)))));
    // As the callers do: listen only after the await; here late enough that the exit
    // status has surely arrived (a listener for 'exit' attached now never hears it).
    await new Promise((r) => setTimeout(r, 300));
    const out: Buffer[] = [];
    ch.stream.on('data', (d: Buffer) => out.push(d));
    await new Promise<void>((r) => ch.stream.on('close', () => r()));
    t.equal(Buffer.concat(out).toString(), 'out\n', `run ${i + 1}: the output waited in the stream`);
    t.same(ch.exit(), { code: 7 }, `run ${i + 1}: the exit status was kept`);
  }
});
