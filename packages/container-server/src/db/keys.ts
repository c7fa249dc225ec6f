/**
 * The key layout of a device's database (`<device>/containers.db/` or `<device>/accounts.db/`).
 * One LevelDB holds every container (or account) of the device; keys are UTF-8 strings whose
 * byte order is LevelDB's order, so a listing page is one ordered range scan.
 *
 * An "owner" is the thing whose rows are listed: `<part>\0<account>\0<container>` in the container
 * database (rows are objects), `<part>\0<account>` in the account database (rows are containers).
 * NUL never occurs in a name (refused with 400 at the HTTP layer), so it separates components.
 *
 *   s\0<owner>                 owner info: timestamps, metadata, counts, bytes, max row seq, rows hash
 *   o\0<owner>\0<name>         a live row, in name order (a listing scans only these)
 *   d\0<owner>\0<name>         a deleted row (tombstone), kept until reclaim_age
 *   q\0<owner>\0<seq:12 hex>   change log: the name of the row written with this sequence number;
 *                              replication sends the rows after a peer's sync point from here
 *   p\0<owner>\0<peer db id>   sync point: the highest local seq that peer has acknowledged
 *   u\0<owner>                 (container db only) an account update is owed for this container;
 *                              written in the same batch as the change, deleted once every account
 *                              replica accepted the stats (the durable retry record)
 *
 * A row write changes its row key, its change-log key and the owner info key in one synced batch,
 * so the counts in `s` always equal what the `o` keys hold.
 */

export const SEP = '\0';

export type KeySpace = 's' | 'o' | 'd' | 'q' | 'p' | 'u';

export interface OwnerId {
  part: string;
  account: string;
  /** Absent for an account database owner. */
  container?: string;
}

export function ownerKey(o: OwnerId): string {
  return o.container === undefined ? `${o.part}${SEP}${o.account}` : `${o.part}${SEP}${o.account}${SEP}${o.container}`;
}

export function parseOwnerKey(key: string): OwnerId {
  const [part, account, container] = key.split(SEP);
  return container === undefined
    ? { part: part as string, account: account as string }
    : { part: part as string, account: account as string, container };
}

export const infoKey = (owner: string): string => `s${SEP}${owner}`;
export const dirtyKey = (owner: string): string => `u${SEP}${owner}`;
export const rowPrefix = (space: 'o' | 'd', owner: string): string => `${space}${SEP}${owner}${SEP}`;
export const liveKey = (owner: string, name: string): string => `o${SEP}${owner}${SEP}${name}`;
export const deadKey = (owner: string, name: string): string => `d${SEP}${owner}${SEP}${name}`;
export const seqPrefix = (owner: string): string => `q${SEP}${owner}${SEP}`;
export const seqKey = (owner: string, seq: number): string => `${seqPrefix(owner)}${seq.toString(16).padStart(12, '0')}`;
export const syncPrefix = (owner: string): string => `p${SEP}${owner}${SEP}`;
export const syncKey = (owner: string, peerId: string): string => `${syncPrefix(owner)}${peerId}`;

/**
 * The smallest string greater than every string that starts with `s` (in code point order, which
 * is UTF-8 byte order): `s` with its last code point incremented. Used as an exclusive upper bound.
 */
export function prefixEnd(s: string): string {
  const cps = [...s];
  while (cps.length > 0) {
    const last = (cps.pop() as string).codePointAt(0) as number;
    let next = last + 1;
    if (next >= 0xd800 && next <= 0xdfff) next = 0xe000; // skip surrogates: they have no UTF-8 form
    if (next <= 0x10ffff) return cps.join('') + String.fromCodePoint(next);
  }
  // Every code point was U+10FFFF: nothing sorts above; the key space byte 0xff never occurs in UTF-8.
  return '\u{10ffff}'.repeat(s.length + 1);
}

/** Compares two strings in UTF-8 byte order (LevelDB's), unlike `<` which compares UTF-16 units. */
export function compareUtf8(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
}
