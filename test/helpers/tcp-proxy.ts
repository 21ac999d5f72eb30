import net from 'node:net';

/**
 * A loopback TCP proxy in front of one server (PostgreSQL in the reliability tests) that can cut
 * it off the way networks and restarts do: reset every open connection, refuse new ones, or
 * stall (accept, then forward nothing). The target can be changed while it runs, so a database
 * restarted on another port stays behind the same address.
 */
export interface TcpProxy {
  /** `127.0.0.1:port` of the proxy. */
  host: string;
  port: number;
  /** Where new connections go. */
  target: { host: string; port: number };
  /** `forward` (normal), `refuse` (new connections reset at once), `stall` (accepted, no bytes move). */
  mode: 'forward' | 'refuse' | 'stall';
  /** Connections accepted, and connections cut by `resetAll` or `refuse`. */
  counts: { accepted: number; reset: number };
  /** Resets every open connection (both sides see ECONNRESET), as a crashed peer or a NAT drop does. */
  resetAll(): void;
  /** Open client connections. */
  readonly open: number;
  close(): Promise<void>;
}

export async function startTcpProxy(target: { host: string; port: number }): Promise<TcpProxy> {
  const pairs = new Set<{ client: net.Socket; upstream: net.Socket | null }>();
  const server = net.createServer((client) => {
    proxy.counts.accepted++;
    const pair: { client: net.Socket; upstream: net.Socket | null } = { client, upstream: null };
    pairs.add(pair);
    client.on('error', () => {});
    client.on('close', () => {
      pair.upstream?.destroy();
      pairs.delete(pair);
    });
    if (proxy.mode === 'refuse') {
      proxy.counts.reset++;
      client.resetAndDestroy();
      return;
    }
    if (proxy.mode === 'stall') {
      // Accept and read nothing: the peer waits for an answer that never comes.
      client.pause();
      return;
    }
    const upstream = net.connect(proxy.target.port, proxy.target.host);
    pair.upstream = upstream;
    upstream.on('error', () => client.resetAndDestroy());
    upstream.on('close', () => client.destroy());
    client.pipe(upstream);
    upstream.pipe(client);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const proxy: TcpProxy = {
    host: '127.0.0.1',
    port: (server.address() as net.AddressInfo).port,
    target: { ...target },
    mode: 'forward',
    counts: { accepted: 0, reset: 0 },
    resetAll: () => {
      for (const p of pairs) {
        proxy.counts.reset++;
        p.upstream?.resetAndDestroy();
        p.client.resetAndDestroy();
      }
      pairs.clear();
    },
    get open() {
      return pairs.size;
    },
    close: async () => {
      proxy.resetAll();
      await new Promise((r) => server.close(r));
    },
  };
  return proxy;
}
