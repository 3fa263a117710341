/**
 * The sender of bench/notify.ts's measured writes (`--client`): undici's Pool.request, or the leaner
 * raw-http-client.ts (the default), which leaves more of the two CPUs to the server.
 */
import type { Pool } from 'undici';
import { RawHttpClient } from './raw-http-client.js';

/** Sends one Encounter create and returns its id (from the Location header). */
export type CreateEncounter = () => Promise<string>;

/**
 * The measured writes' sender: one Encounter create; its id from the Location header
 * (`…/Encounter/{id}/_history/1`). The load generator shares the server's two CPUs, so it reads the
 * 201's body without parsing it, and by default sends through raw-http-client.ts (`--client`).
 */
export async function encounterWriter(client: string, pool: Pool, origin: string, path: string, body: string, connections: number): Promise<{ create: CreateEncounter; close: () => void }> {
  const idOf = (status: number, location: string): string => {
    const id = /\/Encounter\/([^/]+)/.exec(location)?.[1];
    if (status !== 201 || !id) throw new Error(`write failed ${status} (Location '${location}')`);
    return id;
  };
  if (client === 'undici') {
    return {
      create: async () => {
        const res = await pool.request({ method: 'POST', path, headers: { 'content-type': 'application/fhir+json' }, body });
        await res.body.dump();
        return idOf(res.statusCode, String(res.headers.location ?? ''));
      },
      close: () => undefined,
    };
  }
  if (client !== 'raw') throw new Error(`--client must be raw or undici, not '${client}'`);
  const raw = await RawHttpClient.open(origin, connections);
  const request = raw.preparePost(path, Buffer.from(body));
  return {
    create: async () => {
      const a = await raw.send(request);
      return idOf(a.status, a.location);
    },
    close: () => raw.close(),
  };
}
